// The verbs that move bytes: receive (stdin → zfs receive), send (zfs send → stdout) and capabilities (the probe's
// output). Each child gets the agent's own file descriptors, so the stream never passes through JavaScript.
import { createParentArgv, receiveAbortArgv, receiveArgv, receiveProtection, sendArgv } from '../src/zfs/argv.js';
import { getArgv, listNamesArgv, setArgv } from '../src/zfs/dataset-argv.js';
import { parseCapabilities, probeArgv } from '../src/zfs/capabilities.js';
import { CapabilityCache, fingerprintArgv } from '../src/zfs/capability-cache.js';
import { checkResult } from '../src/zfs/errors.js';
import { isWithin, parentOf } from '../src/zfs/names.js';
import { mbufferArgv, ZSTD_COMPRESS, ZSTD_DECOMPRESS } from '../src/pipeline/transfer.js';
import { HozoError } from '../src/errors.js';
import { rootOf, type Request } from './command.js';
import { recordReceived } from './stamp.js';
import { AgentExit, type AgentContext } from './context.js';

async function exists(ctx: AgentContext, dataset: string): Promise<boolean> {
  const argv = listNamesArgv(dataset);
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
export async function ensureParents(ctx: AgentContext, target: string, protect = false): Promise<string[]> {
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
    const argv = createParentArgv(ds, protect);
    const r = await ctx.runner.run(argv, { timeoutMs: 60_000 });
    // A concurrent receive may have created it a moment ago.
    if (r.exitCode !== 0 && !/already exists/i.test(r.stderr)) checkResult(r, { action: `create ${ds}`, argv });
    created.push(ds);
  }
  return created;
}

/** The box's own receive -o/-x support (OpenZFS), from the probe the controller's capabilities request stored. */
export async function protects(ctx: AgentContext): Promise<boolean> {
  const { text, ok } = await probeText(ctx);
  if (!ok) return false;
  try {
    const caps = parseCapabilities(text);
    return caps.receiveFlags.has('o') && caps.receiveFlags.has('x');
  } catch {
    return false;
  }
}

interface Unprotected {
  readonly dataset: string;
  readonly what: string;
  /** `zfs set` arguments that make it safe (space-separated). */
  readonly fix: string;
}

// The protections that need `zfs allow` for a non-root agent (src/zfs/delegation.ts); -x needs none.
const DELEGATED = ['mountpoint', 'canmount', 'setuid', 'exec', 'devices', 'volmode'];

type Props = ReadonlyMap<string, string>;
const SAFE: Readonly<Record<string, { readonly ok: (v: string, all: Props) => boolean; readonly fix: string; readonly on: 'filesystem' | 'volume' | 'both' }>> =
  {
    // Never mounted by `zfs mount -a` (at an import or boot): no mountpoint (none; legacy: only by an fstab entry), or
    // canmount off/noauto. Children of a `-R` package keep a received canmount=on (not inheritable) under the
    // inherited mountpoint=none.
    mountpoint: { ok: (v, all) => v === 'none' || v === 'legacy' || all.get('canmount') !== 'on', fix: 'mountpoint=none canmount=noauto', on: 'filesystem' },
    setuid: { ok: (v) => v === 'off', fix: 'setuid=off', on: 'filesystem' },
    exec: { ok: (v) => v === 'off', fix: 'exec=off', on: 'filesystem' },
    devices: { ok: (v) => v === 'off', fix: 'devices=off', on: 'filesystem' },
    volmode: { ok: (v) => v === 'none', fix: 'volmode=none', on: 'volume' },
    reservation: { ok: (v) => v === '0' || v === 'none', fix: 'reservation=none', on: 'both' },
    refreservation: { ok: (v) => v === '0' || v === 'none', fix: 'refreservation=none', on: 'both' },
  };

/** What one `zfs get -r` after a receive on OpenZFS tells: every dataset at or below the target whose effective
 *  properties would let it mount, run or reserve anything, and every snapshot there with its guid (for the box's
 *  receive times, agent/stamp.ts) — one zfs process instead of two on a box where each costs a fifth of a second. */
