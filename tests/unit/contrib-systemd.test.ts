// The plain systemd units of contrib/systemd (hosts without NixOS) against the NixOS modules' units: the same
// hardening, the same command lines and retry policy, and the install guide's `zfs allow` lists are the ones hozo
// needs (src/zfs/delegation.ts). The units themselves run under real systemd in tests/openzfs/systemd-units.test.ts.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { AGENT_PERMISSIONS, CONTROLLER_PERMISSIONS } from '../../src/zfs/delegation.js';

const repo = join(import.meta.dirname, '..', '..');
const NIXPKGS_LIB = process.env['NIXPKGS_LIB'];
if (!NIXPKGS_LIB)
  console.warn('SKIP: NIXPKGS_LIB unset — tests/unit/contrib-systemd.test.ts does not compare the units with the NixOS modules (docs/nixos.md, "Tests").');

type Unit = Record<string, Record<string, string[]>>;

/** A unit file's sections → key → values (a repeated key adds, an empty assignment resets, as systemd reads it). */
function parseUnit(text: string): Unit {
  const unit: Unit = {};
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const head = /^\[(.+)\]$/.exec(line);
    if (head) {
      section = head[1]!;
      unit[section] ??= {};
      continue;
    }
    const eq = line.indexOf('=');
    expect(eq, `not key=value: ${line}`).toBeGreaterThan(0);
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    const s = unit[section]!;
    s[key] = value === '' ? [] : [...(s[key] ?? []), value];
  }
  return unit;
}
const unitFile = (rel: string) => parseUnit(readFileSync(join(repo, 'contrib', 'systemd', rel), 'utf8'));

/** A NixOS serviceConfig value as a unit file line's words (lists joined by spaces, booleans as true/false). */
const asWords = (v: unknown): string => (Array.isArray(v) ? v.map(String).join(' ') : String(v));
const words = (values: string[] | undefined): string => (values ?? []).join(' ');

// What differs on purpose between a NixOS unit and a plain one: paths of the programs and the files, credentials.
const PER_HOST = new Set(['ExecStart', 'LoadCredential', 'ReadWritePaths', 'TimeoutStartSec', 'SuccessExitStatus']);

describe('contrib/systemd units', () => {
  it('the install guide delegates exactly the permissions hozo and hozo-agent need', () => {
    const guide = readFileSync(join(repo, 'docs', 'other-distributions.md'), 'utf8');
    const allows = [...guide.matchAll(/^zfs allow -u hozo (\S+) (\S+)$/gm)].map((m) => [m[2], m[1]!.split(',').sort()]);
    expect(allows).toEqual([
      ['backup/hozo', [...AGENT_PERMISSIONS].sort()],
      ['tank/data', [...CONTROLLER_PERMISSIONS].sort()],
    ]);
  });

  it('hozo@.service runs the job named by the instance as user hozo, once, with retries inside hozo (no Restart=)', () => {
    const u = unitFile('controller/hozo@.service');
    expect(u['Service']!['ExecStart']).toEqual(['/usr/local/bin/hozo run %i --attempts 4 --attempt-delay 15m']);
    expect(u['Service']!['Type']).toEqual(['oneshot']);
    expect(u['Service']!['User']).toEqual(['hozo']);
    for (const k of ['Restart', 'RestartSec']) expect(u['Service']).not.toHaveProperty(k);
    expect(u['Unit']).not.toHaveProperty('StartLimitBurst');
    const t = unitFile('controller/hozo@.timer');
    expect(t['Timer']).toMatchObject({ OnCalendar: ['daily'], Persistent: ['true'] });
    expect(t['Install']).toEqual({ WantedBy: ['timers.target'] });
  });

  describe.skipIf(!NIXPKGS_LIB)('the same as the NixOS modules generate (lib.evalModules)', () => {
    let ev: { controller: { services: Record<string, { serviceConfig: Record<string, unknown> }> }; agent: typeof ev.controller };
    beforeAll(() => {
      ev = JSON.parse(
        execFileSync('nix-instantiate', ['--eval', '--strict', '--json', join(repo, 'tests', 'nix', 'eval.nix'), '--argstr', 'nixpkgsLib', NIXPKGS_LIB!], {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe'],
          maxBuffer: 64 * 1024 * 1024,
        }),
      );
    }, 120_000);

    /** Every [Service] setting of the NixOS unit but the per-host ones, in unit-file words, beside the contrib file's. */
    const compare = (nixos: Record<string, unknown>, contrib: Unit) => {
      const mine = contrib['Service']!;
      const keys = Object.keys(nixos).filter((k) => !PER_HOST.has(k));
      expect(Object.fromEntries(keys.map((k) => [k, words(mine[k])]))).toEqual(Object.fromEntries(keys.map((k) => [k, asWords(nixos[k])])));
      // Nothing in the plain unit that the NixOS one lacks, beyond the per-host settings and Environment.
      const extra = Object.keys(mine).filter((k) => !(k in nixos) && !PER_HOST.has(k) && k !== 'Environment');
      expect(extra).toEqual([]);
    };

    it("hozo@.service: the job unit's hardening, user, type and state directory", () => {
      const job = ev.controller.services['hozo-offsite']!.serviceConfig;
      compare(job, unitFile('controller/hozo@.service'));
      expect(String(job['ExecStart'])).toMatch(/\/bin\/hozo run offsite --attempts 4 --attempt-delay 15m$/);
    });

    it("hozo-agent-prune.service and hozo-agent-idle.service: the agent module's units", () => {
      const prune = ev.agent.services['hozo-agent-prune']!.serviceConfig;
      compare(prune, unitFile('agent/hozo-agent-prune.service'));
      expect(unitFile('agent/hozo-agent-prune.service')['Service']!['SuccessExitStatus']).toEqual(prune['SuccessExitStatus']);
      compare(ev.agent.services['hozo-agent-idle']!.serviceConfig, unitFile('agent/hozo-agent-idle.service'));
    });
  });
});
