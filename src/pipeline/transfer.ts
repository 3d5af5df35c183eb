// Builds the process chain for one `zfs send | … | zfs receive`, local or across SSH, with optional compression and
// buffering, and a local `pv` to count bytes (and to cap the rate: bandwidthLimit, src/pipeline/bandwidth.ts).
//
// Buffering: `buffer: auto` (the default) puts mbuffer in front of `zfs receive` on the receiving host when the stream
// crosses the network and that host has mbuffer. zfs receive takes data in bursts (it stalls while a transaction group
// commits); the buffer keeps the sender and the SSH channel going meanwhile. `buffer: mbuffer` buffers both ends.
import type { Capabilities } from '../zfs/types.js';
import type { Runner } from '../transport/runner.js';
import { shellJoin } from '../transport/quote.js';
import type { Stage } from './pipeline.js';
import { HozoError } from '../errors.js';

/** Tools around one side's zfs command: zstd (compress on the sender, decompress on the receiver) and mbuffer. */
export interface Wrap {
  readonly zstd: boolean;
  readonly mbuffer: boolean;
}

export const NO_WRAP: Wrap = { zstd: false, mbuffer: false };

export interface TransferOptions {
  /**
   * argv of the send / receive. A host that runs plain commands ignores `wrap` (the tools are put around the command
   * here). A host that wraps its own zfs (hozo-agent: `receive --zstd --mbuffer`) returns the argv with `wrap`
   * applied; see `senderWraps` / `receiverWraps`.
   */
  readonly sendArgv: (wrap: Wrap) => readonly string[];
  readonly receiveArgv: (wrap: Wrap) => readonly string[];
  readonly sender: Runner;
  readonly receiver: Runner;
  readonly senderCaps: Capabilities;
  readonly receiverCaps: Capabilities;
  /** Capabilities of this machine (where pv runs); equals one of the above when that side is local. */
  readonly localCaps: Capabilities;
  /** true when that side applies `wrap` itself (hozo-agent); false: hozo puts the tools around its command. */
  readonly senderWraps?: boolean;
  readonly receiverWraps?: boolean;
  readonly compress: 'zstd' | 'none';
  readonly buffer: 'auto' | 'mbuffer' | 'none';
  /** mbuffer's memory, e.g. "128M" (hozo's own mbuffer stages; hozo-agent uses its own setting). */
  readonly bufferSize?: string;
  /** A rate cap for the local pv (`pv -L`, bytes per second like "20M"); without pv here the transfer is refused. */
  readonly rateLimit?: string;
}

export interface TransferPlan {
  readonly stages: Stage[];
  /** Index of the pv stage, if bytes are counted. */
  readonly counterStage: number | undefined;
  /** What was asked for but not available, for a warning. */
  readonly degraded: string[];
  /** The tools put around each side (for the report and tests). */
  readonly sendWrap: Wrap;
  readonly receiveWrap: Wrap;
}

export const DEFAULT_BUFFER_SIZE = '128M';
export const mbufferArgv = (size = DEFAULT_BUFFER_SIZE): string[] => ['mbuffer', '-q', '-s', '128k', '-m', size];
export const ZSTD_COMPRESS = ['zstd', '-q', '-c', '-3', '-T0'];
export const ZSTD_DECOMPRESS = ['zstd', '-q', '-d', '-c'];

export function buildTransfer(o: TransferOptions): TransferPlan {
  const degraded: string[] = [];
  const crossesNetwork = !o.sender.local || !o.receiver.local;

  let zstd = false;
  if (o.compress === 'zstd') {
    if (o.senderCaps.zstd && o.receiverCaps.zstd) zstd = true;
    else degraded.push('compress: zstd is not installed on both ends; sending uncompressed');
  }
  let sendBuffer = false;
  let receiveBuffer = false;
  if (o.buffer === 'mbuffer') {
    if (o.senderCaps.mbuffer && o.receiverCaps.mbuffer) sendBuffer = receiveBuffer = true;
    else degraded.push('buffer: mbuffer is not installed on both ends; sending unbuffered');
  } else if (o.buffer === 'auto' && crossesNetwork) {
    // Silent when missing: auto means "where it helps and is there".
    receiveBuffer = o.receiverCaps.mbuffer;
  }
  const sendWrap: Wrap = { zstd, mbuffer: sendBuffer };
  const receiveWrap: Wrap = { zstd, mbuffer: receiveBuffer };
  const mbuffer = mbufferArgv(o.bufferSize);

  const sendSide: string[][] = [[...o.sendArgv(o.senderWraps === true ? sendWrap : NO_WRAP)]];
  if (o.senderWraps !== true) {
    if (sendWrap.zstd) sendSide.push(ZSTD_COMPRESS);
    if (sendWrap.mbuffer) sendSide.push(mbuffer);
  }
  const recvSide: string[][] = [[...o.receiveArgv(o.receiverWraps === true ? receiveWrap : NO_WRAP)]];
  if (o.receiverWraps !== true) {
    if (receiveWrap.zstd) recvSide.unshift(ZSTD_DECOMPRESS);
    if (receiveWrap.mbuffer) recvSide.unshift(mbuffer);
  }

  const stages: Stage[] = [...segment('send', sendSide, 0, o.sender)];
  let counterStage: number | undefined;
  if (o.rateLimit !== undefined && !o.localCaps.pv) {
    // A limit that is silently not applied would saturate the link it was set to protect.
    throw new HozoError('TOOL_MISSING', `bandwidthLimit ${o.rateLimit} needs pv on this machine, and pv is not installed`, {
      hint: "install pv (Debian: apt install pv; the NixOS module puts it on the unit's path), or remove bandwidthLimit",
    });
  }
  if (o.localCaps.pv) {
    counterStage = stages.length;
    stages.push({
      name: o.rateLimit === undefined ? 'count (pv)' : `count and limit to ${o.rateLimit}/s (pv)`,
      argv: ['pv', '-f', '-n', '-b', '-i', '1', ...(o.rateLimit === undefined ? [] : ['-L', o.rateLimit])],
    });
  }
  stages.push(...segment('receive', recvSide, recvSide.length - 1, o.receiver));
  return { stages, counterStage, degraded, sendWrap, receiveWrap };
}

/** Commands that run on one host: separate local processes, or a single ssh running them as a remote pipeline. */
function segment(name: string, cmds: string[][], main: number, runner: Runner): Stage[] {
  if (runner.local) {
    return cmds.map((argv, i) => ({ name: i === main ? name : `${name}/${argv[0]}`, argv }));
  }
  const remote = cmds.length === 1 ? cmds[0]! : ['sh', '-c', cmds.map(shellJoin).join(' | ')];
  return [{ name: `ssh ${runner.name} (${name})`, argv: runner.commandFor(remote) }];
}
