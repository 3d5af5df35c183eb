// The config file's shape. Names are the user-facing contract (the NixOS module renders the JSON form of this).
import { z } from 'zod';
import {
  absolutePath,
  argvSchema,
  bandwidthLimit,
  bufferSize,
  checked,
  datasetName,
  hostAddressProblem,
  httpUrlProblem,
  macProblem,
  NAME_MAX,
  wakeAddressProblem,
  writablePath,
} from './fields.js';
import { shownName, shownPath } from './shown.js';
import { parseDuration } from './duration.js';
import { calendarProblem } from './calendar.js';
import { DEFAULT_SCRUB_WARN_AFTER, snapshotPrefixOf } from './rules.js';
import { notifySchema } from '../notify/schema.js';

/** Seconds, or a duration string; `min`/`max` in seconds, `why` says where a bound comes from. */
const duration = (what: string, bounds: { readonly min?: number; readonly max?: number; readonly why?: string } = {}) =>
  z.union([z.number(), z.string()]).transform((v, ctx) => {
    const s = parseDuration(v);
    if (s === undefined) {
      ctx.addIssue({ code: 'custom', message: `expected ${what} as seconds or a duration like "30s", "5m", "1h"` });
      return z.NEVER;
    }
    const max = bounds.max ?? MAX_DURATION_SECONDS;
    if (s > max) {
      ctx.addIssue({
        code: 'custom',
        message:
          bounds.max === undefined
            ? `${what} of ${s} seconds is longer than any wait hozo does (at most ${MAX_DURATION_SECONDS / 86400} days)`
            : `${what} of ${s} seconds is longer than ${max} s${bounds.why ? ` (${bounds.why})` : ''}`,
      });
      return z.NEVER;
    }
    if (bounds.min !== undefined && s < bounds.min) {
      ctx.addIssue({ code: 'custom', message: `${what} of ${s} seconds is shorter than ${bounds.min} s${bounds.why ? ` (${bounds.why})` : ''}` });
      return z.NEVER;
    }
    return s;
  });

/** The agent's longest lease (agent/config.ts maxLeaseSeconds is at most this); its hold takes whole seconds. */
export const MAX_LEASE_TTL_SECONDS = 30 * 24 * 3600;
export const MIN_LEASE_TTL_SECONDS = 60;

/** A year: the longest lease, timeout or delay that makes sense (and far from float and timer overflow). */
const MAX_DURATION_SECONDS = 366 * 86400;

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const name = (what: string, rule: string) =>
  z
    .string()
    .max(NAME_MAX, `a ${what} name is at most ${NAME_MAX} characters`)
    .regex(NAME, `expected a ${what} name of letters, digits, _ . - (starting with a letter or digit)${rule}`)
    .refine((n) => !n.endsWith('.'), { message: `a ${what} name must not end with "."${rule}` });

/** systemd calendar expressions: the shorthands, or the characters OnCalendar= uses (systemd-analyze calendar has the last word). */
const SCHEDULE = /^(minutely|hourly|daily|weekly|monthly|yearly|annually|quarterly|semiannually|[A-Za-z0-9*:,./~ _+-]{1,128})$/;

const argv = argvSchema;

/** Something a calendar expression is about (a digit, *, a weekday); "~~~~" has none. */

/** A hook: an argv (never a shell string; write ["sh", "-c", "…"] yourself) or {command, timeout}. */
export const hookSchema = z
  .union([
    argv,
    z
      .object({ command: argv, timeout: duration('timeout').default(120).describe('Killed (its process group) after this long; the hook then failed.') })
      .strict(),
  ])
  .transform((h) => (Array.isArray(h) ? { command: h, timeout: 120 } : h))
  .describe('A command as a list of arguments, or {command, timeout} (default timeout 120 s). Runs on this machine, its output in the log.');

