// The box seen through hozo-agent (the forced command of our key): the same ZfsHost operations, spoken as agent
// verbs. The agent creates missing parents itself and never rolls back unless its own config allows it (receive -F).
import { trace } from '../util/trace.js';
import { HozoError } from '../errors.js';
import type { Runner } from '../transport/runner.js';
import { parseCapabilities } from '../zfs/capabilities.js';
import { checkResult, classify } from '../zfs/errors.js';
import { parseInventory } from '../zfs/inventory.js';
import type { ZfsHost } from './endpoint.js';
import type { PoolReport } from './report.js';
import type { Wrap } from '../pipeline/transfer.js';
import { parseStatusReply } from '../protocol/agent.js';

/** The agent runs zstd/mbuffer around its own zfs when asked (with its own buffer size). */
function toolFlags(wrap: Wrap | undefined): string[] {
  return [...(wrap?.zstd ? ['--zstd'] : []), ...(wrap?.mbuffer ? ['--mbuffer'] : [])];
}

async function verb(runner: Runner, argv: string[], action: string): Promise<string> {
  return checkResult(await runner.run(argv), { action: `${action} (hozo-agent)`, host: runner.name, argv });
}

export async function agentHost(runner: Runner): Promise<ZfsHost> {
  const caps = parseCapabilities(await verb(runner, ['capabilities'], 'probe capabilities'), runner.name);
  trace(`${runner.name}: agent capabilities`);
  const warnings: string[] = [];
  const unsupported = (what: string) => async () => {
    throw new HozoError('ZFS_PERMISSION', `${runner.name}: hozo-agent does not ${what} for the controller`, {
      hint: 'the box decides this itself (agent config); see docs on the agent security model',
    });
  };
  const host: ZfsHost = {
    name: runner.name,
    runner,
    caps,
    warnings,
    wrapsItself: true,
    sendCommand(dataset, step, wrap, raw) {
      if (step.kind === 'resume') throw new HozoError('ZFS_UNSUPPORTED', `${runner.name}: hozo-agent cannot resume a send (send -t)`);
      const tools = [...(raw === true ? ['-w'] : []), ...toolFlags(wrap)];
      return step.kind === 'full'
        ? ['send', ...tools, `${dataset}@${step.snapshot.name}`]
        : ['send', ...tools, step.intermediates ? '-I' : '-i', `${dataset}@${step.from.name}`, `${dataset}@${step.to.name}`];
    },
    // Restores from the box: no size estimate through the agent.
    async estimate() {
      return undefined;
    },
    // The agent creates missing parents (under its roots only) and protects what it receives itself (agent/streams.ts).
    receiveCommand(target, opts, wrap) {
      return [
        'receive',
        ...(opts.unmounted ? ['-u'] : []),
        ...(opts.force ? ['-F'] : []),
        ...(opts.resumable ? ['-s'] : []),
        ...toolFlags(wrap),
        ...(opts.volume === true ? ['--volume'] : []),
        target,
      ];
    },
    async inventory(roots) {
      const unique = [...new Set(roots)];
      if (unique.length === 0) return new Map();
      const r = await runner.run(['list', ...unique]);
      if (r.exitCode !== 0) throw classify(r.stderr, { action: `list ${unique.join(', ')} (hozo-agent)`, host: runner.name, exitCode: r.exitCode });
      return parseInventory(r.stdout);
    },
    // No separate verb: the job's receives carry -F (rollback: true), and `zfs receive -F` of an incremental rolls
    // the target back to the stream's base itself, destroying the newer target snapshots — only if the box's agent
    // config allows -F (allowRollback), which otherwise refuses the receive and says so.
    async rollback() {},
    hold: unsupported('take ZFS holds'),
    release: unsupported('release ZFS holds'),
    bookmark: unsupported('create bookmarks'),
    async abortReceive(target) {
      await verb(runner, ['abort-receive', target], `abort-receive ${target}`);
    },
    destroyBookmark: unsupported('destroy bookmarks'),
    async releaseSendHolds() {},
    async listAndHealth(roots, pools) {
      // Two verbs over the same connection, side by side.
      const [inventory, health] = await Promise.all([host.inventory(roots), host.poolHealth(pools)]);
      return { inventory, pools: health };
    },
    async poolHealth(pools) {
      const status = parseStatusReply(runner.name, await verb(runner, ['status'], 'status'));
      return pools.map((name): PoolReport => {
        const p = status.pools.find((x) => x.name === name);
        return {
          name,
          health: p?.health ?? 'UNKNOWN',
          ...(typeof p?.capacityRatio === 'number' ? { capacityRatio: p.capacityRatio } : {}),
          ...(typeof p?.errors === 'number' ? { errors: p.errors } : {}),
          ...(typeof p?.lastScrubEnd === 'number' ? { lastScrubEnd: p.lastScrubEnd } : {}),
          ...(p?.scrubRunning === true
            ? {
                scrub: {
                  state: p.scrubPaused === true ? ('paused' as const) : ('running' as const),
                  ...(typeof p.scrubProgress === 'number' ? { progress: p.scrubProgress } : {}),
                },
              }
            : {}),
        };
      });
    },
  };
  return host;
}