export interface Received {
  readonly problems: Unprotected[];
  readonly snapshots: [name: string, guid: string][];
}

export async function readReceived(ctx: AgentContext, dataset: string): Promise<Received> {
  const props = ['type', 'mountpoint', 'canmount', ...Object.keys(SAFE).filter((p) => p !== 'mountpoint'), 'guid'];
  const argv = getArgv(props, [dataset], {
    parsable: true,
    recursive: true,
    types: ['filesystem', 'volume', 'snapshot'],
    fields: ['name', 'property', 'value'],
  });
  const r = await ctx.runner.run(argv, { timeoutMs: 300_000 });
  checkResult(r, { action: `read the properties received into ${dataset}`, argv });
  const rows = new Map<string, Map<string, string>>();
  for (const line of r.stdout.split('\n')) {
    const [name, prop, value] = line.split('\t');
    if (name === undefined || prop === undefined || value === undefined) continue;
    if (!rows.has(name)) rows.set(name, new Map());
    rows.get(name)!.set(prop, value);
  }
  const problems: Unprotected[] = [];
  const snapshots: [string, string][] = [];
  for (const [name, values] of rows) {
    const type = values.get('type');
    if (type === 'snapshot') {
      const guid = values.get('guid');
      if (name.includes('@') && guid !== undefined && /^[0-9]+$/.test(guid)) snapshots.push([name, guid]);
      continue;
    }
    const kind = type === 'volume' ? 'volume' : 'filesystem';
    for (const [prop, rule] of Object.entries(SAFE)) {
      const v = values.get(prop);
      if (v === undefined || v === '-' || (rule.on !== 'both' && rule.on !== kind)) continue;
      if (!rule.ok(v, values)) problems.push({ dataset: name, what: `${prop}=${v}`, fix: rule.fix });
    }
  }
  return { problems, snapshots };
}

