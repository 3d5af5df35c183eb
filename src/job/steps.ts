// argv for one planned step, given what the sending host supports.
import type { Step } from '../planner/types.js';
import { receiveArgv, receiveProtection, sendArgv } from '../zfs/argv.js';
import type { Capabilities } from '../zfs/types.js';
import { HozoError } from '../errors.js';

export function sendArgvFor(dataset: string, step: Step, caps: Capabilities, estimateOnly = false, raw = false): string[] {
  if (raw && !caps.sendFlags.has('w')) throw new HozoError('ZFS_UNSUPPORTED', `cannot send ${dataset} raw: this zfs has no send -w`);
  // Keep blocks as stored where both the format and the sender allow it: less CPU, same bytes on disk.
  const opts = {
    ...(raw ? { raw: true } : {}),
    ...(caps.sendFlags.has('L') ? { largeBlock: true } : {}),
    ...(caps.sendFlags.has('e') ? { embedded: true } : {}),
    ...(caps.sendFlags.has('c') ? { compressed: true } : {}),
    ...(estimateOnly ? { dryRunParsable: true } : {}),
  };
  // The stream flags of a resumed send come from the token; -n -P still works for an estimate.
  if (step.kind === 'resume') return sendArgv({ kind: 'resume', token: step.token }, estimateOnly ? { dryRunParsable: true } : {});
  return step.kind === 'full'
    ? sendArgv({ kind: 'full', snapshot: `${dataset}@${step.snapshot.name}` }, opts)
    : sendArgv(
        {
          kind: 'incremental',
          from: `${dataset}${step.from.bookmark ? '#' : '@'}${step.from.name}`,
          to: `${dataset}@${step.to.name}`,
          intermediates: step.intermediates,
        },
        opts,
      );
}

export function receiveArgvFor(target: string, opts: { force: boolean; unmounted: boolean; resumable?: boolean; volume?: boolean }, protect = false): string[] {
  return receiveArgv(target, {
    force: opts.force,
    unmounted: opts.unmounted,
    resumable: opts.resumable === true,
    ...(protect ? receiveProtection(opts.volume === true ? 'volume' : 'filesystem') : {}),
  });
}
