// Ready = TCP port open → SSH handshake with the pinned host key → pool imported and healthy. Polled with backoff
// from 100 ms until the deadline; the error names the stage that never became ready. The port probe backs off only
// to 500 ms: it is one SYN on the LAN, and every interval of waiting is time the box sits awake unused after its
// sshd comes up (bench: a 2 s cap cost ~1 s per wake on average).
import { connect } from 'node:net';
import { HozoError, isHozoError } from '../errors.js';

export type ReadyStage = 'tcp' | 'ssh' | 'pool';

export interface ReadyProbes {
  /** One TCP connect attempt. */
  tcp(timeoutMs: number): Promise<boolean>;
  /** One SSH handshake + auth; throws a typed error (SSH_AUTH/SSH_HOST_KEY are final, HOST_UNREACHABLE retried). */
  ssh(): Promise<void>;
  /** One check that the pool(s) are imported and healthy; `detail` explains a "not yet". */
  pool(): Promise<{ ready: boolean; detail: string }>;
}

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
}

const WHY: Record<ReadyStage, string> = {
  tcp: 'its SSH port never opened (did the magic packet reach it? is WoL enabled in the BIOS/NIC?)',
  ssh: 'its SSH port opened but the SSH handshake never completed',
  pool: 'SSH works but its pool never became ready',
};

const TCP_POLL_CAP_MS = 500;
const POLL_CAP_MS = 2000;

export async function waitReady(host: string, probes: ReadyProbes, timeoutSeconds: number, clock: Clock = realClock): Promise<ReadyResult> {
  const start = clock.now();
  const deadline = start + timeoutSeconds * 1000;
  const stages: Partial<Record<ReadyStage, number>> = {};
  let stage: ReadyStage = 'tcp';
  let delay = 100;
  let attempts = 0;
  let lastDetail = '';
  // Bounded: at most one attempt per backoff step until the deadline, and never more than 10,000 attempts.
  while (attempts < 10_000) {
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
      } else if (stage === 'ssh') {
        await probes.ssh();
        stages.ssh = (clock.now() - start) / 1000;
        stage = 'pool';
        delay = 100;
        continue;
      } else {
        const p = await probes.pool();
        if (p.ready) {
          stages.pool = (clock.now() - start) / 1000;
          return { seconds: stages.pool, stages: stages as Record<ReadyStage, number>, attempts };
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
    await clock.sleep(Math.min(delay, cap, deadline - now));
    delay = Math.min(delay * 2, cap);
  }
  throw new HozoError('HOST_UNREACHABLE', `host "${host}" did not become ready within ${timeoutSeconds}s: ${WHY[stage]}${lastDetail ? ` (last: ${lastDetail.split('\n')[0]})` : ''}`, {
    hint: stage === 'tcp' ? 'check wake settings (MAC, broadcast address, port), the box\'s power and network' : stage === 'ssh' ? 'check sshd on the box and the host key in knownHostsFile' : 'check the pool on the box (`zpool status`), its disks and the agent\'s roots',
  });
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
