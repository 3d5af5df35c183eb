// The man pages, generated from the sources they describe, so they cannot drift: hozo(1) from the commander program
// (every command, argument and option with its help text, the exit codes and examples), hozo-agent(8) from the
// agent's usage and per-command help, hozo.conf(5) from the config schema (every field: type, default, allowed
// values and its description). `npm run build` writes them to dist/man; the Nix package installs them.
import type { Command, Option } from 'commander';
import { z } from 'zod';
import { COMMAND_HELP, USAGE } from '../../agent/main.js';
import { EXAMPLES, EXIT_CODES_HELP, buildProgram } from '../cli/program.js';
import { configSchema } from '../config/schema.js';
import { VERSION } from '../version.js';

export interface ManPage {
  readonly file: string;
  readonly text: string;
}

/** Text for roff: backslashes and leading dots/apostrophes escaped. */
export function roff(t: string): string {
  return t
    .replace(/\\/g, '\\e')
    .replace(/-/g, '\\-')
    .split('\n')
    .map((l) => (/^[.']/.test(l) ? `\\&${l}` : l))
    .join('\n')
    .replace(/[^\x00-\x7f]/gu, (c) => `\\[u${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}]`);
}

const header = (name: string, section: number, what: string) =>
  `.TH ${name.toUpperCase()} ${section} "" "hozo ${VERSION}" "${roff(what)}"\n.SH NAME\n${roff(name)} \\- `;

function commandPath(c: Command): string {
  const parts: string[] = [];
  for (let p: Command | null = c; p !== null && p.parent !== null; p = p.parent) parts.unshift(p.name());
  return parts.join(' ');
}

function options(opts: readonly Option[]): string {
  return opts
    .map((o) => `.TP\n.B ${roff(o.flags)}\n${roff(o.description)}${o.defaultValue !== undefined ? ` (default ${roff(String(o.defaultValue))})` : ''}\n`)
    .join('');
}

export function hozoPage(): ManPage {
  const { program } = buildProgram();
  const all = (c: Command): Command[] => [...c.commands, ...c.commands.flatMap(all)];
  let t =
    header('hozo', 1, 'Hōzō') + `off\\-site ZFS backups to a sleeping box\n.SH SYNOPSIS\n.B hozo\n[\\fIglobal options\\fR] \\fIcommand\\fR [\\fIoptions\\fR]\n`;
  t += `.SH DESCRIPTION\n${roff(program.description())}.\nThe controller side: it wakes the box, waits until SSH and its pools are ready, replicates every dataset of a job\nwith zfs send | ssh | zfs receive, verifies, protects the incremental base, writes metrics, notifies and puts the\nbox back to sleep. The config is described in \\fBhozo.conf\\fR(5); the box side in \\fBhozo\\-agent\\fR(8).\n`;
  t += `.SH GLOBAL OPTIONS\n${options(program.options)}`;
  t += '.SH COMMANDS\n';
  for (const c of all(program)) {
    if (c.commands.length > 0 && c.options.length === 0 && c.registeredArguments.length === 0) continue; // a group (config)
    const args = c.registeredArguments.map((a) => (a.required ? `<${a.name()}>` : `[${a.name()}]`)).join(' ');
    t += `.SS ${roff(`${commandPath(c)}${args ? ` ${args}` : ''}`)}\n${roff(c.description())}\n`;
    for (const a of c.registeredArguments) if (a.description) t += `.TP\n.I ${roff(a.name())}\n${roff(a.description)}\n`;
    t += options(c.options);
    const ex = EXAMPLES[commandPath(c)];
    if (ex !== undefined) t += `.PP\nExample:\n.RS\n.nf\n${roff(ex)}\n.fi\n.RE\n`;
  }
  const codes = EXIT_CODES_HELP.split('\n').filter((l) => /^\s+[\d/]+\s/.test(l));
  t +=
    '.SH EXIT STATUS\n' +
    codes
      .map((l) => {
        const m = /^\s+([\d/]+)\s+(.*)$/.exec(l)!;
        return `.TP\n.B ${m[1]}\n${roff(m[2]!)}\n`;
      })
      .join('');
  t += `.SH FILES\n.TP\n.I /etc/hozo/config.json\nthe default config (or $HOZO_CONFIG, or \\-\\-config)\n.TP\n.I /var/lib/hozo\nthe default stateDirectory\n`;
  t += '.SH SEE ALSO\n\\fBhozo.conf\\fR(5), \\fBhozo\\-agent\\fR(8), \\fBzfs\\-send\\fR(8), \\fBzfs\\-receive\\fR(8)\n';
  return { file: 'hozo.1', text: t };
}

export function agentPage(): ManPage {
  let t = header('hozo-agent', 8, 'Hōzō') + roff('the backup box side of Hōzō') + '\n';
  t += `.SH SYNOPSIS\n.nf\n${roff(USAGE.split('\n\n')[0]!)}\n.fi\n`;
  t += `.SH DESCRIPTION\nThe SSH forced command of each controller key on the box (command="hozo\\-agent serve \\-\\-config FILE",restrict):\nconfined receive and send under its roots, leases, status, the box's own retention and a safe shutdown.\n`;
  t += `.SH USAGE\n.nf\n${roff(USAGE)}\n.fi\n.SH COMMANDS\n`;
  for (const [name, help] of Object.entries(COMMAND_HELP)) t += `.SS ${roff(name)}\n.nf\n${roff(help.trimEnd())}\n.fi\n`;
  t +=
    '.SH EXIT STATUS\n.TP\n.B 0\ndone\n.TP\n.B 1\nfailed\n.TP\n.B 2\nrefused (unknown request, outside the roots, bad arguments)\n.TP\n.B 3\nnot now (shutting down, busy, shutdown refused)\n';
  t += '.SH SEE ALSO\n\\fBhozo\\fR(1), \\fBhozo.conf\\fR(5)\n';
  return { file: 'hozo-agent.8', text: t };
}

type Json = {
  type?: string | string[];
  properties?: Record<string, Json>;
  items?: Json;
  additionalProperties?: Json | boolean;
  default?: unknown;
  enum?: unknown[];
  const?: unknown;
  description?: string;
  oneOf?: Json[];
  anyOf?: Json[];
  required?: string[];
};

function typeText(j: Json): string {
  if (j.enum) return `one of ${j.enum.map((v) => JSON.stringify(v)).join(', ')}`;
  if (j.const !== undefined) return JSON.stringify(j.const);
  if (j.type === 'array') return `list${j.items ? ` of ${typeText(j.items)}` : ''}`;
  if (j.type === 'object' || j.properties) return 'object';
  if (j.oneOf || j.anyOf) return (j.oneOf ?? j.anyOf)!.map(typeText).join(' or ');
  return Array.isArray(j.type) ? j.type.join(' or ') : (j.type ?? 'any');
}

export function confPage(): ManPage {
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Json;
  let t = header('hozo.conf', 5, 'Hōzō') + 'the configuration of hozo\n';
  t +=
    '.SH DESCRIPTION\nYAML or JSON (by the file name: *.json is JSON), at most 4 MiB of UTF\\-8, nested at most 64 levels; duplicate\nkeys are refused. Durations are seconds or strings like "30s", "5m", "1h30m", "2d" (at most a year).\n\\fBhozo config check\\fR validates a file and lists every problem with its path. The fields, generated from the\nschema hozo validates with:\n';
  const seen = new Set<string>();
  const walk = (j: Json, path: string) => {
    for (const [k, v] of Object.entries(j.properties ?? {})) {
      const p = path === '' ? k : `${path}.${k}`;
      if (seen.has(p)) continue;
      seen.add(p);
      const req = (j.required ?? []).includes(k) && v.default === undefined ? ', required' : '';
      const def = v.default !== undefined ? ` (default ${JSON.stringify(v.default)})` : '';
      t += `.TP\n.B ${roff(p)}\n${roff(typeText(v))}${req}${roff(def)}${v.description ? `. ${roff(v.description)}` : ''}\n`;
      walk(v, p);
      if (v.items) walk(v.items, `${p}[]`);
      if (typeof v.additionalProperties === 'object') walk(v.additionalProperties, `${p}.<name>`);
      for (const alt of v.oneOf ?? v.items?.oneOf ?? []) {
        const kind = alt.properties?.['type']?.const;
        walk(alt, `${p}[]${kind !== undefined ? `(type ${String(kind)})` : ''}`);
      }
    }
  };
  t += '.SH FIELDS\n';
  walk(schema, '');
  t +=
    '.SH EXAMPLE\n.nf\n' +
    roff(
      [
        'hosts:',
        '  offsite:',
        '    address: 192.168.7.20',
        '    user: hozo',
        '    sshKeyFile: /run/secrets/hozo-box-key',
        '    knownHostsFile: /etc/hozo/known_hosts',
        '    wake: {method: wol, mac: "52:54:00:7a:0b:01", address: 192.168.7.255}',
        '    shutdown: agent',
        'jobs:',
        '  - name: nightly',
        '    host: offsite',
        '    datasets:',
        '      - {source: tank/home, target: backup/hozo/home, recursive: true}',
      ].join('\n'),
    ) +
    '\n.fi\n';
  t += '.SH SEE ALSO\n\\fBhozo\\fR(1), \\fBhozo\\-agent\\fR(8)\n';
  return { file: 'hozo.conf.5', text: t };
}

export function manPages(): ManPage[] {
  return [hozoPage(), agentPage(), confPage()];
}