export async function receive(ctx: AgentContext, req: Extract<Request, { verb: 'receive' }>): Promise<number> {
  const busy = await ctx.state.withLock(() => {
    const pending = ctx.state.shutdownPending();
    if (pending !== undefined) return 'the box is shutting down';
    // One key cannot occupy the box's disks with many streams at once (maxReceives, per controller section).
    const mine = ctx.state.receives().filter((r) => rootOf(r.dataset, ctx.config.roots) !== undefined);
    if (mine.length >= ctx.config.maxReceives)
      return `${mine.length} receive(s) of this controller are running already (maxReceives ${ctx.config.maxReceives})`;
    return ctx.state.markReceive(req.dataset);
  });
  if (typeof busy === 'string') {
    ctx.err(`hozo-agent: receive refused: ${busy}\n`);
    return AgentExit.BUSY;
  }
  const unmark = busy;
  try {
    const protect = await protects(ctx);
    const created = await ensureParents(ctx, req.dataset, protect);
    if (created.length > 0)
      ctx.log.write(`created ${created.join(', ')} (canmount=off${protect ? ', mountpoint=none, setuid/exec/devices off, volmode=none' : ''})`);
    // zfs-fuse (no receive -o): a first receive — the dataset is missing, or has no snapshot yet (the partial state
    // an interrupted `receive -s` of a full stream leaves behind, now being resumed) — gets canmount=noauto below.
    // With -o the receive sets it itself, so the look-up is not needed.
    let isNew = false;
    if (!protect) {
      const snaps = await ctx.runner.run(listNamesArgv(req.dataset, { type: 'snapshot', depth: 1 }));
      isNew = snaps.exitCode !== 0 || snaps.stdout.trim() === '';
    }
    // Whatever properties the stream carries (a stolen controller can send a crafted `send -R -p` package), nothing
    // received mounts, runs setuid binaries, makes device nodes or reserves space on this box (receiveProtection).
    const protection = protect ? receiveProtection(req.volume ? 'volume' : 'filesystem') : {};
    const chain: string[][] = [receiveArgv(req.dataset, { unmounted: true, force: req.force, resumable: req.resumable, ...protection })];
    // The same tools and arguments as the controller's side of the transfer (src/pipeline/transfer.ts).
    if (req.zstd) chain.unshift(ZSTD_DECOMPRESS);
    if (req.mbuffer) chain.unshift(mbufferArgv(ctx.config.bufferSize));
    const code = await ctx.stream(chain, { stdin: 'inherit', stdout: 'inherit' });
    const received = code === 0 && protect ? await readReceived(ctx, req.dataset) : undefined;
    if (received !== undefined) {
      // zfs receive exits 0 when it could not apply a property (a box whose delegation lacks one of them: "cannot
      // receive setuid property ... permission denied"), so what took effect is read back, and the run fails
      // unless every received dataset is safe.
      const problems = received.problems;
      if (problems.length > 0) {
        const fixes = new Map<string, string[]>();
        for (const p of problems) fixes.set(p.dataset, [...(fixes.get(p.dataset) ?? []), ...p.fix.split(' ')]);
        let fixed = { exitCode: 0, stderr: '' };
        for (const [ds, props] of fixes) {
          const r = await ctx.runner.run(setArgv(props, ds), { timeoutMs: 60_000 });
          if (r.exitCode !== 0) fixed = { exitCode: r.exitCode ?? 1, stderr: fixed.stderr + r.stderr };
        }
        const text = problems.map((p) => `${p.dataset}: ${p.what}`).join('; ');
        ctx.log.write(`receive into ${req.dataset}: unprotected after the receive (${text}); set again: exit ${fixed.exitCode}`);
        ctx.err(
          `hozo-agent: receive into ${req.dataset}: the received data is not protected on this box (${text}); ` +
            (fixed.exitCode === 0 ? 'the properties were set now. ' : `setting them failed too: ${fixed.stderr.trim().split('\n').join('; ')}. `) +
            `Delegate ${DELEGATED.join(',')} to the agent's user on the roots (services.hozo.agent.permissions)\n`,
        );
        return AgentExit.FAILED;
      }
    }
    if (code === 0) {
      // The box's own receive time for its retention (agent/stamp.ts), never the sender's `creation`.
      try {
        await recordReceived(ctx, req.dataset, received?.snapshots);
      } catch (e) {
        ctx.log.write(`receive into ${req.dataset}: could not record the receive time: ${(e as Error).message}`);
        ctx.err(`hozo-agent: receive into ${req.dataset}: could not record the receive time for the box's retention: ${(e as Error).message}\n`);
        return AgentExit.FAILED;
      }
    }
    // zfs-fuse (no receive -o): a backup must never mount itself at the next import or boot: mounting it (and making
    // its children's mountpoint directories) modifies it, and the next incremental receive would then be refused.
    if (code === 0 && isNew && !protect) {
      const r = await ctx.runner.run(setArgv(['canmount=noauto'], req.dataset));
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
 * instead of ~30 zfs processes; see src/zfs/capability-cache.ts), else probed and stored; ok false: the probe failed.
 */
async function probeText(ctx: AgentContext): Promise<{ readonly text: string; readonly ok: boolean }> {
  const cache = new CapabilityCache(ctx.config.stateDirectory);
  const stored = cache.get('agent', 'local');
  const fingerprint = await ctx.runner.run(fingerprintArgv(), { timeoutMs: 10_000 });
  if (stored !== undefined && fingerprint.exitCode === 0 && fingerprint.stdout === stored.fingerprint) return { text: stored.probe, ok: true };
  const probe = await ctx.runner.run(probeArgv(), { timeoutMs: 60_000 });
  const text = probe.stdout + probe.stderr;
  if (probe.exitCode !== 0) return { text, ok: false };
  try {
    parseCapabilities(text);
    if (fingerprint.exitCode === 0) cache.put('agent', 'local', fingerprint.stdout, text);
  } catch {
    // zfs unusable right now: say what the probe said, remember nothing
  }
  return { text, ok: true };
}

export async function capabilities(ctx: AgentContext): Promise<number> {
  const { text, ok } = await probeText(ctx);
  ctx.out(text);
  return ok ? AgentExit.OK : AgentExit.FAILED;
}