/** Hook points. preSnapshot/postSnapshot need snapshot.create (they run around hozo's own snapshot). */
const hooksShape = {
  preRun: hookSchema
    .optional()
    .describe('Before anything else (job: before the box is woken; dataset: before its transfer). Failing: nothing is done (for that dataset), exit 1.'),
  postRun: hookSchema.optional().describe('At the end, whatever happened (HOZO_RESULT says how it went).'),
  preSnapshot: hookSchema
    .optional()
    .describe("Before hozo's own snapshot (e.g. a database CHECKPOINT). Failing: no snapshot and a failed dataset (exit 1); other datasets go on."),
  postSnapshot: hookSchema.optional().describe('After the snapshot, also when it failed, once preSnapshot succeeded (HOZO_SNAPSHOT_OK=1 or 0).'),
};
export const hooksSchema = z.object(hooksShape).strict();

/** The job's own snapshot prefix: a snapshot hozo created is `<prefix>_YYYYMMDDTHHMMSSZ` (UTC, sorts by time). */
const snapshotPrefix = z
  .string()
  .max(64, 'a snapshot prefix is at most 64 characters')
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'expected a snapshot prefix of letters, digits, _ . - (starting with a letter or digit)');

export const snapshotSchema = z
  .object({
    create: z.boolean().default(false).describe("Take one atomic snapshot of the job's sources before planning (zfs snapshot -r / several names at once)."),
    prefix: snapshotPrefix
      .optional()
      .describe('Name prefix of the own snapshots (default hozo_<job>); only snapshots named <prefix>_YYYYMMDDTHHMMSSZ are ever pruned.'),
    keep: z.number().int().min(1).max(100000).default(24).describe('How many of the own snapshots to keep on the source (a held base is always kept).'),
  })
  .strict();

/** A URL with a user name or password (userinfo): refused, such credentials travel into every error text. */
export function hasUserinfo(url: string): boolean {
  try {
    const u = new URL(url);
    return u.username !== '' || u.password !== '';
  } catch {
    return false;
  }
}

export const wakeSchema = z
  .object({
    /** wol: magic packet; ssh-relay: run a command on an always-on host at the box's site; http: a URL (smart plug,
     *  Home Assistant); command: any local command; none: the box is always on. */
    method: z
      .enum(['wol', 'ssh-relay', 'http', 'command', 'none'])
      .default('wol')
      .describe(
        "wol: magic packet; ssh-relay: run a command on an always-on host at the box's site; http: a URL (smart plug, Home Assistant); command: any local command; none: the box is always on.",
      ),
    mac: checked(macProblem).optional().describe("The MAC address of the box's NIC (wol, ssh-relay)."),
    /** Where the magic packet goes: the box LAN's broadcast address (e.g. 192.168.1.255) or the box's address. */
    address: checked(wakeAddressProblem)
      .optional()
      .describe("Where the magic packet goes: the box LAN's broadcast address (e.g. 192.168.1.255) or the box's address."),
    port: z.number().int().min(1).max(65535).default(9).describe('UDP port of the magic packet.'),
    /** Magic packets to send (some NICs miss the first). */
    packets: z.number().int().min(2).max(20).default(3).describe('Magic packets to send (some NICs miss the first).'),
    /** ssh-relay: a name under `hosts` to run `command` on. */
    relayHost: z.string().optional().describe('ssh-relay: a name under `hosts` to run `command` on.'),
    /** ssh-relay / command: the argv to run; for ssh-relay default ["wakeonlan", "-i", address, mac]. */
    command: argv.optional().describe('ssh-relay / command: the argv to run; for ssh-relay default ["wakeonlan", "-i", address, mac].'),
    url: checked(httpUrlProblem)
      .refine((v) => !hasUserinfo(v), {
        message:
          'a URL with user:password@ is refused (it would end up in logs and errors); use a URL whose secret is in its path or query (never logged), or a wake command',
      })
      .optional(),
    httpMethod: z.enum(['GET', 'POST']).default('POST').describe('http: the request method.'),
  })
  .strict()
  .superRefine((w, ctx) => {
    const need = (field: keyof typeof w, why: string) => {
      if (w[field] === undefined) ctx.addIssue({ code: 'custom', path: [field], message: `required for method "${w.method}": ${why}` });
    };
    if (w.method === 'wol') {
      need('mac', "the MAC address of the box's NIC");
      need('address', "the broadcast address of the box's LAN (hozo never guesses one)");
    }
    if (w.method === 'ssh-relay') {
      need('relayHost', 'the hosts entry of the always-on relay');
      if (w.command === undefined) {
        need('mac', 'the MAC address to wake (or give `command`)');
        need('address', 'the broadcast address for wakeonlan -i (or give `command`)');
      }
    }
    if (w.method === 'http') need('url', 'the URL that powers the box on');
    if (w.method === 'command') need('command', 'the command that wakes the box');
    if (w.method === 'none') {
      for (const field of ['mac', 'address', 'url', 'command', 'relayHost'] as const) {
        if (w[field] !== undefined)
          ctx.addIssue({
            code: 'custom',
            path: [field],
            message: `method "none" takes no ${field} (the box is always on); remove it or choose the method that uses it`,
          });
      }
    }
  });

