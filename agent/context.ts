// Everything a verb needs, injected: config, state files, a Runner for zfs/zpool with captured output, a spawner that
// hands the agent's own stdin/stdout to a child (the data path never passes through JavaScript), and the output sinks.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, statSync } from 'node:fs';
import { openForAppend } from '../src/util/safe-fs.js';
import { constants } from 'node:os';
import { LocalRunner } from '../src/transport/local.js';
import type { Runner } from '../src/transport/runner.js';
import type { AgentConfig } from './config.js';
import { AuditLog } from './log.js';
import { AgentState, type Clock } from './state.js';

import { AgentExit } from '../src/protocol/agent.js';

export { AgentExit };

export interface StreamOptions {
  /** 'inherit' hands the agent's stdin (the SSH channel) to the child. */
  readonly stdin: 'inherit' | 'ignore';
  readonly stdout: 'inherit' | 'ignore';
}

/**
 * Runs a chain of commands connected stdout→stdin (usually one: `zfs receive`), the first reading the agent's stdin
 * and the last writing the agent's stdout; resolves with the exit code that matters (the zfs stage's, else the first
 * failure; 128+signal when killed).
 */
export type StreamSpawner = (chain: readonly (readonly string[])[], opts: StreamOptions) => Promise<number>;

/** Starts argv detached from this process (it outlives the SSH call); output goes to logFile when writable. */
export type DetachedSpawner = (argv: readonly string[], logFile: string) => void;

export interface AgentContext {
  readonly config: AgentConfig;
  readonly state: AgentState;
  readonly runner: Runner;
  readonly stream: StreamSpawner;
  readonly detach: DetachedSpawner;
  readonly log: AuditLog;
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly sleep: (ms: number) => Promise<void>;
  /** Where a vdev's disk power state is read; null when unknown. */
  readonly diskPower: (vdev: string) => Promise<string | null>;
  /** The controller section this request runs for (`serve --controller NAME`, agent/scope.ts); none: the whole box. */
  readonly controller?: string;
}

export const defaultStream: StreamSpawner = (chain, opts) =>
  new Promise((resolve) => {
    if (chain.length === 0 || chain.some((argv) => argv.length === 0)) {
      resolve(AgentExit.FAILED);
      return;
    }
    const children: ChildProcess[] = [];
    const codes: Promise<number>[] = [];
    for (const [i, argv] of chain.entries()) {
      const prev = children[i - 1];
      const last = i === chain.length - 1;
      const child = spawn(argv[0]!, argv.slice(1), { stdio: [prev?.stdout ?? opts.stdin, last ? opts.stdout : 'pipe', 'inherit'] });
      // The child holds its own copy of the pipe; ours must go before the event loop reads from it.
      prev?.stdout?.destroy();
      children.push(child);
      codes.push(
        new Promise<number>((done) => {
          child.on('error', (e) => {
            process.stderr.write(`hozo-agent: cannot run ${argv[0]}: ${e.message}\n`);
            done(127);
          });
          child.on('close', (code, signal) => done(code ?? 128 + (signal !== null ? (constants.signals[signal] ?? 0) : 0)));
        }).then((code) => {
          // A failed stage must not leave its neighbours waiting on a pipe nobody serves.
          if (code !== 0)
            setTimeout(() => {
              for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
            }, 2000).unref();
          return code;
        }),
      );
    }
    // The SSH session ending or systemd stopping us must stop the children too (a receive would hold the pool busy).
    const forward = (sig: NodeJS.Signals) => () => {
      for (const c of children) c.kill(sig);
    };
    const handlers = (['SIGTERM', 'SIGINT', 'SIGHUP'] as const).map((s) => [s, forward(s)] as const);
    for (const [s, h] of handlers) process.on(s, h);
    void Promise.all(codes).then((all) => {
      for (const [s, h] of handlers) process.off(s, h);
      const main = Math.max(
        0,
        chain.findIndex((argv) => argv[0] === 'zfs'),
      );
      resolve(all[main] !== 0 ? all[main]! : (all.find((c) => c !== 0) ?? 0));
    });
  });

export const defaultDetach: DetachedSpawner = (argv, logFile) => {
  const [file, ...args] = argv;
  if (file === undefined) return;
  let fd: number | 'ignore' = 'ignore';
  try {
    fd = openForAppend(logFile, 0o640); // never blocks (a FIFO as logFile), only a regular file
  } catch {
    // no log: run anyway
  }
  try {
    const child = spawn(file, args, { detached: true, stdio: ['ignore', fd, fd] });
    child.on('error', () => undefined);
    child.unref();
  } finally {
    if (typeof fd === 'number') closeSync(fd);
  }
};

const DISK_DIRS = ['/dev/disk/by-id', '/dev/disk/by-vdev', '/dev/disk/by-partuuid', '/dev/disk/by-path', '/dev'];

/** `hdparm -C` on the block device behind a vdev name; null for files, unknown names or no hdparm. */
export function hdparmDiskPower(runner: Runner): (vdev: string) => Promise<string | null> {
  return async (vdev) => {
    const candidates = vdev.startsWith('/') ? [vdev] : DISK_DIRS.map((d) => `${d}/${vdev}`);
    const dev = candidates.find((p) => {
      try {
        return existsSync(p) && statSync(p).isBlockDevice();
      } catch {
        return false;
      }
    });
    if (dev === undefined) return null;
    try {
      const r = await runner.run(['hdparm', '-C', dev], { timeoutMs: 5000 });
      const state = /drive state is:\s*(\S.*)$/m.exec(r.stdout)?.[1]?.trim();
      return r.exitCode === 0 && state !== undefined ? state : null;
    } catch {
      return null; // no hdparm
    }
  };
}

export function createContext(config: AgentConfig, opts: { clock?: Clock; controller?: string } = {}): AgentContext {
  const runner = new LocalRunner({ defaultTimeoutMs: 120_000 });
  return {
    config,
    state: new AgentState({
      leaseDirectory: config.leaseDirectory,
      stateDirectory: config.stateDirectory,
      ...(opts.clock !== undefined ? { clock: opts.clock } : {}),
    }),
    runner,
    stream: defaultStream,
    detach: defaultDetach,
    log: new AuditLog(config.logFile),
    out: (t) => void process.stdout.write(t),
    err: (t) => void process.stderr.write(t),
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    diskPower: hdparmDiskPower(runner),
    ...(opts.controller !== undefined ? { controller: opts.controller } : {}),
  };
}
