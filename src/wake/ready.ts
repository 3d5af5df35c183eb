// Ready = TCP port open → SSH handshake with the pinned host key → pool imported and healthy. Polled with backoff
// from 100 ms until the deadline; the error names the stage that never became ready. The port probe backs off only
// to 500 ms: it is one SYN on the LAN, and every interval of waiting is time the box sits awake unused after its
// sshd comes up (bench: a 2 s cap cost ~1 s per wake on average).
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import type { HostConfig } from '../config/schema.js';
import { HozoError, isHozoError } from '../errors.js';
import { throwIfInterrupted, unlessInterrupted } from '../job/interrupt.js';
import { classifySshFailure, forwardTarget, viaArgv } from '../transport/ssh.js';

export type ReadyStage = 'tcp' | 'ssh' | 'pool';

export interface ReadyProbes {
  /** One TCP connect attempt. */
  tcp(timeoutMs: number): Promise<boolean>;
  /** One SSH handshake + auth; throws a typed error (SSH_AUTH/SSH_HOST_KEY are final, HOST_UNREACHABLE retried). */
  ssh(): Promise<void>;
  /** One check that the pool(s) are imported and healthy; `detail` explains a "not yet". */
  pool(): Promise<{ ready: boolean; detail: string }>;
  /** Wakes the box again (magic packets): called every REWAKE_MS while its port stays closed. A packet that arrived
   *  while the box was still on its way down (its sshd gone, the machine not yet off) is lost; a NIC listens for the
   *  next one only once the machine is off. */
  rewake?(): Promise<void>;
}

/** How often a box whose port stays closed is woken again (wol and ssh-relay only). */
export const REWAKE_MS = 15_000;

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const realClock: Clock = { now: () => Date.now(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)) };

export interface ReadyResult {
  /** Seconds from the call to ready. */
  readonly seconds: number;
  /** Seconds at which each stage first succeeded. */
  readonly stages: Readonly<Record<ReadyStage, number>>;
  readonly attempts: number;
  /** Seconds the successful pool probe took: one request to the box, a measure of its round trip (wake window). */
  readonly probeSeconds: number;
}

/** How the box was (or was not) woken and reached: the "never opened" message and hint fit it. */
export interface ReadyContext {
  readonly wake?: 'wol' | 'ssh-relay' | 'http' | 'command' | 'none';
  readonly via?: boolean;
  /** The run's interruption (SIGINT/SIGTERM): the wait ends at once with its reason. */
  readonly signal?: AbortSignal;
}

const TCP_WHY: Record<NonNullable<ReadyContext['wake']>, string> = {
  wol: 'did the magic packet reach it? is WoL enabled in the BIOS/NIC?',
  'ssh-relay': 'did the relay send the magic packet? is WoL enabled in the BIOS/NIC?',
  http: 'did the power switch turn it on? does it boot when powered (BIOS "restore on AC power loss")?',
  command: 'did the wake command really turn it on?',
  none: 'it has no wake method: hozo only waited for it to come up by itself',
};
const TCP_HINT: Record<NonNullable<ReadyContext['wake']>, string> = {
  wol: "check wake settings (MAC, broadcast address, port), the box's power and network",
  'ssh-relay': "check the relay host, the MAC and broadcast address it uses, the box's power and network",
  http: "check the switch's URL and that the box powers on with it, and the box's network",
  command: "check the wake command by hand, the box's power and network",
  none: 'start the box by hand, or give it a wake method (wake.method)',
};

function why(stage: ReadyStage, c: ReadyContext): string {
  if (stage === 'ssh') return 'its SSH port opened but the SSH handshake never completed';
  if (stage === 'pool') return 'SSH works but its pool never became ready';
  const port = c.via === true ? 'its SSH port never answered through the jump host (via)' : 'its SSH port never opened';
  return `${port} (${TCP_WHY[c.wake ?? 'none']})`;
}

function hintFor(stage: ReadyStage, c: ReadyContext): string {
  if (stage === 'ssh') return 'check sshd on the box and the host key in knownHostsFile';
  if (stage === 'pool') return "check the pool on the box (`zpool status`), its disks and the agent's roots";
  return TCP_HINT[c.wake ?? 'none'] + (c.via === true ? '; and that the jump host (via) can reach the box' : '');
}

const TCP_POLL_CAP_MS = 500;
const POLL_CAP_MS = 2000;

