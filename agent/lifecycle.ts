// Leases, shutdown and the idle guard. The box powers off only when nothing needs it: no lease, no receive, no scrub
// or resilver. Decisions are taken under the agent's lock and leave a "shutdown pending" marker, so a hold or a
// receive arriving a moment later is refused instead of being cut off by the power-off.
import { rootOf, type Request } from './command.js';
import type { HoldReply, ReleaseReply } from '../src/protocol/agent.js';
import { AgentExit, type AgentContext } from './context.js';
import { exportPool, poolReport } from './pools.js';
import { leaseLabel, ownLeases, storedLeaseId } from './scope.js';
import { pauseScrubs, scrubHoldsBox } from './scrub.js';

// --- leases ---------------------------------------------------------------------------------------------------

export async function hold(ctx: AgentContext, req: Extract<Request, { verb: 'hold' }>): Promise<number> {
  const r = await ctx.state.withLock(() => {
    if (ctx.state.shutdownPending() !== undefined) return undefined;
    // A new lease beyond maxLeases is refused (renewing one is not): a key cannot keep the box up with endless ids.
    const active = ownLeases(ctx, ctx.state.leases());
    if (!active.some((l) => l.id === req.id) && active.length >= ctx.config.maxLeases) return 'full' as const;
    return { ...ctx.state.hold(storedLeaseId(ctx, req.id), req.ttlSeconds), id: req.id };
  });
  if (r === 'full') {
    ctx.out(
      JSON.stringify({
        held: false,
        id: req.id,
        reason: `${ctx.config.maxLeases} leases are held already (maxLeases)`,
        shuttingDown: false,
      } satisfies HoldReply) + '\n',
    );
    ctx.err(`hozo-agent: hold refused: ${ctx.config.maxLeases} leases are held already (maxLeases); they expire or are released first\n`);
    return AgentExit.BUSY;
  }
  if (r === undefined) {
    ctx.out(JSON.stringify({ held: false, id: req.id, reason: 'the box is shutting down', shuttingDown: true } satisfies HoldReply) + '\n');
    ctx.err('hozo-agent: hold refused: the box is shutting down; wake it again after it has powered off\n');
    return AgentExit.BUSY;
  }
  const leases = ownLeases(ctx, ctx.state.leases());
  ctx.out(
    JSON.stringify({
      held: true,
      lease: { id: r.id, created: Math.round(r.created), expires: Math.round(r.expires) },
      leases: leases.map((l) => l.id),
    } satisfies HoldReply) + '\n',
  );
  return AgentExit.OK;
}

export async function release(ctx: AgentContext, req: Extract<Request, { verb: 'release' }>): Promise<number> {
  // The last lease going away carries out a shutdown another controller asked for while this one still worked.
  const r = await ctx.state.withLock(async () => {
    const released = ctx.state.release(storedLeaseId(ctx, req.id));
    const due = ctx.state.shutdownRequested() !== undefined && ctx.state.shutdownPending() === undefined && (await blockers(ctx)).length === 0;
    if (due) beginShutdown(ctx);
    return { released, due };
  });
  const leases = ownLeases(ctx, ctx.state.leases());
  const shutdownReport = r.due ? await carryOutShutdown(ctx) : undefined;
  ctx.out(
    JSON.stringify({
      released: r.released,
      id: req.id,
      leases: leases.map((l) => l.id),
      ...(shutdownReport ? { shutdown: shutdownReport } : {}),
    } satisfies ReleaseReply) + '\n',
  );
  return AgentExit.OK;
}

// --- what keeps the box awake ----------------------------------------------------------------------------------

/** Human-readable reasons not to power off now (empty: nothing needs the box). */
export async function blockers(ctx: AgentContext): Promise<string[]> {
  const s = ctx.state;
  const now = s.now();
  const reasons: string[] = [];
  for (const l of s.leases()) reasons.push(`${leaseLabel(ctx, l.id)} is held for ${Math.ceil(l.expires - now)} more seconds`);
  for (const r of s.receives()) {
    const mine = rootOf(r.dataset, ctx.config.roots) !== undefined;
    reasons.push(
      mine
        ? `a receive into ${r.dataset} is running (pid ${r.pid}, for ${Math.round(now - r.started)} s)`
        : `another controller's receive is running (for ${Math.round(now - r.started)} s)`,
    );
  }
  for (const pool of ctx.config.pools) {
    let p: Awaited<ReturnType<typeof poolReport>>;
    try {
      p = await poolReport(ctx, pool, { disks: false });
    } catch (e) {
      reasons.push(`cannot read the state of pool ${pool}: ${(e as Error).message.split('\n')[0]}`);
      continue;
    }
    const scrub = scrubHoldsBox(ctx, p);
    if (scrub !== undefined) reasons.push(`pool ${pool}: ${scrub}`);
    if (p.resilverRunning) reasons.push(`pool ${pool}: a resilver is running (${p.scan ?? 'resilver'})`);
  }
  return reasons;
}

