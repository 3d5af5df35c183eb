// The wire protocol between hozo and hozo-agent, one file for both sides: the exit codes, the version, and the JSON
// replies of the control verbs. The agent builds its replies with these types (`satisfies`); the controller reads
// them through the parsers below, which check every field it uses, because the box is assumed compromised one day
// and its answers are untrusted input: a reply that is not the protocol is an AGENT_PROTOCOL error naming the verb,
// never a crash, a silent default or a value of the wrong type flowing on. Part of the core (no controller code).
// The request side (verbs and their arguments) is agent/command.ts's PROTOCOL, parsed on the box.
import { HozoError } from '../errors.js';

/** The version of the request protocol (`version` and `status` report it). */
export const AGENT_PROTOCOL_VERSION = 1;

/** hozo-agent's exit codes, as the controller reads them. */
export const AgentExit = {
  OK: 0,
  /** The operation ran and failed (a zfs error, an internal error). */
  FAILED: 1,
  /** Not allowed: unknown verb, bad argument, outside the roots, shell syntax. Nothing was done. */
  REFUSED: 2,
  /** Allowed, but not now: shutdown refused (leases, receive, scrub), pools not ready, box shutting down. */
  BUSY: 3,
} as const;
export type AgentExitCode = (typeof AgentExit)[keyof typeof AgentExit];

// --- replies -------------------------------------------------------------------------------------------------

/** One configured pool in `status`: imported or not, health, capacity, errors, scrub and resilver. */
export interface AgentPoolReport {
  readonly name: string;
  readonly imported: boolean;
  /** ONLINE, DEGRADED, … ; null when not imported. */
  readonly health: string | null;
  readonly healthy: boolean;
  /** alloc/size, 0..1; null when unknown. */
  readonly capacityRatio: number | null;
  readonly size: string | null;
  readonly allocated: string | null;
  /** READ+WRITE+CKSUM over leaf vdevs. */
  readonly errors: number | null;
  readonly dataErrors: number | null;
  readonly scan: string | null;
  /** A scrub is running or paused (paused: zpool scrub -p; it goes on with `zpool scrub`). */
  readonly scrubRunning: boolean;
  readonly scrubPaused: boolean;
  /** The running or paused scrub's progress, 0..1; null when none or not shown. */
  readonly scrubProgress: number | null;
  readonly resilverRunning: boolean;
  /** Unix seconds of the last completed scrub. */
  readonly lastScrubEnd: number | null;
  readonly disks: readonly { readonly name: string; readonly power: string | null }[];
}

/** `status`: read-only facts about the box (one JSON line). */
export interface AgentStatus {
  readonly protocol: number;
  readonly host: string;
  readonly time: number;
  readonly uptimeSeconds: number | null;
  readonly pools: readonly (AgentPoolReport | (Omit<AgentPoolReport, 'imported'> & { readonly imported: null; readonly error: string }))[];
  readonly leases: readonly { readonly id: string; readonly created: number; readonly expires: number }[];
  readonly receiveRunning: boolean;
  readonly receives: readonly { readonly dataset: string; readonly pid: number; readonly started: number }[];
  readonly shutdownPending: boolean;
  /** Unix seconds of the last request that counts as activity (the idle guard's clock). */
  readonly lastActivity: number | null;
  readonly idlePoweroffMinutes: number | null;
}

/** `prepare`: the pools imported (or not yet), the roots present, ready or not (exit 0 or BUSY). */
export interface PrepareReply {
  readonly ready: boolean;
  readonly pools: readonly {
    readonly name: string;
    readonly imported: boolean;
    readonly health: string | null;
    /** This call imported it. */
    readonly importedNow: boolean;
    readonly error?: string;
  }[];
  readonly roots: readonly { readonly name: string; readonly exists: boolean }[];
  readonly shutdownPending: boolean;
  readonly waitedSeconds: number;
  /** What prepare did about scrubs (agent config `scrub`): resumed a paused one, started a due one. */
  readonly scrubs?: readonly { readonly pool: string; readonly action: string; readonly detail?: string }[];
}

/** `hold <id> <ttl>`: the lease taken, or why not (exit BUSY). */
export type HoldReply =
  | { readonly held: true; readonly lease: { readonly id: string; readonly created: number; readonly expires: number }; readonly leases: readonly string[] }
  | { readonly held: false; readonly id: string; readonly reason: string; readonly shuttingDown: boolean };

