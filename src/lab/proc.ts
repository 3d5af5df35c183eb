// Small process helpers for the test lab: run argv with a timeout, bounded waits, /proc inspection, kill-and-wait.
// Everything here is bounded in time; nothing loops forever.
import { accessSync, constants, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { execa } from 'execa';

export class LabError extends Error {
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'LabError';
  }
}

export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
  /** null when killed (timeout or signal). */
  readonly exitCode: number | null;
}

export interface RunOpts {
  /** Default 30 s; the command is killed after that. */
  readonly timeoutMs?: number;
  readonly input?: string;
  readonly env?: Record<string, string>;
}

/** Runs argv; never rejects for a non-zero exit, only when the command cannot be started. */
export async function run(argv: readonly string[], opts: RunOpts = {}): Promise<RunResult> {
  const [file, ...args] = argv;
  if (file === undefined) throw new LabError('run: empty argv');
  const r = await execa(file, args, {
    reject: false,
    timeout: opts.timeoutMs ?? 30_000,
    stripFinalNewline: false,
    ...(opts.input !== undefined ? { input: opts.input } : { stdin: 'ignore' as const }),
    ...(opts.env !== undefined ? { env: opts.env } : {}),
  });
  if (r.failed && r.exitCode === undefined && !r.timedOut && r.signal === undefined) {
    throw new LabError(`cannot run ${file}: ${r.message}`, { cause: r });
  }
  return { stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? ''), exitCode: r.exitCode ?? null };
}

/** Runs argv and returns trimmed stdout; throws a LabError carrying stderr on failure. */
export async function check(argv: readonly string[], opts: RunOpts = {}): Promise<string> {
  const r = await run(argv, opts);
  if (r.exitCode !== 0) {
    const why = r.exitCode === null ? 'was killed (timeout?)' : `exited ${r.exitCode}`;
    throw new LabError(`\`${argv.join(' ')}\` ${why}: ${r.stderr.trim() || r.stdout.trim() || '(no output)'}`);
  }
  return r.stdout.trim();
}

export const sleep = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));

/** Polls fn until it returns a value other than undefined/false, at most timeoutMs. */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  opts: { timeoutMs: number; intervalMs?: number; onTimeout?: () => string },
): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  const interval = opts.intervalMs ?? 50;
  for (let i = 0; ; i++) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() >= deadline || i > 100_000) {
      const extra = opts.onTimeout?.();
      throw new LabError(`timed out after ${opts.timeoutMs} ms waiting for ${what}${extra ? `\n${extra}` : ''}`);
    }
    await sleep(interval);
  }
}

/** All pids currently in /proc. */
export function listPids(): number[] {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number);
}

/** True when the process exists and is not a zombie. */
export function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

export function commOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** The namespace id (e.g. "mnt:[4026531832]") of a process, undefined when it is gone. */
export function nsOf(pid: number | 'self', kind: 'mnt' | 'net'): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/${kind}`);
  } catch {
    return undefined;
  }
}

/** One environment variable of another process (undefined when unreadable or unset). */
export function envOf(pid: number, name: string): string | undefined {
  try {
    const prefix = `${name}=`;
    for (const kv of readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0')) {
      if (kv.startsWith(prefix)) return kv.slice(prefix.length);
    }
  } catch {
    // gone or a kernel thread
  }
  return undefined;
}

export { procStartTime } from '../util/proc.js';

/** This process and its ancestors: never signalled by cleanup. */
export function selfAndAncestors(): Set<number> {
  const out = new Set<number>([process.pid]);
  let pid = process.ppid;
  for (let i = 0; i < 64 && pid > 1; i++) {
    out.add(pid);
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      pid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    } catch {
      break;
    }
  }
  out.add(1);
  return out;
}

/** SIGTERM, wait up to graceMs, then SIGKILL and wait up to 3 s more. Returns pids still alive (normally none). */
export async function killAndWait(pids: readonly number[], graceMs = 3000): Promise<number[]> {
  const protectedPids = selfAndAncestors();
  const targets = pids.filter((p) => !protectedPids.has(p) && pidAlive(p));
  const signal = (sig: NodeJS.Signals) => {
    for (const p of targets) {
      try {
        process.kill(p, sig);
      } catch {
        // already gone
      }
    }
  };
  const alive = () => targets.filter(pidAlive);
  if (targets.length === 0) return [];
  signal('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (alive().length > 0 && Date.now() < deadline) await sleep(25);
  if (alive().length === 0) return [];
  signal('SIGKILL');
  const deadline2 = Date.now() + 3000;
  while (alive().length > 0 && Date.now() < deadline2) await sleep(25);
  return alive();
}

/** True when a TCP connection to host:port is accepted within timeoutMs. */
export function portOpen(host: string, port: number, timeoutMs = 300): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    const done = (v: boolean) => {
      clearTimeout(timer);
      sock.removeAllListeners();
      sock.on('error', () => undefined);
      sock.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/** Last lines of a log file, for error messages. */
export function tail(file: string, lines = 15): string {
  try {
    const all = readFileSync(file, 'utf8').trimEnd().split('\n');
    return all.slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Whether `name` resolves to an executable on PATH (or is an absolute executable path). */
export function which(name: string): string | undefined {
  const dirs = name.includes('/') ? [''] : (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin', '/usr/bin', '/bin']);
  for (const d of dirs) {
    const p = d === '' ? name : `${d}/${name}`;
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return undefined;
}