export interface PoweroffReport {
  readonly exported: readonly string[];
  readonly exportErrors: readonly { readonly pool: string; readonly error: string }[];
}

/** Exports the configured pools that are imported (when configured); failures are reported, not fatal. */
async function exportPools(ctx: AgentContext): Promise<PoweroffReport> {
  const exported: string[] = [];
  const exportErrors: { pool: string; error: string }[] = [];
  if (!ctx.config.exportOnShutdown) return { exported, exportErrors };
  for (const pool of ctx.config.pools) {
    const p = await poolReport(ctx, pool, { disks: false }).catch(() => undefined);
    if (p !== undefined && !p.imported) continue;
    const error = await exportPool(ctx, pool);
    if (error === undefined) exported.push(pool);
    else exportErrors.push({ pool, error });
  }
  return { exported, exportErrors };
}

/** The detached power-off: sleep, run the command, then drop the pending marker (only matters if we are still up). */
function poweroffArgv(ctx: AgentContext, delaySeconds: number): string[] {
  return [
    'sh',
    '-c',
    // The marker stays once the command succeeded: `systemctl start --no-block …` returns at once while the box
    // goes down for seconds more, and a `prepare` in that window must not be told "ready". The next boot makes it
    // stale (AgentState compares it with the boot time). A failed command clears it: the box stays up and works.
    'sleep "$1"; marker=$2; shift 2; "$@"; status=$?; [ "$status" -eq 0 ] || rm -f -- "$marker"; exit $status',
    'hozo-agent-poweroff',
    String(delaySeconds),
    ctx.state.shutdownPendingPath,
    ...ctx.config.poweroffCommand,
  ];
}

// How long a pending marker counts after the power-off command should have run.
const PENDING_GRACE_SECONDS = 120;

export async function shutdown(ctx: AgentContext): Promise<number> {
  const decision = await ctx.state.withLock(async () => {
    if (ctx.state.shutdownPending() !== undefined) return { already: true as const };
    const reasons = await blockers(ctx);
    if (reasons.length > 0) {
      // Another controller's lease: remembered, so the release of the last lease (or the idle guard once leases
      // expire) powers the box off. A receive or scrub alone is just a refusal: its controller asks again.
      const deferred = ctx.state.leases().length > 0;
      if (deferred) ctx.state.requestShutdown();
      return { reasons, deferred };
    }
    beginShutdown(ctx);
    return { reasons: [] as string[] };
  });
  if ('already' in decision) {
    ctx.out(JSON.stringify({ shutdown: true, alreadyPending: true }) + '\n');
    return AgentExit.OK;
  }
  if (decision.reasons.length > 0) {
    if ('deferred' in decision && decision.deferred) {
      ctx.out(JSON.stringify({ shutdown: false, deferred: true, reasons: decision.reasons }) + '\n');
      ctx.err(`hozo-agent: shutdown deferred until the last lease is released: ${decision.reasons.join('; ')}\n`);
    } else {
      ctx.out(JSON.stringify({ shutdown: false, reasons: decision.reasons }) + '\n');
      ctx.err(`hozo-agent: shutdown refused: ${decision.reasons.join('; ')}\n`);
    }
    return AgentExit.BUSY;
  }
  ctx.out(JSON.stringify({ shutdown: true, ...(await carryOutShutdown(ctx)) }) + '\n');
  return AgentExit.OK;
}

/** Under the lock: mark the power-off as pending (new holds and receives are refused from here on). */
function beginShutdown(ctx: AgentContext): void {
  ctx.state.clearShutdownRequest();
  ctx.state.setShutdownPending(ctx.config.poweroffDelaySeconds + PENDING_GRACE_SECONDS);
}