/** Where an SSH connection goes and with which key: the box, and a jump host (`via`) alike. */
const sshEndpoint = {
  address: checked(hostAddressProblem),
  port: z.number().int().min(1).max(65535).default(22).describe('SSH port.'),
  user: z
    .string()
    .max(32, 'a user name is at most 32 characters (the Linux limit)')
    .regex(/^[a-z_][a-z0-9_-]*\$?$/i, 'expected a user name')
    .default('root')
    .describe('SSH user (the agent\u2019s user, e.g. hozo, when the box runs hozo-agent).'),
  sshKeyFile: absolutePath.optional().describe('Private key for this connection (a sops-nix secret path works).'),
  /** For `via`: known_hosts with the jump host's key; default: the box's knownHostsFile. */
  knownHostsFile: absolutePath.optional().describe("For `via`: known_hosts with the jump host's key; default: the box's knownHostsFile."),
};

/** A jump host between the controller and the box (its own pinned key, strict checking). */
export const viaSchema = z.object(sshEndpoint).strict();

export const hostSchema = z
  .object({
    ...sshEndpoint,
    /** Extra `ssh -o` options, e.g. ["Ciphers=aes128-gcm@openssh.com"]. Host key checking cannot be turned off here. */
    sshOptions: z
      .array(z.string().regex(/^[A-Za-z][A-Za-z0-9]*=\S+$/, 'expected Key=value'))
      .default([])
      .describe('Extra `ssh -o` options, e.g. ["Ciphers=aes128-gcm@openssh.com"]. Host key checking cannot be turned off here.'),
    /** Reach the box through this jump host (ssh -W), with the same strict host key checking. */
    via: viaSchema.optional().describe('Reach the box through this jump host (ssh -W), with the same strict host key checking.'),
    wake: wakeSchema.optional().describe('How the box is woken: wol, ssh-relay, http, command or none.'),
    readyTimeout: duration('readyTimeout', { min: 1 }).default(300).describe('How long to wait for SSH and the pools after a wake.'),
    /** How the box is put back to sleep: the agent's `shutdown` verb, `shutdownCommand` over SSH, or not at all. */
    shutdown: z
      .enum(['agent', 'ssh', 'none'])
      .default('none')
      .describe("How the box is put back to sleep: the agent's `shutdown` verb, `shutdownCommand` over SSH, or not at all."),
    /** The box runs hozo-agent as the forced command of our key (default: when shutdown is "agent"). */
    agent: z.boolean().optional().describe('The box runs hozo-agent as the forced command of our key (default: when shutdown is "agent").'),
    /** For shutdown: ssh. */
    shutdownCommand: argv.default(['systemctl', 'poweroff']).describe('For shutdown: ssh.'),
    /** Also shut the box down after a run when it was already awake before the run. */
    shutdownIfAwake: z.boolean().default(false).describe('Also shut the box down after a run when it was already awake before the run.'),
    /** Pools that must be imported and healthy before a run (default: the pools of the job's targets). */
    pools: z
      .array(z.string().regex(/^[A-Za-z][A-Za-z0-9_\-:.]*$/, 'expected a pool name'))
      .optional()
      .describe("Pools that must be imported and healthy before a run (default: the pools of the job's targets)."),
    /** A lease on the box (agent) expires after this, so a crashed controller cannot keep the box up forever. */
    leaseTtl: duration('leaseTtl', {
      min: MIN_LEASE_TTL_SECONDS,
      max: MAX_LEASE_TTL_SECONDS,
      why: 'hozo-agent holds a lease for at most 30 days; one under a minute could lapse between the steps of a run',
    })
      .default(6 * 3600)
      .describe('A lease on the box (agent) expires after this, so a crashed controller cannot keep the box up forever.'),
    bandwidthLimit: bandwidthLimit.optional(),
    /** A target pool whose last scrub (as the agent reports it) is older than this is a warning in the report. */
    scrubWarnAfter: duration('scrubWarnAfter')
      .default(DEFAULT_SCRUB_WARN_AFTER)
      .describe(
        'A target pool whose last scrub (as the agent reports it) is older than this is a warning in the report and hozo_pool_scrub_overdue in the metrics.',
      ),
    /** untrusted (every remote box unless said otherwise): it never sees plaintext — encrypted datasets go raw
     *  (`zfs send -w`), unencrypted ones are refused unless their dataset entry says allowPlaintext. trusted: a box you
     *  would hand your data to in the clear. */
    trust: z
      .enum(['untrusted', 'trusted'])
      .default('untrusted')
      .describe(
        'untrusted (every remote box unless said otherwise): it never sees plaintext — encrypted datasets go raw (`zfs send -w`), unencrypted ones are refused unless their dataset entry says allowPlaintext. trusted: a box you would hand your data to in the clear.',
      ),
  })
  .strict()
  .superRefine((h, ctx) => {
    for (const [i, o] of h.sshOptions.entries()) {
      const problem = sshOptionProblem(o);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', path: ['sshOptions', i], message: problem });
    }
  });

