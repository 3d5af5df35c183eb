// What `hozo status` and `hozo serve` show: the last run of each job, and each box awake, asleep or unreachable with
// its pools' health; loaded only when one of them runs.
import type { Config } from '../../config/schema.js';
import { readJobState, type JobState } from '../../state/state.js';
import { usesAgent } from '../../config/lookup.js';
import { bringUp, poolsFor } from '../../job/lifecycle.js';
import { SshRunner } from '../../transport/ssh.js';
import type { Runner } from '../../transport/runner.js';
import type { Logger } from '../../util/log.js';
import { boxPortOpen } from '../../wake/ready.js';
import { findHost } from '../../config/lookup.js';
import { poolListArgv } from '../../zfs/pool-argv.js';
import { parseZpoolList } from '../../zfs/pool-list.js';
import { checkResult } from '../../zfs/errors.js';
import { parseStatusReply } from '../../protocol/agent.js';

export interface HostStatus {
  name: string;
  awake: boolean;
  woken: boolean;
  pools?: { name: string; health: string; capacity?: string; scrub?: string }[];
  agent?: unknown;
  error?: string;
}

/** "scrub paused at 12%", "scrub running 40%", "last scrub 3 days ago" (the agent's status of a pool). */
function scrubText(p: { scrubRunning?: boolean; scrubPaused?: boolean; scrubProgress?: number | null; lastScrubEnd?: number | null }): string | undefined {
  const pct = typeof p.scrubProgress === 'number' ? ` ${Math.round(p.scrubProgress * 100)}%` : '';
  if (p.scrubPaused === true) return `scrub paused at${pct || ' ?'}`;
  if (p.scrubRunning === true) return `scrub running${pct}`;
  if (typeof p.lastScrubEnd === 'number') return `last scrub ${Math.max(0, Math.round((Date.now() / 1000 - p.lastScrubEnd) / 86400))} days ago`;
  return undefined;
}

async function boxStatus(runner: Runner, agent: boolean, pools: string[]): Promise<Pick<HostStatus, 'pools' | 'agent'>> {
  if (agent) {
    const json = parseStatusReply(
      runner.name,
      checkResult(await runner.run(['status']), { action: 'status (hozo-agent)', host: runner.name, argv: ['status'] }),
    );
    return {
      agent: json,
      pools: json.pools.map((p) => ({
        name: p.name,
        health: p.health ?? 'MISSING',
        ...(typeof p.capacityRatio === 'number' ? { capacity: `${Math.round(p.capacityRatio * 100)}%` } : {}),
        ...(scrubText(p) !== undefined ? { scrub: scrubText(p)! } : {}),
      })),
    };
  }
  const out: NonNullable<HostStatus['pools']> = [];
  for (const pool of pools) {
    const r = await runner.run(poolListArgv(pool));
    const row = parseZpoolList(r.stdout).find((p) => p.name === pool);
    out.push({
      name: pool,
      health: r.exitCode === 0 ? (row?.health ?? 'UNKNOWN') : 'MISSING',
      ...(row?.capacityRatio !== undefined ? { capacity: `${Math.round(row.capacityRatio * 100)}%` } : {}),
    });
  }
  return { pools: out };
}

export async function hostStatus(config: Config, name: string, wake: boolean, log: Logger): Promise<HostStatus> {
  const host = findHost(config, name);
  const agent = usesAgent(host);
  const jobs = config.jobs.filter((j) => j.host === name);
  const pools = [...new Set(jobs.flatMap((j) => poolsFor(host, j)))];
  const st: HostStatus = { name, awake: false, woken: false };
  try {
    if (await boxPortOpen(host, 1500)) {
      const runner = new SshRunner({ name, host });
      try {
        await runner.connect();
        st.awake = true;
        Object.assign(st, await boxStatus(runner, agent, pools));
      } finally {
        await runner.close();
      }
    } else if (wake) {
      const session = await bringUp(config, name, jobs[0], log, { wake: true });
      st.awake = true;
      st.woken = session.report.woke;
      try {
        Object.assign(st, await boxStatus(session.runner, agent, pools));
      } finally {
        await session.finish(undefined, log);
      }
    }
  } catch (e) {
    st.error = (e as Error).message;
  }
  return st;
}

/** A host as status shows it: not answering is "asleep" for a box hozo wakes, "unreachable" for an always-on one. */
export type ShownHostStatus = HostStatus & { state: 'awake' | 'asleep' | 'unreachable' };

export interface StatusDocument {
  version: 1;
  jobs: { job: string; host: string; state: JobState | null }[];
  hosts: ShownHostStatus[];
}

/** `hozo status --json`: the jobs (of `only`, if given) and their hosts. */
export async function collectStatus(config: Config, opts: { readonly only?: string; readonly wake: boolean; readonly log: Logger }): Promise<StatusDocument> {
  const { only, log } = opts;
  const hostNames = Object.keys(config.hosts).filter((h) => only === undefined || h === only);
  const jobs = config.jobs
    .filter((j) => only === undefined || j.host === only)
    .map((j) => ({ job: j.name, host: j.host, state: readJobState(config.stateDirectory, j.name, (m) => log.warn(m)) ?? null }));
  const hosts = await Promise.all(hostNames.map((h) => hostStatus(config, h, opts.wake, log)));
  const stateOf = (h: HostStatus): ShownHostStatus['state'] => {
    if (h.awake) return 'awake';
    const m = config.hosts[h.name]?.wake?.method;
    // A host with no wake method is meant to be always on: not answering is not sleep.
    return m === undefined || m === 'none' ? 'unreachable' : 'asleep';
  };
  return { version: 1, jobs, hosts: hosts.map((h) => ({ ...h, state: stateOf(h) })) };
}
