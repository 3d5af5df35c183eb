// Builds the process chain for one `zfs send | … | zfs receive`, local or across SSH, with optional
// compression and buffering when both ends have the tool, and a local `pv` to count bytes.
import type { Capabilities } from '../zfs/types.js';
import type { Runner } from '../transport/runner.js';
import { shellJoin } from '../transport/quote.js';
import type { Stage } from './pipeline.js';

export interface TransferOptions {
  readonly sendArgv: readonly string[];
  readonly receiveArgv: readonly string[];
  readonly sender: Runner;
  readonly receiver: Runner;
  readonly senderCaps: Capabilities;
  readonly receiverCaps: Capabilities;
  /** Capabilities of this machine (where pv runs); equals one of the above when that side is local. */
  readonly localCaps: Capabilities;
  /** false when that side cannot run a remote pipeline (hozo-agent): no zstd/mbuffer around its zfs. */
  readonly senderPipelines?: boolean;
  readonly receiverPipelines?: boolean;
  readonly compress: 'zstd' | 'none';
  readonly buffer: 'auto' | 'mbuffer' | 'none';
}

export interface TransferPlan {
  readonly stages: Stage[];
  /** Index of the pv stage, if bytes are counted. */
  readonly counterStage: number | undefined;
  /** What was asked for but not available on both ends, for a warning. */
  readonly degraded: string[];
}

const MBUFFER = ['mbuffer', '-q', '-s', '128k', '-m', '128M'];

export function buildTransfer(o: TransferOptions): TransferPlan {
  const degraded: string[] = [];
  const crossesNetwork = o.sender.name !== 'local' || o.receiver.name !== 'local';
  const sendSide: string[][] = [[...o.sendArgv]];
  const recvSide: string[][] = [[...o.receiveArgv]];

  const wrappable = (o.senderPipelines ?? true) && (o.receiverPipelines ?? true);
  if (o.compress === 'zstd') {
    if (!wrappable) degraded.push('compress: the box speaks through hozo-agent, which receives the plain stream; sending uncompressed');
    else if (o.senderCaps.zstd && o.receiverCaps.zstd) {
      sendSide.push(['zstd', '-q', '-c', '-3', '-T0']);
      recvSide.unshift(['zstd', '-q', '-d', '-c']);
    } else degraded.push('compress: zstd is not installed on both ends; sending uncompressed');
  }
  const wantBuffer = o.buffer === 'mbuffer' || (o.buffer === 'auto' && crossesNetwork);
  if (wantBuffer && !wrappable) {
    if (o.buffer === 'mbuffer') degraded.push('buffer: the box speaks through hozo-agent; sending unbuffered');
  } else if (wantBuffer) {
    if (o.senderCaps.mbuffer && o.receiverCaps.mbuffer) {
      sendSide.push(MBUFFER);
      recvSide.unshift(MBUFFER);
    } else if (o.buffer === 'mbuffer') degraded.push('buffer: mbuffer is not installed on both ends; sending unbuffered');
  }

  const stages: Stage[] = [...segment('send', sendSide, 0, o.sender)];
  let counterStage: number | undefined;
  if (o.localCaps.pv) {
    counterStage = stages.length;
    stages.push({ name: 'count (pv)', argv: ['pv', '-f', '-n', '-b', '-i', '1'] });
  }
  stages.push(...segment('receive', recvSide, recvSide.length - 1, o.receiver));
  return { stages, counterStage, degraded };
}

/** Commands that run on one host: separate local processes, or a single ssh running them as a remote pipeline. */
function segment(name: string, cmds: string[][], main: number, runner: Runner): Stage[] {
  if (runner.name === 'local') {
    return cmds.map((argv, i) => ({ name: i === main ? name : `${name}/${argv[0]}`, argv }));
  }
  const remote = cmds.length === 1 ? cmds[0]! : ['sh', '-c', cmds.map(shellJoin).join(' | ')];
  return [{ name: `ssh ${runner.name} (${name})`, argv: runner.commandFor(remote) }];
}
