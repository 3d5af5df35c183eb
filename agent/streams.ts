// The verbs that move bytes: receive (stdin → zfs receive), send (zfs send → stdout) and capabilities (the probe's
// output). Each child gets the agent's own file descriptors, so the stream never passes through JavaScript.
import { createParentArgv, receiveAbortArgv, receiveArgv, sendArgv } from '../src/zfs/argv.js';
import { parseCapabilities, probeArgv } from '../src/zfs/capabilities.js';
import { CapabilityCache, fingerprintArgv } from '../src/zfs/capability-cache.js';
import { checkResult } from '../src/zfs/errors.js';
import { isWithin, parentOf } from '../src/zfs/names.js';
import { mbufferArgv, ZSTD_COMPRESS, ZSTD_DECOMPRESS } from '../src/pipeline/transfer.js';
import { HozoError } from '../src/errors.js';
import { rootOf, type Request } from './command.js';
import { AgentExit, type AgentContext } from './context.js';


async function exists(ctx: AgentContext, dataset: string): Promise<boolean> {
  const argv = ['zfs', 'list', '-H', '-o', 'name', dataset];
  const r = await ctx.runner.run(argv, { timeoutMs: 30_000 });
  if (r.exitCode === 0) return true;
  if (/does not exist|no such pool/i.test(r.stderr)) return false;
  checkResult(r, { action: `look up ${dataset}`, argv });
  return false;
}

/**
 * Creates the missing datasets between the target's root and its parent, each with canmount=off, top down. Never
 * above the root: a missing root is created only when its own parent exists (so `create -p` creates nothing else).
 */
export async function ensureParents(ctx: AgentContext, target: string): Promise<string[]> {
  const root = rootOf(target, ctx.config.roots);
  if (root === undefined) throw new HozoError('INTERNAL', `"${target}" is outside the roots`);
  const chain: string[] = [];
  for (let p = parentOf(target); p !== undefined && isWithin(p, root); p = parentOf(p)) chain.unshift(p);
  const created: string[] = [];
  let known = false; // once one level is known to exist, its parent does too
  for (let i = chain.length - 1; i >= 0 && !known; i--) {
    if (await exists(ctx, chain[i]!)) {
      chain.splice(0, i + 1);
      known = true;
    }
  }
  if (!known) {
    // Not even the root exists: its parent (outside the roots) must, or we stop.
    const above = parentOf(root);
    if (above === undefined || !(await exists(ctx, above))) {
      throw new HozoError('ZFS_DATASET_NOT_FOUND', `backup root "${root}" does not exist and neither does its parent "${above ?? root}"`, {
        hint: 'import the pool (prepare) or create the root on the box: zfs create -o canmount=off ROOT',
      });
    }
  }
  for (const ds of chain) {
    const argv = createParentArgv(ds);
    const r = await ctx.runner.run(argv, { timeoutMs: 60_000 });
    // A concurrent receive may have created it a moment ago.
    if (r.exitCode !== 0 && !/already exists/i.test(r.stderr)) checkResult(r, { action: `create ${ds}`, argv });
    created.push(ds);
  }
  return created;
}

