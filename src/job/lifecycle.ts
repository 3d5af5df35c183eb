// Bringing the box up for a run and putting it back: wake only if it sleeps, wait until ready, take a lease on the
// agent, and afterwards release it and shut the box down only if this run woke it (or the host says so).
import { trace } from '../util/trace.js';
import { hostname } from 'node:os';
import type { Config, HostConfig, JobConfig } from '../config/schema.js';
import { usesAgent } from '../config/lookup.js';
import { HozoError, isHozoError } from '../errors.js';
import { cipherPreference, localHasAes, rememberAes, rememberedAes } from '../transport/cipher.js';
import { SshRunner } from '../transport/ssh.js';
import { AgentSessionRunner } from '../transport/agent-session.js';
import type { Runner } from '../transport/runner.js';
import type { Logger } from '../util/log.js';
import { poolsListArgv } from '../zfs/pool-argv.js';
import { parseZpoolList } from '../zfs/pool-list.js';
import { findHost } from '../config/lookup.js';
import { boxPortOpen, realClock, waitReady, type Clock } from '../wake/ready.js';
import { wakeHost } from '../wake/wake.js';
import { CapabilityCache } from '../zfs/capability-cache.js';
import { hello, type Hello } from '../zfs/hello.js';
import type { Inventory } from '../zfs/types.js';
import { agentHost } from './agent-host.js';
import { awakeCheck, type EarlyConnection } from './early.js';
import type { ZfsHost } from './endpoint.js';
import type { HostReport } from './report.js';
import { zfsHost } from './hosts.js';
import { poolOf } from '../zfs/names.js';
import { AgentExit, parseHoldReply, parsePrepareReply, parseReleaseReply } from '../protocol/agent.js';

export interface BoxSession {
  /** hozo-agent: its control requests share one agent process for the run (AgentSessionRunner). */
  readonly runner: Runner;
  readonly report: HostReport;
  readonly agent: boolean;
  /** What the box's ZFS can do: from hozo-agent (probed as soon as SSH was up, beside the pool check), or from the
   *  ready check's own round trip (plain SSH). */
  readonly target: Promise<ZfsHost>;
  /** The listing of BringUpOptions.inventoryRoots, when the ready check's round trip brought it along. */
  readonly targetInventory?: Promise<Inventory>;
  /** Seconds one request to the box took (the ready check's pool probe): what the requests after the transfers
   *  will cost, for the wake window's margin (window.ts). */
  readonly requestSeconds: number;
  /** Releases the lease and shuts the box down if appropriate. Never throws. */
  finish(job: JobConfig | undefined, log: Logger): Promise<void>;
  /** Closes the connection and leaves the box as it is (manual `hozo wake`). */
  detach(): Promise<void>;
}

/** Pools that must be ready: configured, or the pools of the job's targets. */
export function poolsFor(host: HostConfig, job: JobConfig | undefined): string[] {
  return host.pools ?? [...new Set((job?.datasets ?? []).map((d) => poolOf(d.target)))];
}

/** A reply read where a malformed one must not end the run (it is then taken as saying nothing). */
function orUndefined<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}

/** Waits (bounded) until the box's SSH port no longer answers. */
async function waitPortClosed(host: HostConfig, timeoutSeconds: number, clock: Clock): Promise<void> {
  const deadline = clock.now() + timeoutSeconds * 1000;
  while (clock.now() < deadline && (await boxPortOpen(host, 500))) await clock.sleep(250);
}

export const leaseId = (job: string | undefined) => `${hostname().replace(/[^A-Za-z0-9_.-]/g, '_')}.${job ?? 'manual'}`;

