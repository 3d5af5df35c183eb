import { describe, expect, it } from 'vitest';
import { HozoError } from '../../src/errors.js';
import { waitReady, type Clock, type ReadyProbes } from '../../src/wake/ready.js';

/** A clock that advances only when the code sleeps or a probe "takes time". */
function fakeClock(): Clock & { t: number; sleeps: number[] } {
  const c = {
    t: 0,
    sleeps: [] as number[],
    now: () => c.t,
    sleep: async (ms: number) => {
      c.sleeps.push(ms);
      c.t += ms;
    },
  };
  return c;
}

function probes(opts: { tcpAt?: number; sshAt?: number; poolAt?: number; sshError?: HozoError }, clock: { t: number }): ReadyProbes & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    tcp: async () => {
      calls.push('tcp');
      return clock.t >= (opts.tcpAt ?? 0);
    },
    ssh: async () => {
      calls.push('ssh');
      if (opts.sshError) throw opts.sshError;
      if (clock.t < (opts.sshAt ?? 0)) throw new HozoError('HOST_UNREACHABLE', 'kex_exchange_identification: Connection closed');
    },
    pool: async () => {
      calls.push('pool');
      return clock.t >= (opts.poolAt ?? 0) ? { ready: true, detail: '' } : { ready: false, detail: 'pool backup not imported' };
    },
  };
}