/** Exports the pools and starts the power-off detached, so the SSH call that caused it returns cleanly. */
async function carryOutShutdown(ctx: AgentContext): Promise<Record<string, unknown>> {
  const scrubs = await pauseScrubs(ctx);
  const report = await exportPools(ctx);
  const delay = ctx.config.poweroffDelaySeconds;
  ctx.detach(poweroffArgv(ctx, delay), ctx.config.logFile);
  ctx.log.write(`power-off in ${delay} s: ${ctx.config.poweroffCommand.join(' ')}`);
  return { poweroffInSeconds: delay, poweroffCommand: ctx.config.poweroffCommand, ...report, ...(scrubs.length > 0 ? { scrubs } : {}) };
}

// --- the idle guard --------------------------------------------------------------------------------------------

export interface IdleDecision {
  readonly action: 'poweroff' | 'none';
  readonly reasons: readonly string[];
  readonly idleSeconds: number | null;
  readonly thresholdSeconds: number | null;
}

/** Run by a timer on the box: powers off when no controller has called for idlePoweroffMinutes and nothing runs. */
export async function idleCheck(ctx: AgentContext): Promise<number> {
  const minutes = ctx.config.idlePoweroffMinutes;
  if (minutes === null) {
    ctx.out(
      JSON.stringify({ action: 'none', reasons: ['the idle guard is disabled (idlePoweroffMinutes: null)'], idleSeconds: null, thresholdSeconds: null }) + '\n',
    );
    return AgentExit.OK;
  }
  const threshold = minutes * 60;
  const decision = await ctx.state.withLock(async (): Promise<IdleDecision> => {
    const s = ctx.state;
    const now = s.now();
    // Idle since the later of the last controller call and the boot (a box woken by hand counts from its boot).
    const since = [s.lastActivity(), s.bootTime()].filter((t): t is number => t !== undefined);
    const idleSeconds = since.length > 0 ? Math.max(0, now - Math.max(...since)) : null;
    const reasons: string[] = [];
    if (s.shutdownPending() !== undefined) reasons.push('a shutdown is already pending');
    const requested = s.shutdownRequested() !== undefined;
    if (requested) {
      // A controller asked for the power-off; only leases or work in progress held it back.
    } else if (idleSeconds === null) reasons.push('cannot tell how long the box has been idle (no activity file, no /proc/uptime)');
    else if (idleSeconds < threshold) reasons.push(`last activity ${Math.round(idleSeconds)} s ago (powers off after ${Math.round(threshold)} s)`);
    if (reasons.length === 0) reasons.push(...(await blockers(ctx)));
    if (reasons.length === 0) {
      s.clearShutdownRequest();
      s.setShutdownPending(PENDING_GRACE_SECONDS);
    }
    return {
      action: reasons.length === 0 ? 'poweroff' : 'none',
      reasons,
      idleSeconds: idleSeconds === null ? null : Math.round(idleSeconds),
      thresholdSeconds: Math.round(threshold),
    };
  });
  if (decision.action === 'none') {
    ctx.out(JSON.stringify(decision) + '\n');
    return AgentExit.OK;
  }
  const report = await exportPools(ctx);
  ctx.log.write(`idle for ${decision.idleSeconds} s: power-off: ${ctx.config.poweroffCommand.join(' ')}`);
  // Not an SSH call: no reason to delay, and a oneshot unit's leftover children would be killed anyway.
  let exitCode: number | null;
  let error: string | undefined;
  try {
    const r = await ctx.runner.run(ctx.config.poweroffCommand, { timeoutMs: 120_000 });
    exitCode = r.exitCode;
    if (r.exitCode !== 0) error = (r.stderr.trim() || r.stdout.trim() || `exit ${r.exitCode}`).split('\n')[0];
  } catch (e) {
    exitCode = null;
    error = (e as Error).message;
  }
  // As in poweroffArgv: pending until the next boot when the command succeeded, cleared when it failed.
  if (exitCode !== 0) ctx.state.clearShutdownPending();
  ctx.out(
    JSON.stringify({ ...decision, ...report, poweroff: { command: ctx.config.poweroffCommand, exitCode, ...(error !== undefined ? { error } : {}) } }) + '\n',
  );
  if (exitCode !== 0) {
    ctx.err(`hozo-agent: power-off command failed: ${error ?? 'killed'}\n`);
    return AgentExit.FAILED;
  }
  return AgentExit.OK;
}