export interface BringUpOptions {
  readonly wake: boolean;
  /** Take a lease on the agent for the run (default true). */
  readonly lease?: boolean;
  readonly clock?: Clock;
  /** Datasets to list on the box in the ready check's round trip (the job's targets), where that is possible. */
  readonly inventoryRoots?: readonly string[];
  /** A connection connectEarly started for this host (src/job/early.ts). */
  readonly early?: EarlyConnection;
  /** Called once the box's SSH handshake is under way (or the box was found asleep): the moment to start local work,
   *  whose synchronous parts (process spawns) would otherwise delay the TCP check's answer. May be called twice. */
  readonly onConnecting?: () => void;
  /** A box this call woke that then does not become ready is powered off again (default true; `hozo wake --wait`
   *  leaves it up for the user to look at). */
  readonly sleepIfNotReady?: boolean;
  /** The run's interruption: a wait for the box ends at once (and a box this call woke is put back to sleep). */
  readonly signal?: AbortSignal;
}

export async function bringUp(
  config: Config,
  hostName: string,
  job: JobConfig | undefined,
  log: Logger,
  opts: BringUpOptions = { wake: true },
): Promise<BoxSession> {
  const host = findHost(config, hostName);
  const clock = opts.clock ?? realClock;
  const agent = usesAgent(host);
  // The connection the CLI started while hozo loaded, when it is for this host (used for the first check only).
  let early = opts.early?.hostName === hostName ? opts.early : undefined;
  const ssh =
    early?.runner ?? new SshRunner({ name: hostName, host, ciphers: cipherPreference(localHasAes(), rememberedAes(config.stateDirectory, hostName)) });
  // hozo-agent: one agent process (one `session` call) answers the run's control requests; plain SSH: as it is.
  const runner: SshRunner | AgentSessionRunner = agent ? new AgentSessionRunner(ssh) : ssh;
  const report: HostReport = { name: hostName, awakeBefore: false, woke: false, shutdown: 'skipped' };
  const pools = poolsFor(host, job);
  const cache = new CapabilityCache(config.stateDirectory);

  const id = leaseId(job?.name);
  /** Our lease is on the box: taken with the first pool check, so no other controller's release or shutdown powers
   *  the box off while this run waits for its pool (a slow import, a busy box). */
  let held = false;
  let requestSeconds = 0;
  let holdWarned = false;
  const hold = async (): Promise<void> => {
    if (!agent || opts.lease === false || held) return;
    const r = await runner.run(['hold', id, String(Math.round(host.leaseTtl))]);
    const refused = r.exitCode === AgentExit.BUSY ? orUndefined(() => parseHoldReply(hostName, r.stdout)) : undefined;
    if (refused !== undefined && !refused.held && refused.shuttingDown) throw new HozoError('BOX_SHUTTING_DOWN', `${hostName} is shutting down`);
    if (r.exitCode === 0) held = true;
    else if (!holdWarned) {
      // Asked again with each pool check until it is taken; said once.
      holdWarned = true;
      log.warn(`${hostName}: could not take lease ${id}: ${r.stderr.trim()}`);
    }
  };
  const poolProbe = async (): Promise<{ ready: boolean; detail: string }> => {
    if (agent) {
      await hold();
      const r = await runner.run(['prepare']);
      if (r.exitCode === 0) return { ready: true, detail: '' };
      if (r.exitCode === AgentExit.BUSY && orUndefined(() => parsePrepareReply(hostName, r.stdout))?.shutdownPending === true) {
        throw new HozoError('BOX_SHUTTING_DOWN', `${hostName} is shutting down for another controller`);
      }
      if (r.exitCode === AgentExit.REFUSED) {
        throw new HozoError('AGENT_REFUSED', `${hostName}: hozo-agent refused "prepare": ${r.stderr.trim()}`, {
          hint: 'the agent on the box is older or newer than this controller, or its config is wrong',
        });
      }
      return { ready: false, detail: (r.stderr || r.stdout).trim().split('\n')[0] ?? 'agent says not ready' };
    }
    // Plain SSH: one session answers "are the pools there?", "what can this ZFS do?" (from the cache when the
    // fingerprint matches, else probed) and, with a cached answer, lists the job's targets too.
    const h = await hello(ssh, cache, {
      endpoint: `${host.user}@${host.address}:${host.port}`,
      ...(opts.inventoryRoots !== undefined ? { roots: opts.inventoryRoots } : {}),
      extra: [{ name: 'pools', argv: poolsListArgv(pools) }],
    });
    const r = h.extra.get('pools')!;
    const rows = parseZpoolList(r.stdout);
    const bad: string[] = [];
    for (const p of pools) {
      const health = rows.find((row) => row.name === p)?.health;
      if (health === 'ONLINE' || health === 'DEGRADED') continue;
      const said = r.stderr
        .split('\n')
        .find((l) => l.includes(`'${p}'`))
        ?.trim();
      bad.push(`${p}: ${health ?? said ?? (r.stderr.trim().split('\n')[0] || 'not listed')}`);
    }
    if (bad.length === 0) {
      readyHello = h;
      log.debug(
        `${hostName}: ${h.caps.implementation}, capabilities ${h.source === 'cache' ? 'from the cache (fingerprint unchanged)' : h.source === 'probe' ? 'probed' : 'probed again (ZFS or tools changed)'}`,
      );
    }
    return { ready: bad.length === 0, detail: bad.join('; ') };
  };

  // A box that stops answering between the awake check and the pool check (its power-off, requested by another
  // controller, came first) is let go down and woken again, like one whose agent says it is shutting down.
  const poolCheck = async (): Promise<{ ready: boolean; detail: string }> => {
    try {
      return await poolProbe();
    } catch (e) {
      if (isHozoError(e, 'HOST_UNREACHABLE') && !(await boxPortOpen(host, 1000))) {
        throw new HozoError('BOX_SHUTTING_DOWN', `${hostName} stopped answering (powering down?)`);
      }
      throw e;
    }
  };

  // hozo-agent: the capability probe needs only SSH, not the pools: start it the moment SSH works, beside the pool
  // check. Plain SSH: the pool check brings the capabilities along.
  let target: Promise<ZfsHost> | undefined;
  /** The plain-SSH ready check's answer that found the pools ready (capabilities, maybe the listing). */
  let readyHello: Hello | undefined;
  /** SSH answered at least once during the ready check (so a shutdown request can reach the box). */
  let sshUp = false;
  const connect = async () => {
    await runner.connect();
    trace(`${hostName}: connected (${agent ? 'agent session' : 'ssh'})`);
    sshUp = true;
    if (target === undefined && agent) {
      target = agentHost(runner);
      target.catch(() => undefined);
    }
  };
  const readyContext = {
    wake: host.wake?.method ?? 'none',
    via: host.via !== undefined,
    ...(opts.signal !== undefined ? { signal: opts.signal } : {}),
  } as const;
  /** Awake already? Then use it as it is; else wake it. Either way wait until ready. */
  const comeUp = async (): Promise<void> => {
    const started = clock.now();
    // One quick connect (or the one the CLI started early); if it works we must not wake, and we will not shut it
    // down.
    if (early !== undefined) {
      const e = early;
      early = undefined;
      opts.onConnecting?.();
      report.awakeBefore = await e.awake;
      trace(`${hostName}: early awake check done`);
    } else {
      report.awakeBefore = await awakeCheck(ssh, host, opts.onConnecting);
    }
    opts.onConnecting?.();
    if (report.awakeBefore) {
      log.info(`${hostName} is already awake; it will be left as it is`);
      const ready = await waitReady(hostName, { tcp: async () => true, ssh: connect, pool: poolCheck }, host.readyTimeout, clock, readyContext);
      log.debug(`${hostName}: pools ready after ${ready.seconds.toFixed(2)}s`);
      trace(`${hostName}: pools ready`);
      requestSeconds = ready.probeSeconds;
      return;
    }
    const noAnswer = `no answer on ${host.address}:${host.port}${host.via !== undefined ? ` through ${host.via.address}` : ''}`;
    const alwaysOn = host.wake === undefined || host.wake.method === 'none';
    // An always-on host (wake: none) is not asleep when it does not answer: it is unreachable, and --wake cannot help.
    if (!opts.wake && alwaysOn)
      throw new HozoError('HOST_UNREACHABLE', `${hostName} is unreachable (${noAnswer})`, {
        hint: 'it has no wake method (wake: none): check that it is on, its address and port, and the network between',
      });
    if (!opts.wake) throw new HozoError('HOST_UNREACHABLE', `${hostName} is asleep (${noAnswer})`, { hint: 'pass --wake to wake it' });
    if (alwaysOn) {
      log.debug(`${hostName}: no wake method; waiting for it to answer`);
    } else {
      const w = await wakeHost(config, hostName, host);
      report.woke = true;
      log.info(`woke ${hostName}: ${w.detail}`);
    }
    const ready = await waitReady(
      hostName,
      {
        tcp: (ms) => boxPortOpen(host, ms),
        ssh: connect,
        pool: poolCheck,
        ...(report.woke && (host.wake?.method === 'wol' || host.wake?.method === 'ssh-relay')
          ? {
              rewake: async () => {
                const w = await wakeHost(config, hostName, host).catch((e: unknown) => ({ detail: `failed: ${(e as Error).message}` }));
                log.debug(`${hostName}: still no answer; woke it again: ${w.detail}`);
              },
            }
          : {}),
      },
      host.readyTimeout,
      clock,
      readyContext,
    );
    report.wakeSeconds = (clock.now() - started) / 1000;
    requestSeconds = ready.probeSeconds;
    log.info(
      `${hostName} ready after ${report.wakeSeconds.toFixed(1)}s (port ${ready.stages.tcp.toFixed(1)}s, ssh ${ready.stages.ssh.toFixed(1)}s, pool ${ready.stages.pool.toFixed(1)}s)`,
    );
  };

  try {
    // A box that is powering off for another controller (who finished a moment ago) cannot be used: let it go
    // down, then wake it again. Once: a second refusal is reported like any other failure.
    for (let attempt = 0; ; attempt++) {
      try {
        await comeUp();
        await hold();
        break;
      } catch (e) {
        if (!isHozoError(e, 'BOX_SHUTTING_DOWN') || attempt > 0) throw e;
        log.info(`${hostName} is shutting down for another controller; waking it again once it is off`);
        await waitPortClosed(host, host.readyTimeout, clock);
        await runner.close();
        held = false;
        report.awakeBefore = false;
        target = undefined;
        readyHello = undefined;
      }
    }
    const readyAt = clock.now();
    if (!agent) target = Promise.resolve(zfsHost(ssh, readyHello!.caps));
    // The box's CPU chooses the next run's cipher (cipher.ts).
    target?.then((t) => rememberAes(config.stateDirectory, hostName, t.caps.aes)).catch(() => undefined);
    const targetInventory = agent ? undefined : readyHello!.inventory;

    let finished = false;
    return {
      runner,
      report,
      agent,
      requestSeconds,
      target: target!,
      ...(targetInventory !== undefined ? { targetInventory } : {}),
      async detach() {
        finished = true;
        await runner.close();
      },
      async finish(j, l) {
        if (finished) return;
        finished = true;
        try {
          if (agent && opts.lease !== false) {
            const r = await releaseLease(runner, id);
            if (r.exitCode !== 0) l.warn(`${hostName}: could not release lease ${id}: ${r.stderr.trim()}`);
            else if (orUndefined(() => parseReleaseReply(hostName, r.stdout))?.shutdown !== undefined) {
              // Ours was the last lease and another controller had asked for the power-off: the box is going down.
              report.awakeSeconds = (clock.now() - readyAt) / 1000 + (report.wakeSeconds ?? 0);
              report.shutdown = 'done';
              report.shutdownDetail = 'powered off on the release of the last lease (requested by another controller)';
              l.info(`${hostName}: shutting down (last lease released)`);
              return;
            }
          }
          report.awakeSeconds = (clock.now() - readyAt) / 1000 + (report.wakeSeconds ?? 0);
          const wanted = (j?.shutdownAfter ?? true) && (report.woke || host.shutdownIfAwake);
          if (host.shutdown === 'none') report.shutdown = 'not-configured';
          else if (!wanted) {
            report.shutdown = 'skipped';
            report.shutdownDetail = report.awakeBefore ? 'it was awake before the run' : 'shutdownAfter is false';
          } else await shutdownBox(runner, host, agent, report, l);
        } finally {
          await runner.close();
        }
      },
    };
  } catch (e) {
    // A box this run woke that then never became ready (its pool did not appear, the agent refused) would stay up
    // until its idle guard: ask it to go back to sleep now, if it answers SSH and a shutdown is configured.
    const sleepAgain = (opts.sleepIfNotReady ?? true) && (job?.shutdownAfter ?? true);
    if (held) {
      // Ours must not keep the box up (or block the power-off below); its release may carry out another's shutdown.
      const r = await releaseLease(runner, id);
      if (r.exitCode !== 0) log.warn(`${hostName}: could not release lease ${id}: ${r.stderr.trim()}`);
      else if (orUndefined(() => parseReleaseReply(hostName, r.stdout))?.shutdown !== undefined) {
        report.shutdown = 'done';
        report.shutdownDetail = 'powered off on the release of the last lease (requested by another controller)';
      }
    }
    if (sleepAgain && report.shutdown !== 'done' && report.woke && sshUp && host.shutdown !== 'none' && !isHozoError(e, 'BOX_SHUTTING_DOWN')) {
      log.info(`${hostName} did not become ready; powering it off again (this run woke it)`);
      await shutdownBox(runner, host, agent, report, log);
    }
    await runner.close();
    if (typeof e === 'object' && e !== null) failedHostReports.set(e, report);
    throw e;
  }
}