describe('waitReady', () => {
  it('a signal (SIGTERM) ends the wait at once with its reason, mid-sleep, however long readyTimeout is', async () => {
    // A real clock: the abort must cut a real sleep short.
    const clock: Clock = { now: () => Date.now(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)) };
    const ac = new AbortController();
    const reason = new HozoError('INTERRUPTED', 'interrupted by SIGTERM');
    let tcpCalls = 0;
    const p: ReadyProbes = {
      tcp: async () => (tcpCalls++, false),
      ssh: async () => undefined,
      pool: async () => ({ ready: true, detail: '' }),
    };
    setTimeout(() => ac.abort(reason), 1500);
    const t = Date.now();
    await expect(waitReady('box', p, 600, clock, { wake: 'none', signal: ac.signal })).rejects.toBe(reason);
    expect(Date.now() - t).toBeLessThan(3000);
    expect(tcpCalls).toBeGreaterThan(1);
    // Already aborted: no probe at all.
    let probed = false;
    await expect(waitReady('box', { ...p, tcp: async () => ((probed = true), true) }, 600, clock, { signal: ac.signal })).rejects.toBe(reason);
    expect(probed).toBe(false);
  });
  it('goes tcp → ssh → pool and records when each became ready', async () => {
    const clock = fakeClock();
    const p = probes({ tcpAt: 5000, sshAt: 6000, poolAt: 9000 }, clock);
    const r = await waitReady('box', p, 60, clock);
    expect(r.stages.tcp).toBeGreaterThanOrEqual(5);
    expect(r.stages.ssh).toBeGreaterThanOrEqual(6);
    expect(r.seconds).toBeGreaterThanOrEqual(9);
    expect(r.seconds).toBeLessThan(12);
  });
  it('measures the successful pool probe alone (one request to the box), not the polls before it', async () => {
    const clock = fakeClock();
    let polls = 0;
    const p: ReadyProbes = {
      tcp: async () => true,
      ssh: async () => undefined,
      pool: async () => {
        clock.t += 1500; // each request takes 1.5 s
        return ++polls >= 3 ? { ready: true, detail: '' } : { ready: false, detail: 'pool backup not imported' };
      },
    };
    const r = await waitReady('box', p, 60, clock);
    expect(polls).toBe(3);
    expect(r.probeSeconds).toBe(1.5);
    expect(r.stages.pool).toBeGreaterThan(4.5);
  });
  it('polls the port from 100 ms up to 500 ms, and the later stages up to 2 s', async () => {
    const clock = fakeClock();
    await waitReady('box', probes({ tcpAt: 20_000 }, clock), 60, clock);
    expect(clock.sleeps.slice(0, 6)).toEqual([100, 200, 400, 500, 500, 500]);
    expect(Math.max(...clock.sleeps)).toBe(500);
    const later = fakeClock();
    await waitReady('box', probes({ poolAt: 20_000 }, later), 60, later);
    expect(later.sleeps.slice(0, 6)).toEqual([100, 200, 400, 800, 1600, 2000]);
    expect(Math.max(...later.sleeps)).toBe(2000);
  });
  it('notices an open port within 0.5 s of it opening', async () => {
    for (const at of [3000, 3333, 3667, 4100]) {
      const clock = fakeClock();
      const r = await waitReady('box', probes({ tcpAt: at }, clock), 60, clock);
      expect(r.stages.tcp * 1000 - at).toBeLessThanOrEqual(500);
    }
  });
  it('times out naming the stage that never became ready', async () => {
    for (const [opts, stage] of [
      [{ tcpAt: 1e9 }, 'SSH port never opened'],
      [{ sshAt: 1e9 }, 'handshake never completed'],
      [{ poolAt: 1e9 }, 'pool never became ready'],
    ] as const) {
      const clock = fakeClock();
      const err = (await waitReady('box', probes(opts, clock), 30, clock).catch((e: unknown) => e)) as HozoError;
      expect(err.code).toBe('HOST_UNREACHABLE');
      expect(err.message).toContain(stage);
      expect(clock.t).toBeLessThanOrEqual(30_000);
      expect(clock.t).toBeGreaterThanOrEqual(28_000);
    }
  });
  it('the never-opened message fits the wake method and the jump host: no magic packet talk for wake none', async () => {
    const msg = async (context: Parameters<typeof waitReady>[4]) => {
      const clock = fakeClock();
      const err = (await waitReady('box', probes({ tcpAt: 1e9 }, clock), 10, clock, context).catch((e: unknown) => e)) as HozoError;
      return `${err.message} | ${err.hint}`;
    };
    expect(await msg({ wake: 'wol' })).toMatch(/magic packet reach it/);
    for (const wake of ['none', 'http', 'command'] as const) expect(await msg({ wake })).not.toMatch(/magic packet/);
    expect(await msg({ wake: 'none' })).toMatch(/no wake method/);
    expect(await msg({ wake: 'http' })).toMatch(/power switch/);
    expect(await msg({ wake: 'wol', via: true })).toMatch(/through the jump host \(via\).*jump host \(via\) can reach the box/);
  });
  it('wakes the box again every 15 s while its port stays closed (a packet lost while it was still going down), not after', async () => {
    const clock = fakeClock();
    const wakes: number[] = [];
    const p = { ...probes({ tcpAt: 40_000, poolAt: 41_000 }, clock), rewake: async () => void wakes.push(clock.t) };
    await waitReady('box', p, 120, clock);
    expect(wakes).toHaveLength(2);
    expect(wakes[0]).toBeGreaterThanOrEqual(15_000);
    expect(wakes[1]! - wakes[0]!).toBeGreaterThanOrEqual(15_000);
    expect(wakes.every((t) => t < 40_000)).toBe(true);
    // Bounded by the deadline: a box that never answers is woken at most timeout/15 s times.
    const c2 = fakeClock();
    const w2: number[] = [];
    await waitReady('box', { ...probes({ tcpAt: 1e9 }, c2), rewake: async () => void w2.push(c2.t) }, 60, c2).catch(() => undefined);
    expect(w2.length).toBeGreaterThanOrEqual(3);
    expect(w2.length).toBeLessThanOrEqual(4);
  });
  it('stops at once on an authentication or host key failure', async () => {
    const clock = fakeClock();
    const p = probes({ sshError: new HozoError('SSH_HOST_KEY', 'host key not trusted') }, clock);
    const err = (await waitReady('box', p, 300, clock).catch((e: unknown) => e)) as HozoError;
    expect(err.code).toBe('SSH_HOST_KEY');
    expect(p.calls.filter((c) => c === 'ssh')).toHaveLength(1);
  });
});