/**
 * `ssh -o` options a config may add: an allow-list. Everything that runs a local command or loads code
 * (ProxyCommand, KnownHostsCommand, LocalCommand, PKCS11Provider, SecurityKeyProvider, Match exec), moves the
 * connection's trust (UserKnownHostsFile, GlobalKnownHostsFile, StrictHostKeyChecking other than yes, ControlPath,
 * ControlMaster, IdentityFile — hozo sets these itself from its own fields; HostKeyAlias, which picks another
 * known_hosts entry to check the box against) or changes what runs on the box
 * (RemoteCommand, SendEnv, SetEnv) is refused.
 */
export const ALLOWED_SSH_OPTIONS: readonly string[] = [
  'AddressFamily',
  'BindAddress',
  'BindInterface',
  'CheckHostIP',
  'Ciphers',
  'Compression',
  'ConnectionAttempts',
  'ConnectTimeout',
  'HostKeyAlgorithms',
  'IPQoS',
  'KexAlgorithms',
  'LogLevel',
  'MACs',
  'PubkeyAcceptedAlgorithms',
  'PubkeyAcceptedKeyTypes',
  'RekeyLimit',
  'ServerAliveCountMax',
  'ServerAliveInterval',
  'StrictHostKeyChecking',
  'TCPKeepAlive',
];