export async function waitReady(
  host: string,
  probes: ReadyProbes,
  timeoutSeconds: number,
  clock: Clock = realClock,
  context: ReadyContext = { wake: 'wol' },
): Promise<ReadyResult> {
  const start = clock.now();
  const deadline = start + timeoutSeconds * 1000;
  const stages: Partial<Record<ReadyStage, number>> = {};
  let stage: ReadyStage = 'tcp';
  let delay = 100;
  let attempts = 0;
  let lastDetail = '';
  let lastWake = start;
  // Bounded: at most one attempt per backoff step until the deadline, and never more than 10,000 attempts.
  while (attempts < 10_000) {
    throwIfInterrupted(context.signal);
    attempts++;
    try {
      if (stage === 'tcp') {
        if (await probes.tcp(Math.min(700, Math.max(100, deadline - clock.now())))) {
          delay = 100;
          stages.tcp = (clock.now() - start) / 1000;
          stage = 'ssh';
          continue;
        }
        lastDetail = 'connection refused or timed out';
        if (probes.rewake !== undefined && clock.now() - lastWake >= REWAKE_MS && clock.now() < deadline) {
          lastWake = clock.now();
          await probes.rewake();
        }
      } else if (stage === 'ssh') {
        await probes.ssh();
        stages.ssh = (clock.now() - start) / 1000;
        stage = 'pool';
        delay = 100;
        continue;
      } else {
        const asked = clock.now();
        const p = await probes.pool();
        if (p.ready) {
          stages.pool = (clock.now() - start) / 1000;
          return { seconds: stages.pool, stages: stages as Record<ReadyStage, number>, attempts, probeSeconds: (clock.now() - asked) / 1000 };
        }
        lastDetail = p.detail;
      }
    } catch (e) {
      // Not for this loop: waiting cannot fix keys or an agent that refuses us, and a box on its way down must be let
      // go down and woken again (the caller does that).
      if (isHozoError(e, 'SSH_AUTH') || isHozoError(e, 'SSH_HOST_KEY') || isHozoError(e, 'AGENT_REFUSED') || isHozoError(e, 'BOX_SHUTTING_DOWN')) throw e;
      lastDetail = e instanceof Error ? e.message : String(e);
    }
    const now = clock.now();
    if (now >= deadline) break;
    const cap = stage === 'tcp' ? TCP_POLL_CAP_MS : POLL_CAP_MS;
    await unlessInterrupted(clock.sleep(Math.min(delay, cap, deadline - now)), context.signal);
    delay = Math.min(delay * 2, cap);
  }
  throw new HozoError(
    'HOST_UNREACHABLE',
    `host "${host}" did not become ready within ${timeoutSeconds}s: ${why(stage, context)}${lastDetail ? ` (last: ${lastDetail.split('\n')[0]})` : ''}`,
    {
      hint: hintFor(stage, context),
    },
  );
}

/** One TCP connect attempt to host:port. */
export function tcpOpen(address: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: address, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** The shortest wait for a probe through a jump host: its own SSH handshake comes first. */
export const VIA_PROBE_MIN_MS = 8000;

/**
 * Whether the box's SSH port answers right now. Direct: one TCP connect. Behind a jump host (`via`) the box's address
 * may be reachable only from there, so the probe goes the way every connection does: `ssh -W box:port` through the
 * jump, open when the box's SSH banner comes back (bounded by max(timeoutMs, VIA_PROBE_MIN_MS)). A jump host that
 * refuses our key or whose host key is not known rejects with SSH_AUTH / SSH_HOST_KEY naming it: no waiting fixes that.
 */
export function boxPortOpen(host: HostConfig, timeoutMs: number): Promise<boolean> {
  if (host.via === undefined) return tcpOpen(host.address, host.port, timeoutMs);
  const jump = `${host.via.address} (jump host)`;
  return new Promise((resolve, reject) => {
    const [cmd, ...args] = viaArgv(host, forwardTarget(host.address, host.port));
    const child = spawn(cmd!, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let seen = '';
    let stderr = '';
    let settled = false;
    const done = (ok: boolean | Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      if (ok instanceof Error) reject(ok);
      else resolve(ok);
    };
    child.stderr.on('data', (b: Buffer) => {
      if (stderr.length < 8192) stderr += b.toString('utf8');
    });
    const timer = setTimeout(() => done(false), Math.max(timeoutMs, VIA_PROBE_MIN_MS));
    child.stdout.on('data', (b: Buffer) => {
      seen += b.toString('latin1');
      if (seen.startsWith('SSH-')) done(true);
      else if (seen.length >= 4) done(false);
    });
    child.once('error', () => done(false));
    child.once('close', () => {
      const e = classifySshFailure(jump, stderr);
      done(e !== undefined && (e.code === 'SSH_HOST_KEY' || e.code === 'SSH_AUTH') ? e : false);
    });
  });
}
