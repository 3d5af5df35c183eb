// The box's own config (/etc/hozo-agent/config.json, written by the NixOS module services.hozo.agent). The names are a
// contract with that module: keep them; add optional fields only.
import { jsonDuplicateKey, jsonErrorWords, MAX_CONFIG_VALUES, protoKeyPath, readConfigText, valuesOver } from '../src/config/read.js';
import { join } from 'node:path';
import { z } from 'zod';
import { HozoError } from '../src/errors.js';
import { argvSchema, bufferSize, checked, datasetName, writablePath } from '../src/config/fields.js';
import { shownName, shownPath } from '../src/config/shown.js';
import { absolutePathProblem } from '../src/util/safe-fs.js';
import { issueProblems, problemLines } from '../src/config/issues.js';
import { datasetNameProblem, poolOf } from '../src/zfs/names.js';
import { CONTROLLER_NAME, DEFAULT_AGENT_CONFIG_PATH } from './rules.js';

export { DEFAULT_AGENT_CONFIG_PATH };

const poolName = z.string().superRefine((v, ctx) => {
  const problem = v.includes('/') ? 'must not contain "/"' : datasetNameProblem(v);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `not a valid pool name: ${shownName(v)} ${problem}` });
});

/** A directory the agent only reads (zpool import -d): the controller's path rules, and no "..". */
const readPath = checked(
  (p) => absolutePathProblem(p) ?? (p.split('/').includes('..') ? 'a ".." component is refused (write the path without it)' : undefined),
);

const count = (fallback: number) => z.number().int().min(0).max(10_000).default(fallback);

export const retentionSchema = z
  .object({
    hourly: count(0),
    daily: count(7),
    weekly: count(4),
    monthly: count(6),
    yearly: count(0),
  })
  .strict();

/** One controller's own section (agent/scope.ts): chosen by `serve --controller NAME` in its key's command=. */
export const controllerSchema = z
  .object({
    /** The only datasets this controller may list, receive into, read back or prune. */
    roots: z.array(datasetName).min(1, 'list at least one backup root for this controller, e.g. ["backup/alice"]'),
    /** Overrides the box-wide allowRollback for this controller. */
    allowRollback: z.boolean().optional(),
    /** Overrides the box-wide appendOnly for this controller. */
    appendOnly: z.boolean().optional(),
    /** Most leases this controller holds at once (default: the box-wide maxLeases). */
    maxLeases: z.number().int().min(1).max(1000).optional(),
    /** Most receives this controller runs at once (default: the box-wide maxReceives). */
    maxReceives: z.number().int().min(1).max(64).optional(),
    /** Longest lease this controller may take (default: the box-wide maxLeaseSeconds). */
    maxLeaseSeconds: z
      .number()
      .int()
      .min(1)
      .max(30 * 24 * 3600)
      .optional(),
  })
  .strict();