const failedHostReports = new WeakMap<object, HostReport>();

/** What bringUp did to the box before it failed with this error (woken, powered off again), if it failed there. */
export function hostReportOf(e: unknown): HostReport | undefined {
  return typeof e === 'object' && e !== null ? failedHostReports.get(e) : undefined;
}

/** Asks the box to power off: the agent (which may refuse while others hold leases) or the configured command. */
export async function shutdownBox(runner: Runner, host: HostConfig, agent: boolean, report: HostReport, log: Logger): Promise<void> {
  try {
    const r = await runner.run(agent ? ['shutdown'] : host.shutdownCommand, { timeoutMs: 60_000 });
    if (r.exitCode === 0) {
      report.shutdown = 'done';
      if (agent && /"alreadyPending":true/.test(r.stdout)) report.shutdownDetail = 'already powering off (another controller asked first)';
      log.info(`${runner.name}: shutting down`);
    } else if (agent) {
      report.shutdown = /"deferred":true/.test(r.stdout) ? 'deferred' : 'refused';
      report.shutdownDetail = firstLine(r.stderr || r.stdout).replace(/^hozo-agent: /, '');
      log.info(`${runner.name} stays up for now: ${report.shutdownDetail}`);
    } else {
      report.shutdown = 'failed';
      report.shutdownDetail = firstLine(r.stderr || r.stdout);
      log.warn(`${runner.name}: shutdown command failed (exit ${r.exitCode}): ${report.shutdownDetail}`);
    }
  } catch (e) {
    // The connection dropping while the box powers off is success for a plain shutdown command.
    if (!agent && isHozoError(e, 'HOST_UNREACHABLE')) {
      report.shutdown = 'done';
      return;
    }
    report.shutdown = 'failed';
    report.shutdownDetail = (e as Error).message;
    log.warn(`${runner.name}: shutdown failed: ${report.shutdownDetail}`);
  }
}

/** `release`, asked again (3 tries) while the agent's lock is busy: a lease left behind keeps the box up until it
 *  expires. */
async function releaseLease(runner: Runner, id: string): Promise<{ exitCode: number | null; stdout: string; stderr: string }> {
  let r: { exitCode: number | null; stdout: string; stderr: string } = { exitCode: -1, stdout: '', stderr: '' };
  for (let attempt = 0; attempt < 3; attempt++) {
    r = await runner.run(['release', id]).catch((e: unknown) => ({ exitCode: -1, stdout: '', stderr: String(e) }));
    if (r.exitCode === 0 || !/lock .* is held by another call/.test(r.stderr)) return r;
    await new Promise((res) => setTimeout(res, 1000 * (attempt + 1)));
  }
  return r;
}

function firstLine(s: string): string {
  return s.trim().split('\n')[0] ?? '';
}