/** Why `Key=value` may not be passed to ssh, or undefined when it may. */
export function sshOptionProblem(option: string): string | undefined {
  const eq = option.indexOf('=');
  const key = option.slice(0, eq);
  const value = option.slice(eq + 1);
  const allowed = ALLOWED_SSH_OPTIONS.find((k) => k.toLowerCase() === key.toLowerCase());
  if (/^(StrictHostKeyChecking|UserKnownHostsFile|GlobalKnownHostsFile)$/i.test(key) && !/^yes$/i.test(value)) {
    return 'host key checking cannot be disabled or moved; set knownHostsFile (or hostPublicKey) instead';
  }
  if (/^ProxyJump$/i.test(key))
    return 'a jump host is the host field `via` ({address, port, user, sshKeyFile, knownHostsFile}), checked as strictly as the box';
  if (allowed === undefined)
    return `ssh option ${shownName(key)} is not allowed (it could run a command, load code or change how the box is trusted); allowed: ${ALLOWED_SSH_OPTIONS.join(', ')}`;
  return undefined;
}

export const datasetSchema = z
  .object({
    source: datasetName.describe('The dataset to back up (on this machine).'),
    target: datasetName.describe('Where it goes on the host.'),
    recursive: z.boolean().default(false).describe('Include every dataset below source (each planned on its own).'),
    exclude: z.array(datasetName).default([]).describe('Datasets below source to leave out (with their children).'),
    /** Send this (unencrypted) dataset to an untrusted host anyway, in the clear (`config check` warns). */
    allowPlaintext: z.boolean().default(false).describe('Send this (unencrypted) dataset to an untrusted host anyway, in the clear (`config check` warns).'),
    hooks: hooksSchema.optional().describe('Hooks for this dataset entry (HOZO_DATASET names it).'),
  })
  .strict()
  .superRefine((d, ctx) => {
    for (const [i, e] of d.exclude.entries()) {
      if (e === d.source)
        ctx.addIssue({
          code: 'custom',
          path: ['exclude', i],
          message: `${shownName(e)} is the source itself: excluding it leaves nothing to send (remove the dataset entry instead)`,
        });
      else if (!e.startsWith(d.source + '/')) {
        ctx.addIssue({ code: 'custom', path: ['exclude', i], message: `${shownName(e)} is not below source ${shownName(d.source)}` });
      }
    }
    if (d.exclude.length > 0 && !d.recursive) {
      ctx.addIssue({ code: 'custom', path: ['exclude'], message: 'exclude only makes sense with recursive: true' });
    }
  });