export async function receive(ctx: AgentContext, req: Extract<Request, { verb: 'receive' }>): Promise<number> {
  const busy = await ctx.state.withLock(() => {
    const pending = ctx.state.shutdownPending();
    if (pending !== undefined) return 'the box is shutting down';
    return ctx.state.markReceive(req.dataset);
  });
  if (typeof busy === 'string') {
    ctx.err(`hozo-agent: receive refused: ${busy}\n`);
    return AgentExit.BUSY;
  }
  const unmark = busy;
  try {
    const created = await ensureParents(ctx, req.dataset);
    if (created.length > 0) ctx.log.write(`created ${created.join(', ')} (canmount=off)`);
    // A first receive: the dataset is missing, or has no snapshot yet (the partial state an interrupted `receive -s`
    // of a full stream leaves behind, now being resumed).
    const snaps = await ctx.runner.run(['zfs', 'list', '-H', '-o', 'name', '-t', 'snapshot', '-d', '1', req.dataset]);
    const isNew = snaps.exitCode !== 0 || snaps.stdout.trim() === '';
    const chain: string[][] = [receiveArgv(req.dataset, { unmounted: true, force: req.force, resumable: req.resumable })];
    // The same tools and arguments as the controller's side of the transfer (src/pipeline/transfer.ts).
    if (req.zstd) chain.unshift(ZSTD_DECOMPRESS);
    if (req.mbuffer) chain.unshift(mbufferArgv(ctx.config.bufferSize));
    const code = await ctx.stream(chain, { stdin: 'inherit', stdout: 'inherit' });
    // A backup must never mount itself at the next import or boot: mounting it (and making its children's
    // mountpoint directories) modifies it, and the next incremental receive would then be refused.
    if (code === 0 && isNew) {
      const r = await ctx.runner.run(['zfs', 'set', 'canmount=noauto', req.dataset]);
      if (r.exitCode !== 0) ctx.log.write(`could not set canmount=noauto on ${req.dataset}: ${r.stderr.trim()}`);
    }
    return code;
  } finally {
    unmark();
  }
}

/**
 * Discards the partial state of an interrupted `receive -s` (the controller asks when the sender refuses the resume
 * token, e.g. its snapshot is gone). Only that hidden partial state goes; no snapshot or dataset is destroyed. Refused
 * while a receive into the same dataset runs.
 */
export async function abortReceive(ctx: AgentContext, req: Extract<Request, { verb: 'abort-receive' }>): Promise<number> {
  const busy = await ctx.state.withLock(() =>
    ctx.state.receives().some((r) => r.dataset === req.dataset) ? `a receive into ${req.dataset} is running` : ctx.state.markReceive(req.dataset),
  );
  if (typeof busy === 'string') {
    ctx.err(`hozo-agent: abort-receive refused: ${busy}\n`);
    return AgentExit.BUSY;
  }
  try {
    const argv = receiveAbortArgv(req.dataset);
    const r = await ctx.runner.run(argv, { timeoutMs: 60_000 });
    checkResult(r, { action: `discard the partial receive of ${req.dataset}`, argv });
    ctx.log.write(`discarded the partial receive of ${req.dataset}`);
    return AgentExit.OK;
  } finally {
    busy();
  }
}

export async function send(ctx: AgentContext, req: Extract<Request, { verb: 'send' }>): Promise<number> {
  const spec =
    req.from === undefined
      ? ({ kind: 'full', snapshot: req.snapshot } as const)
      : ({ kind: 'incremental', from: req.from, to: req.snapshot, intermediates: req.intermediates } as const);
  const chain: string[][] = [sendArgv(spec, req.flags)];
  if (req.zstd) chain.push(ZSTD_COMPRESS);
  if (req.mbuffer) chain.push(mbufferArgv(ctx.config.bufferSize));
  return ctx.stream(chain, { stdin: 'ignore', stdout: 'inherit' });
}

/**
 * The probe's output, from the agent's own store while the fingerprint of zfs and the tools is unchanged (one stat
 * instead of ~30 zfs processes; see src/zfs/capability-cache.ts), else probed and stored.
 */
export async function capabilities(ctx: AgentContext): Promise<number> {
  const cache = new CapabilityCache(ctx.config.stateDirectory);
  const stored = cache.get('agent', 'local');
  const fingerprint = await ctx.runner.run(fingerprintArgv(), { timeoutMs: 10_000 });
  if (stored !== undefined && fingerprint.exitCode === 0 && fingerprint.stdout === stored.fingerprint) {
    ctx.out(stored.probe);
    return AgentExit.OK;
  }
  const probe = await ctx.runner.run(probeArgv(), { timeoutMs: 60_000 });
  const text = probe.stdout + probe.stderr;
  ctx.out(text);
  if (probe.exitCode !== 0) return AgentExit.FAILED;
  try {
    parseCapabilities(text);
    if (fingerprint.exitCode === 0) cache.put('agent', 'local', fingerprint.stdout, text);
  } catch {
    // zfs unusable right now: say what the probe said, remember nothing
  }
  return AgentExit.OK;
}
