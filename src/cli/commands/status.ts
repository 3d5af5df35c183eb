// Last results of the local jobs and, when reachable without waking it (or with --wake), the box's own status.
import type { Command } from 'commander';
import { usesAgent, type Config } from '../../config/schema.js';
import { bringUp, poolsFor } from '../../job/lifecycle.js';
import { readJobState } from '../../state/state.js';
import { SshRunner } from '../../transport/ssh.js';
import type { Runner } from '../../transport/runner.js';
import { formatBytes, type Logger } from '../../util/log.js';
import { tcpOpen } from '../../wake/ready.js';
import { poolListArgv } from '../../zfs/argv.js';
import { parseZpoolList } from '../../zfs/pool-list.js';
import { findHost } from '../../config/load.js';
import type { Context } from '../context.js';
import { printJson } from '../context.js';

interface HostStatus {
  name: string;
  awake: boolean;
  woken: boolean;
  pools?: { name: string; health: string; capacity?: string }[];
  agent?: unknown;
  error?: string;
}

async function boxStatus(runner: Runner, agent: boolean, pools: string[]): Promise<Pick<HostStatus, 'pools' | 'agent'>> {
  if (agent) {
    const r = await runner.run(['status']);
    const json = JSON.parse(r.stdout) as { pools?: { name: string; health: string; capacityRatio?: number }[] };
    return {
      agent: json,
      pools: (json.pools ?? []).map((p) => ({ name: p.name, health: p.health, ...(p.capacityRatio !== undefined ? { capacity: `${Math.round(p.capacityRatio * 100)}%` } : {}) })),
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

async function hostStatus(config: Config, name: string, wake: boolean, log: Logger): Promise<HostStatus> {
  const host = config.hosts[name]!;
  const agent = usesAgent(host);
  const jobs = config.jobs.filter((j) => j.host === name);
  const pools = [...new Set(jobs.flatMap((j) => poolsFor(host, j)))];
  const st: HostStatus = { name, awake: false, woken: false };
  try {
    if (await tcpOpen(host.address, host.port, 1500)) {
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

export function registerStatus(program: Command, ctx: Context): void {
  program
    .command('status')
    .description('last run of each job, and each box: awake or asleep, pool health (never wakes a box unless --wake)')
    .argument('[host]', 'only this host')
    .option('--json', 'machine-readable output')
    .option('--wake', 'wake a sleeping box to read its status (and put it back to sleep)')
    .action(async (only: string | undefined, opts: { json?: boolean; wake?: boolean }) => {
      const config = ctx.loadConfig();
      const log = ctx.logger(config);
      if (only !== undefined) findHost(config, only);
      const hostNames = Object.keys(config.hosts).filter((h) => only === undefined || h === only);
      const jobs = config.jobs
        .filter((j) => only === undefined || j.host === only)
        .map((j) => ({ job: j.name, host: j.host, state: readJobState(config.stateDirectory, j.name, (m) => log.warn(m)) ?? null }));
      const hosts = await Promise.all(hostNames.map((h) => hostStatus(config, h, opts.wake === true, log)));
      if (opts.json) return printJson(ctx, { jobs, hosts });
      for (const j of jobs) {
        const run = j.state?.lastRun;
        ctx.out.write(
          run
            ? `job ${j.job} (${j.host}): last run ${run.finishedAt} ${run.result}, ${formatBytes(run.bytes)} in ${run.seconds.toFixed(1)}s; last success ${j.state?.lastSuccess ?? 'never'}\n`
            : `job ${j.job} (${j.host}): never run\n`,
        );
      }
      for (const h of hosts) {
        const pools = (h.pools ?? []).map((p) => `${p.name} ${p.health}${p.capacity ? ` ${p.capacity}` : ''}`).join(', ');
        ctx.out.write(`host ${h.name}: ${h.awake ? 'awake' : 'asleep'}${h.woken ? ' (woken for this status)' : ''}${pools ? `; pools: ${pools}` : ''}${h.error ? `; ${h.error}` : ''}\n`);
      }
    });
}