export const jobSchema = z
  .object({
    name: name('job', ' (it becomes a systemd unit name)').describe('The job name (hozo run NAME; the unit hozo-NAME).'),
    host: z.string().min(1).describe('A name under hosts, or "local" for a target on this machine.'),
    datasets: z.array(datasetSchema).min(1, 'expected at least one dataset').describe('What to replicate.'),
    snapshots: z.enum(['all', 'latest']).default('all').describe('all: every snapshot since the common one (zfs send -I); latest: only the newest (-i).'),
    rollback: z.boolean().default(false).describe('Roll a diverged target back to the common snapshot (where the box allows it); never destroys otherwise.'),
    schedule: z
      .string()
      .regex(SCHEDULE, 'expected a systemd calendar expression like "daily", "*-*-* 02:30" or "Mon..Fri 23:00"')
      .superRefine((v, ctx) => {
        const problem = SCHEDULE.test(v) ? calendarProblem(v) : undefined;
        if (problem !== undefined)
          ctx.addIssue({ code: 'custom', message: `expected a systemd calendar expression like "daily", "*-*-* 02:30" or "Mon..Fri 23:00": ${problem}` });
      })
      .default('daily')
      .describe('When the NixOS timer runs it (systemd OnCalendar=).'),
    shutdownAfter: z.boolean().default(true).describe('Put the box back to sleep after the run if this run woke it.'),
    retries: z.number().int().min(0).max(100).default(3).describe('Attempts after a failed transfer.'),
    retryDelay: duration('retryDelay').default(60).describe('Wait between attempts.'),
    /** auto: mbuffer in front of the receiving zfs when the stream crosses the network and that host has it;
     *  mbuffer: on both ends (both must have it); none: no buffer. */
    buffer: z
      .enum(['auto', 'mbuffer', 'none'])
      .default('auto')
      .describe(
        'auto: mbuffer in front of the receiving zfs when the stream crosses the network and that host has it; mbuffer: on both ends (both must have it); none: no buffer.',
      ),
    /** mbuffer's memory on each buffered end (hozo-agent boxes use the agent's own bufferSize). */
    bufferSize: bufferSize.default('128M').describe("mbuffer's memory on each buffered end (hozo-agent boxes use the agent's own bufferSize)."),
    /** Compress the stream in transit with zstd when both ends have it. */
    compress: z.enum(['zstd', 'none']).default('none').describe('Compress the stream in transit with zstd when both ends have it.'),
    bandwidthLimit: bandwidthLimit.optional(),
    snapshot: snapshotSchema.optional().describe('Own snapshots: hozo takes them itself (without sanoid) and prunes only its own.'),
    window: z
      .object({
        maxAwake: duration('maxAwake')
          .refine((v) => v >= 10, { message: 'maxAwake must be at least 10 seconds' })
          .describe('The longest the box stays awake for one run; what does not fit is deferred to the next wake (backlog).'),
      })
      .strict()
      .optional()
      .describe(
        'The wake window: datasets go most lagging first, then smallest; one starts only if its estimated stream fits the time left at the measured rate; a transfer still running at the end is cut (a resumable receive continues next time).',
      ),
    hooks: hooksSchema.optional().describe('Hooks for the whole job.'),
  })
  .strict()
  .superRefine((j, ctx) => {
    const create = j.snapshot?.create === true;
    const needsSnapshot = (h: { preSnapshot?: unknown; postSnapshot?: unknown } | undefined, path: (string | number)[]) => {
      for (const k of ['preSnapshot', 'postSnapshot'] as const) {
        if (h?.[k] !== undefined && !create)
          ctx.addIssue({ code: 'custom', path: [...path, k], message: `${k} runs around hozo's own snapshot: set snapshot.create: true (or use preRun)` });
      }
    };
    needsSnapshot(j.hooks, ['hooks']);
    for (const [i, d] of j.datasets.entries()) needsSnapshot(d.hooks, ['datasets', i, 'hooks']);
  });