export const agentConfigSchema = z
  .object({
    /** Datasets controllers may list/receive into (and below); with `controllers`, those of keys without a section
     *  (none are accepted then) — may be empty. */
    roots: z.array(datasetName).default([]),
    /** Per-controller sections: each key's forced command names one (`serve --controller NAME`). */
    controllers: z.record(z.string().regex(CONTROLLER_NAME, 'controller names are 1-32 of a-z 0-9 _ - starting with a letter'), controllerSchema).optional(),
    retention: retentionSchema.default({ hourly: 0, daily: 7, weekly: 4, monthly: 6, yearly: 0 }),
    /** null turns the idle guard off. Fractions are allowed (tests). */
    idlePoweroffMinutes: z
      .number()
      .positive()
      .max(7 * 24 * 60)
      .nullable()
      .default(30),
    poweroffCommand: argvSchema.default(['systemctl', 'start', 'hozo-poweroff.service']),
    leaseDirectory: writablePath.default('/var/lib/hozo-agent/leases'),
    stateDirectory: writablePath.default('/var/lib/hozo-agent'),
    /** Pools imported by `prepare` and exported on shutdown; default: the pools of the roots. */
    pools: z.array(poolName).optional(),
    /** Allow `receive -F` (rolls back and may destroy snapshots on the box). */
    allowRollback: z.boolean().default(false),
    /** Append-only keys: nothing a request destroys (no receive -F, prune or abort-receive); prune runs only by the
     *  box's timer, with the box's policy. */
    appendOnly: z.boolean().default(false),
    exportOnShutdown: z.boolean().default(true),
    /** Scrubs across power cycles (agent/scrub.ts): start one every everyDays at prepare, pause it at shutdown and
     *  resume it at the next prepare; keep the box up for a running one only keepAwakeMinutes after boot. */
    scrub: z
      .object({
        everyDays: z.number().positive().max(366).default(30), // fractions: tests
        pauseOnShutdown: z.boolean().default(true),
        keepAwakeMinutes: z
          .number()
          .min(0)
          .max(24 * 60)
          .default(0),
        /** `zpool scrub` and `zpool scrub -p` need root: a box whose agent is not root runs them through root units
         *  (NixOS: hozo-scrub@POOL / hozo-scrub-pause@POOL via systemctl). %p is the pool's name. */
        startCommand: z.array(z.string().min(1)).min(1).default(['zpool', 'scrub', '%p']),
        pauseCommand: z.array(z.string().min(1)).min(1).default(['zpool', 'scrub', '-p', '%p']),
      })
      .strict()
      .optional(),
    poweroffDelaySeconds: z.number().min(0).max(300).default(3),
    // --- optional additions (the NixOS module sets prepareTimeoutSeconds, maxLeaseSeconds and logFile) ---
    /** How long `prepare` keeps retrying `zpool import` (USB disks appear late). */
    prepareTimeoutSeconds: z.number().min(0).max(3600).default(60),
    /** `zpool import -d DIR` search directories (e.g. /dev/disk/by-id); default: zpool's own search. */
    importDirectories: z.array(readPath).default([]),
    /** Most leases held at once (a renewal of a held one always works). */
    maxLeases: z.number().int().min(1).max(1000).default(16),
    /** Most receives running at once for one controller (its roots); more are refused with exit 3. */
    maxReceives: z.number().int().min(1).max(64).default(4),
    /** Longest lease a controller may take with `hold`. */
    maxLeaseSeconds: z
      .number()
      .int()
      .min(1)
      .max(30 * 24 * 3600)
      .default(24 * 3600),
    /** mbuffer's memory when a controller asks for `receive --mbuffer` / `send --mbuffer`. */
    bufferSize: bufferSize.default('128M'),
    /** A `session` (many control requests over one SSH call) with no request for this long ends by itself. */
    sessionIdleSeconds: z
      .number()
      .positive()
      .max(24 * 3600)
      .default(600),
    /** Audit log; default <stateDirectory>/agent.log. */
    logFile: writablePath.optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    const sections = Object.entries(c.controllers ?? {});
    if (c.roots.length === 0 && sections.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['roots'], message: 'list at least one backup root, e.g. ["backup/hozo"]' });
    }
    // No two sections may reach the same dataset: one controller must not see another's backups.
    // Linear: each root against the owners of itself, its ancestors and (through a map of ancestors) its descendants.
    const owned = [...c.roots.map((r) => ({ r, who: 'roots' })), ...sections.flatMap(([n, s]) => s.roots.map((r) => ({ r, who: `controllers.${n}` })))];
    const ownerOf = new Map<string, string>();
    const below = new Map<string, { r: string; who: string }>();
    let reported = 0;
    for (const a of owned) {
      const up = [a.r, ...ancestorsOf(a.r)];
      const hit =
        up.map((x) => (ownerOf.has(x) && ownerOf.get(x) !== a.who ? { r: x, who: ownerOf.get(x)! } : undefined)).find((x) => x !== undefined) ??
        (below.has(a.r) && below.get(a.r)!.who !== a.who ? below.get(a.r) : undefined);
      if (hit !== undefined && reported++ < 20) {
        ctx.addIssue({
          code: 'custom',
          path: ['controllers'],
          message: `${hit.who} root ${shownName(hit.r)} overlaps ${a.who} root ${shownName(a.r)}: each controller's roots must be its own`,
        });
      }
      if (!ownerOf.has(a.r)) ownerOf.set(a.r, a.who);
      for (const x of ancestorsOf(a.r)) if (!below.has(x)) below.set(x, a);
    }
  });

/** "a/b/c" → ["a/b", "a"]. */
function ancestorsOf(name: string): string[] {
  const out: string[] = [];
  for (let i = name.lastIndexOf('/'); i > 0; i = name.lastIndexOf('/', i - 1)) out.push(name.slice(0, i));
  return out;
}

export type AgentConfigInput = z.input<typeof agentConfigSchema>;

export interface AgentConfig extends Omit<z.output<typeof agentConfigSchema>, 'pools' | 'logFile'> {
  readonly pools: readonly string[];
  readonly logFile: string;
}

export function validateAgentConfig(data: unknown, source = 'agent config'): AgentConfig {
  const r = agentConfigSchema.safeParse(data, { reportInput: true });
  if (!r.success) {
    const problems = issueProblems(r.error.issues);
    throw new HozoError('CONFIG_INVALID', `${shownPath(source)} is invalid:\n  ${problemLines(problems).join('\n  ')}`, {
      problems: problems.slice(0, 1000),
      hint: 'fix the listed fields (hozo-agent check-config --config FILE); the agent refuses every request until then',
    });
  }
  const c = r.data;
  // Box-wide (timers, prune, idle guard): every root of every section.
  const roots = [...c.roots, ...Object.values(c.controllers ?? {}).flatMap((s) => s.roots)];
  return {
    ...c,
    roots,
    pools: c.pools ?? [...new Set(roots.map(poolOf))],
    logFile: c.logFile ?? join(c.stateDirectory, 'agent.log'),
  };
}

export function loadAgentConfig(path: string): AgentConfig {
  return parseAgentConfigText(readConfigText(path, 'agent config'), path);
}

/** The text of a config file at `path`, validated (agent/config-cache.ts caches the result). */
export function parseAgentConfigText(text: string, path: string): AgentConfig {
  const dup = jsonDuplicateKey(text);
  const where = shownPath(path);
  if (dup !== undefined) throw new HozoError('CONFIG_INVALID', `${where}: key ${shownName(dup)} appears twice (JSON would keep only the last)`);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new HozoError('CONFIG_INVALID', `${where}: not valid JSON: ${jsonErrorWords(e, text)}`, { cause: e });
  }
  if (valuesOver(data)) throw new HozoError('CONFIG_INVALID', `${where}: more than ${MAX_CONFIG_VALUES} values; an agent config has a few dozen`);
  const proto = protoKeyPath(data);
  if (proto !== undefined) throw new HozoError('CONFIG_INVALID', `${where}: ${shownName(proto)}: the key "__proto__" is not allowed`);
  return validateAgentConfig(data, path);
}