/** `release <id>`: the release of the last lease carries out a shutdown another controller asked for (`shutdown`). */
export interface ReleaseReply {
  readonly released: boolean;
  readonly id: string;
  readonly leases: readonly string[];
  /** Present when this release powered the box off (the shutdown's own report). */
  readonly shutdown?: object;
}

/** One answer in a `session` (a JSON line per request; id 0 is the session's own answer when it ends). */
export interface SessionFrame {
  readonly id: number;
  readonly exit: number;
  readonly stdout: string;
  readonly stderr: string;
}

// --- the controller's readers ---------------------------------------------------------------------------------

type Check = (v: unknown) => boolean;
const str: Check = (v) => typeof v === 'string';
const bool: Check = (v) => typeof v === 'boolean';
const int: Check = (v) => Number.isSafeInteger(v);
const num: Check = (v) => typeof v === 'number' && Number.isFinite(v);
const orNull =
  (c: Check): Check =>
  (v) =>
    v === null || c(v);
const optional =
  (c: Check): Check =>
  (v) =>
    v === undefined || c(v);
const arrayOf =
  (c: Check): Check =>
  (v) =>
    Array.isArray(v) && v.length <= 10_000 && v.every(c);
const objectWith =
  (fields: Record<string, Check>): Check =>
  (v) =>
    typeof v === 'object' &&
    v !== null &&
    !Array.isArray(v) &&
    Object.entries(fields).every(([k, c]) => c(Object.hasOwn(v, k) ? (v as Record<string, unknown>)[k] : undefined));
const ratio: Check = (v) => num(v) && (v as number) >= 0 && (v as number) <= 1;

/** Only the fields the controller reads are checked; the agent may send more. */
const POOL = objectWith({
  name: str,
  imported: orNull(bool),
  health: orNull(str),
  capacityRatio: optional(orNull(ratio)),
  errors: optional(orNull(int)),
  lastScrubEnd: optional(orNull(num)),
  scrubRunning: optional(bool),
  scrubPaused: optional(bool),
  scrubProgress: optional(orNull(ratio)),
});
const STATUS = objectWith({ protocol: int, pools: arrayOf(POOL), shutdownPending: bool });
const PREPARE = objectWith({ ready: bool, shutdownPending: bool, pools: arrayOf(objectWith({ name: str, health: orNull(str) })) });
const LEASE = objectWith({ id: str, created: num, expires: num });
const HOLD: Check = (v) =>
  objectWith({ held: bool })(v) &&
  ((v as { held: boolean }).held ? objectWith({ lease: LEASE, leases: arrayOf(str) })(v) : objectWith({ id: str, reason: str, shuttingDown: bool })(v));
const RELEASE = objectWith({ released: bool, id: str, leases: arrayOf(str), shutdown: optional((v) => typeof v === 'object' && v !== null) });
const FRAME = objectWith({ id: int, exit: int, stdout: str, stderr: str });

/** The reply of `verb` (one JSON line on stdout), checked; an AGENT_PROTOCOL error when it is not the protocol. */
function reply<T>(verb: string, host: string, stdout: string, check: Check): T {
  let v: unknown;
  try {
    v = JSON.parse(stdout);
  } catch {
    v = undefined;
  }
  if (!check(v)) {
    const shown = JSON.stringify(stdout.trim().slice(0, 120));
    throw new HozoError('AGENT_PROTOCOL', `${host}: hozo-agent's answer to "${verb}" is not the protocol: ${shown}`, {
      hint: 'the agent on the box is older or newer than this controller, or the box is not running hozo-agent as the forced command',
    });
  }
  return v as T;
}

export const parseStatusReply = (host: string, stdout: string): AgentStatus => reply('status', host, stdout, STATUS);
export const parsePrepareReply = (host: string, stdout: string): PrepareReply => reply('prepare', host, stdout, PREPARE);
export const parseHoldReply = (host: string, stdout: string): HoldReply => reply('hold', host, stdout, HOLD);
export const parseReleaseReply = (host: string, stdout: string): ReleaseReply => reply('release', host, stdout, RELEASE);

/** A session line, or undefined when it is not one (the session then falls back to single calls). */
export function parseSessionFrame(line: string): SessionFrame | undefined {
  try {
    const v: unknown = JSON.parse(line);
    return FRAME(v) ? (v as SessionFrame) : undefined;
  } catch {
    return undefined;
  }
}