export const configSchema = z
  .object({
    stateDirectory: writablePath.default('/var/lib/hozo').describe('Job state, locks, caches.'),
    /** Prometheus textfile output (absent: no metrics file). */
    metrics: z.object({ textfileDirectory: writablePath }).strict().optional().describe('Prometheus textfile output (absent: no metrics file).'),
    /** Append log lines to this file as well as stderr (the NixOS module rotates it). */
    logFile: writablePath.optional().describe('Append log lines to this file as well as stderr (the NixOS module rotates it).'),
    /** Where to report runs: ntfy, pushover, email, webhook. */
    notify: notifySchema.describe('Where to report runs: ntfy, pushover, email, webhook.'),
    hosts: z
      .record(
        name('host', '').refine((n) => n !== 'local', { message: '"local" means this machine in a job\'s host field; give the box another name' }),
        hostSchema,
      )
      .default({})
      .describe('The boxes (and relays), by name.'),
    jobs: z.array(jobSchema).default([]).describe('The backup jobs.'),
  })
  .strict()
  .superRefine((c, ctx) => {
    for (const [name, h] of Object.entries(c.hosts)) {
      const relay = h.wake?.relayHost;
      if (relay !== undefined && (relay === name || !Object.hasOwn(c.hosts, relay))) {
        ctx.addIssue({ code: 'custom', path: ['hosts', name, 'wake', 'relayHost'], message: `expected another entry under hosts, got ${shownName(relay)}` });
      }
    }
    // Linear in the number of datasets (a Map per question, each name's ancestors walked): a config of any size is
    // checked in bounded time. Targets are compared per box, not per host entry: two entries with one address and
    // port (another user, another key) are one pool.
    const boxOf = (host: string): string => {
      if (host === 'local' || !Object.hasOwn(c.hosts, host)) return host === 'local' ? 'local' : `name\0${host}`;
      const h = c.hosts[host]!;
      return `${h.via !== undefined ? `${h.via.address.toLowerCase()}:${h.via.port}>` : ''}${h.address.toLowerCase()}:${h.port}`;
    };
    const sameBox = (host: string, otherHost: string) =>
      host === otherHost ? '' : ` (hosts ${shownName(otherHost)} and ${shownName(host)} are the same box: one address and port)`;
    const seen = new Map<string, number>();
    const targets = new Map<string, { at: string; host: string }>();
    /** Per box: each recursive target, and where it was first given. */
    const recursiveTargets = new Map<string, Map<string, { at: string; index: number; host: string }>>();
    const nested: { host: string; box: string; target: string; index: number; path: (string | number)[] }[] = [];
    let known: string | undefined;
    c.jobs.forEach((job, i) => {
      if (seen.has(job.name)) {
        ctx.addIssue({ code: 'custom', path: ['jobs', i, 'name'], message: `duplicate job name ${shownName(job.name)} (also jobs[${seen.get(job.name)}])` });
      } else seen.set(job.name, i);
      if (job.host !== 'local' && !Object.hasOwn(c.hosts, job.host)) {
        known ??= listed(Object.keys(c.hosts));
        ctx.addIssue({
          code: 'custom',
          path: ['jobs', i, 'host'],
          message: `unknown host ${shownName(job.host)} (expected "local"${known !== '' ? ' or one of: ' + known : ''})`,
        });
      }
      const box = boxOf(job.host);
      job.datasets.forEach((d, j) => {
        const key = `${box}\0${d.target}`;
        const other = targets.get(key);
        if (other !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['jobs', i, 'datasets', j, 'target'],
            message: `target ${shownName(d.target)} on host ${shownName(job.host)} is also the target of ${other.at}${sameBox(job.host, other.host)}`,
          });
        } else targets.set(key, { at: `jobs[${i}].datasets[${j}]`, host: job.host });
        const index = nested.length;
        nested.push({ host: job.host, box, target: d.target, index, path: ['jobs', i, 'datasets', j, 'target'] });
        if (d.recursive) {
          let onHost = recursiveTargets.get(box);
          if (onHost === undefined) recursiveTargets.set(box, (onHost = new Map()));
          if (!onHost.has(d.target)) onHost.set(d.target, { at: `jobs[${i}].datasets[${j}]`, index, host: job.host });
        }
        if (job.host === 'local' && (d.target === d.source || d.target.startsWith(d.source + '/') || d.source.startsWith(d.target + '/'))) {
          ctx.addIssue({
            code: 'custom',
            path: ['jobs', i, 'datasets', j, 'target'],
            message: `target ${shownName(d.target)} overlaps source ${shownName(d.source)} on the same host`,
          });
        }
      });
    });
    // Own snapshots: two jobs that snapshot overlapping sources under one prefix would prune each other's. Jobs in
    // order; each against the earlier ones: the same source, a recursive one above it, or (recursive) one below it.
    const same = new Map<string, { i: number; source: string }>();
    const recursiveAbove = new Map<string, { i: number; source: string }>();
    const below = new Map<string, { i: number; source: string }>();
    c.jobs.forEach((job, i) => {
      if (job.snapshot?.create !== true) return;
      const prefix = snapshotPrefixOf(job);
      const k = (name: string) => `${prefix}\0${name}`;
      for (const d of job.datasets) {
        const b =
          same.get(k(d.source)) ??
          ancestorsOf(d.source)
            .map((a) => recursiveAbove.get(k(a)))
            .find((x) => x !== undefined) ??
          (d.recursive ? below.get(k(d.source)) : undefined);
        if (b !== undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['jobs', i, 'snapshot', 'prefix'],
            message: `jobs[${b.i}] also snapshots ${shownName(b.source)} with prefix ${shownName(prefix)}: give each job its own prefix (each prunes only its own snapshots)`,
          });
          break;
        }
      }
      for (const d of job.datasets) {
        const entry = { i, source: d.source };
        if (!same.has(k(d.source))) same.set(k(d.source), entry);
        if (d.recursive && !recursiveAbove.has(k(d.source))) recursiveAbove.set(k(d.source), entry);
        for (const a of ancestorsOf(d.source)) if (!below.has(k(a))) below.set(k(a), entry);
      }
    });
    // A local target that a job snapshots itself (snapshot.create on it, or on a recursive source above it): each of
    // those snapshots is a divergence the next receive into it refuses.
    const snapped = new Map<string, number>();
    const snappedTree = new Map<string, number>();
    c.jobs.forEach((job, i) => {
      if (job.snapshot?.create !== true) return;
      for (const d of job.datasets) {
        if (!snapped.has(d.source)) snapped.set(d.source, i);
        if (d.recursive && !snappedTree.has(d.source)) snappedTree.set(d.source, i);
      }
    });
    if (snapped.size > 0)
      c.jobs.forEach((job, i) => {
        if (job.host !== 'local') return;
        job.datasets.forEach((d, j) => {
          const above = ancestorsOf(d.target).find((a) => snappedTree.has(a));
          const by = snapped.get(d.target) ?? (above !== undefined ? snappedTree.get(above) : undefined);
          if (by === undefined) return;
          ctx.addIssue({
            code: 'custom',
            path: ['jobs', i, 'datasets', j, 'target'],
            message: `target ${shownName(d.target)} is snapshotted by jobs[${by}] (snapshot.create on ${shownName(above ?? d.target)}${above !== undefined ? ', recursive' : ''}): its snapshots there would make the target diverge from ${shownName(d.source)}`,
          });
        });
      });
    // A target inside another's recursive target: that one's receive owns the whole tree (and may roll it back).
    for (const inner of nested) {
      const onHost = recursiveTargets.get(inner.box);
      if (onHost === undefined) continue;
      let outer: { target: string; at: string; index: number; host: string } | undefined;
      for (const a of ancestorsOf(inner.target)) {
        const o = onHost.get(a);
        if (o !== undefined && (outer === undefined || o.index < outer.index)) outer = { target: a, ...o };
      }
      if (outer !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: inner.path,
          message: `target ${shownName(inner.target)} is inside the recursive target ${shownName(outer.target)} of ${outer.at} on host ${shownName(inner.host)}${sameBox(inner.host, outer.host)}`,
        });
    }
  });

/** "a/b/c" → ["a/b", "a"]: the datasets strictly above a name. */
function ancestorsOf(name: string): string[] {
  const out: string[] = [];
  for (let i = name.lastIndexOf('/'); i > 0; i = name.lastIndexOf('/', i - 1)) out.push(name.slice(0, i));
  return out;
}

/** Names for a message: the first ten, then how many more. */
export function listed(names: readonly string[], max = 10): string {
  const shown = names
    .slice(0, max)
    .map((n) => shownPath(n, 64))
    .join(', ');
  return names.length > max ? `${shown} and ${names.length - max} more` : shown;
}

export type Config = z.output<typeof configSchema>;
export type HostConfig = z.output<typeof hostSchema>;
export type JobConfig = z.output<typeof jobSchema>;
export type DatasetConfig = z.output<typeof datasetSchema>;
export type WakeConfig = z.output<typeof wakeSchema>;
