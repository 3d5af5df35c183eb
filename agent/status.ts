// `status` (read-only, JSON) and `prepare` (import the pools, wait for late disks, report readiness).
import { listNamesArgv } from '../src/zfs/dataset-argv.js';
import { maintainScrubs } from './scrub.js';
import { hostname } from 'node:os';
import { AgentExit, type AgentContext } from './context.js';
import { HEALTHY, importPool, notImported, poolHealth, poolReport } from './pools.js';
import { AGENT_PROTOCOL_VERSION, rootOf } from './command.js';
import type { AgentStatus, PrepareReply } from '../src/protocol/agent.js';
import { ownLeases } from './scope.js';

export { AGENT_PROTOCOL_VERSION };
export type { AgentStatus };

export async function collectStatus(ctx: AgentContext, lastActivity: number | undefined): Promise<AgentStatus> {
  const s = ctx.state;
  const boot = s.bootTime();
  const pools: AgentStatus['pools'][number][] = [];
  for (const p of ctx.config.pools) {
    try {
      pools.push(await poolReport(ctx, p));
    } catch (e) {
      // One unreadable pool must not hide the others (or the leases).
      pools.push({ ...notImported(p), imported: null, error: (e as Error).message.split('\n')[0]! });
    }
  }
  const receives = s.receives();
  return {
    protocol: AGENT_PROTOCOL_VERSION,
    host: hostname(),
    time: Math.round(s.now()),
    uptimeSeconds: boot === undefined ? null : Math.round(s.now() - boot),
    pools,
    leases: ownLeases(ctx, s.leases()).map((l) => ({ id: l.id, created: Math.round(l.created), expires: Math.round(l.expires) })),
    receiveRunning: receives.length > 0,
    // Another controller's receives only count (receiveRunning), their datasets are not named.
    receives: receives
      .filter((r) => rootOf(r.dataset, ctx.config.roots) !== undefined)
      .map((r) => ({ dataset: r.dataset, pid: r.pid, started: Math.round(r.started) })),
    shutdownPending: s.shutdownPending() !== undefined,
    lastActivity: lastActivity === undefined ? null : Math.round(lastActivity),
    idlePoweroffMinutes: ctx.config.idlePoweroffMinutes,
  };
}

export async function status(ctx: AgentContext, lastActivity: number | undefined): Promise<number> {
  ctx.out(JSON.stringify(await collectStatus(ctx, lastActivity)) + '\n');
  return AgentExit.OK;
}

export async function prepareBox(ctx: AgentContext): Promise<PrepareReply> {
  const t0 = Date.now();
  const deadline = t0 + ctx.config.prepareTimeoutSeconds * 1000;
  const state = new Map(ctx.config.pools.map((p) => [p, { health: null as string | null, importedNow: false, error: undefined as string | undefined }]));
  let delay = 250;
  for (let round = 0; ; round++) {
    let missing = 0;
    for (const [pool, st] of state) {
      if (st.health !== null) continue;
      const h = await poolHealth(ctx, pool);
      if (h !== undefined) {
        st.health = h.health;
        continue;
      }
      const error = await importPool(ctx, pool);
      if (error === undefined) {
        st.importedNow = true;
        st.error = undefined;
        st.health = (await poolHealth(ctx, pool))?.health ?? null;
        if (st.health !== null) continue;
      } else st.error = error;
      missing++;
    }
    // USB disks appear late: keep trying until the deadline.
    if (missing === 0 || Date.now() >= deadline || round > 10_000) break;
    await ctx.sleep(Math.min(delay, Math.max(0, deadline - Date.now())));
    delay = Math.min(delay * 2, 2000);
  }
  const roots: { name: string; exists: boolean }[] = [];
  for (const root of ctx.config.roots) {
    const r = await ctx.runner.run(listNamesArgv(root), { timeoutMs: 30_000 });
    roots.push({ name: root, exists: r.exitCode === 0 });
  }
  const pools = [...state].map(([name, st]) => ({
    name,
    imported: st.health !== null,
    health: st.health,
    importedNow: st.importedNow,
    ...(st.health === null && st.error !== undefined ? { error: st.error } : {}),
  }));
  const shutdownPending = ctx.state.shutdownPending() !== undefined;
  // Scrubs: a paused one goes on, a due one starts (agent config `scrub`); never while the box is going down.
  const scrubs = shutdownPending ? [] : await maintainScrubs(ctx).catch((e: Error) => [{ pool: '*', action: 'none' as const, detail: e.message }]);
  return {
    ready: !shutdownPending && pools.every((p) => p.health !== null && HEALTHY.has(p.health)),
    pools,
    roots,
    shutdownPending,
    waitedSeconds: Math.round((Date.now() - t0) / 100) / 10,
    ...(scrubs.length > 0 ? { scrubs } : {}),
  };
}

export async function prepare(ctx: AgentContext): Promise<number> {
  const r = await prepareBox(ctx);
  ctx.out(JSON.stringify(r) + '\n');
  if (!r.ready) {
    const why = r.shutdownPending
      ? 'the box is shutting down'
      : r.pools
          .filter((p) => p.health === null || !HEALTHY.has(p.health))
          .map((p) => `pool ${p.name}: ${p.health ?? `not imported${p.error !== undefined ? ` (${p.error})` : ''}`}`)
          .join('; ');
    ctx.err(`hozo-agent: not ready: ${why}\n`);
    return AgentExit.BUSY;
  }
  return AgentExit.OK;
}
