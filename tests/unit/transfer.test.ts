// The process chain of one transfer: which tools go where, for plain hosts (hozo builds the pipeline) and for
// hozo-agent hosts (the agent wraps its own zfs and gets flags).
import { describe, expect, it } from 'vitest';
import { buildTransfer, type TransferOptions, type Wrap } from '../../src/pipeline/transfer.js';
import { shellJoin } from '../../src/transport/quote.js';
import type { Runner } from '../../src/transport/runner.js';
import type { Capabilities } from '../../src/zfs/types.js';
import { testCaps } from '../helpers/caps.js';

const caps = (tools: Partial<Pick<Capabilities, 'mbuffer' | 'pv' | 'zstd'>>): Capabilities => testCaps(tools);
const ALL = caps({ mbuffer: true, pv: true, zstd: true });
const NONE = caps({});

function runner(name: string): Runner {
  return {
    name,
    local: name === 'local',
    run: async () => ({ stdout: '', stderr: '', exitCode: 0 }),
    commandFor: (argv: readonly string[]) => ['ssh', 'box', '--', shellJoin(argv)],
    close: async () => undefined,
  };
}
const local = runner('local');
const box = runner('box');

function plan(o: Partial<TransferOptions>) {
  const wraps: { send?: Wrap; receive?: Wrap } = {};
  const t = buildTransfer({
    sendArgv: (w) => ((wraps.send = w), ['zfs', 'send', 'tank/a@s1']),
    receiveArgv: (w) => ((wraps.receive = w), ['zfs', 'receive', '-u', 'backup/a']),
    sender: local,
    receiver: box,
    senderCaps: ALL,
    receiverCaps: ALL,
    localCaps: ALL,
    compress: 'none',
    buffer: 'auto',
    ...o,
  });
  return { ...t, wraps, argvs: t.stages.map((s) => s.argv.join(' ')) };
}

describe('buildTransfer', () => {
  it('bandwidthLimit: the local pv stage caps the rate (pv -L), whichever side is remote', () => {
    expect(plan({ rateLimit: '20M' }).argvs[1]).toBe('pv -f -n -b -i 1 -L 20M');
    expect(plan({ rateLimit: '500K', sender: box, receiver: local }).argvs).toContain('pv -f -n -b -i 1 -L 500K');
  });

  it('bandwidthLimit without pv here is refused, not silently ignored', () => {
    expect(() => plan({ rateLimit: '20M', localCaps: NONE })).toThrow(/bandwidthLimit 20M needs pv on this machine/);
    // Without a limit, no pv only means no byte count.
    expect(plan({ localCaps: NONE }).counterStage).toBeUndefined();
  });

  it('auto: mbuffer in front of the remote zfs receive only, pv counting locally', () => {
    const t = plan({});
    expect(t.argvs).toEqual(['zfs send tank/a@s1', 'pv -f -n -b -i 1', "ssh box -- sh -c 'mbuffer -q -s 128k -m 128M | zfs receive -u backup/a'"]);
    expect(t.counterStage).toBe(1);
    expect(t.receiveWrap).toEqual({ zstd: false, mbuffer: true });
    expect(t.sendWrap).toEqual({ zstd: false, mbuffer: false });
    expect(t.degraded).toEqual([]);
  });

  it('auto: the configured buffer size', () => {
    expect(plan({ bufferSize: '32M' }).argvs[2]).toContain('mbuffer -q -s 128k -m 32M |');
  });

  it('auto: no buffer when the receiver has no mbuffer, and no warning (auto means "where it is there")', () => {
    const t = plan({ receiverCaps: caps({ pv: true }) });
    expect(t.argvs[2]).toBe('ssh box -- zfs receive -u backup/a');
    expect(t.degraded).toEqual([]);
  });

  it('auto: no buffer between two local pools (nothing crosses the network)', () => {
    const t = plan({ receiver: local });
    expect(t.argvs).toEqual(['zfs send tank/a@s1', 'pv -f -n -b -i 1', 'zfs receive -u backup/a']);
  });

  it('mbuffer: both ends; none: neither', () => {
    expect(plan({ buffer: 'mbuffer' }).argvs).toEqual([
      'zfs send tank/a@s1',
      'mbuffer -q -s 128k -m 128M',
      'pv -f -n -b -i 1',
      "ssh box -- sh -c 'mbuffer -q -s 128k -m 128M | zfs receive -u backup/a'",
    ]);
    expect(plan({ buffer: 'none' }).argvs).toEqual(['zfs send tank/a@s1', 'pv -f -n -b -i 1', 'ssh box -- zfs receive -u backup/a']);
  });

  it('mbuffer or zstd missing on one end: sent without it, with a warning', () => {
    const t = plan({ buffer: 'mbuffer', compress: 'zstd', receiverCaps: NONE });
    expect(t.argvs).toEqual(['zfs send tank/a@s1', 'pv -f -n -b -i 1', 'ssh box -- zfs receive -u backup/a']);
    expect(t.degraded).toEqual([
      'compress: zstd is not installed on both ends; sending uncompressed',
      'buffer: mbuffer is not installed on both ends; sending unbuffered',
    ]);
  });

  it('zstd: compress after send, decompress before receive (inside the buffer)', () => {
    expect(plan({ compress: 'zstd' }).argvs).toEqual([
      'zfs send tank/a@s1',
      'zstd -q -c -3 -T0',
      'pv -f -n -b -i 1',
      "ssh box -- sh -c 'mbuffer -q -s 128k -m 128M | zstd -q -d -c | zfs receive -u backup/a'",
    ]);
  });

  it('a host that wraps itself (hozo-agent) gets the tools as flags, and nothing is put around its command', () => {
    const t = plan({ compress: 'zstd', receiverWraps: true });
    expect(t.wraps.receive).toEqual({ zstd: true, mbuffer: true });
    expect(t.wraps.send).toEqual({ zstd: false, mbuffer: false });
    expect(t.argvs).toEqual(['zfs send tank/a@s1', 'zstd -q -c -3 -T0', 'pv -f -n -b -i 1', 'ssh box -- zfs receive -u backup/a']);
  });

  it('restore from an agent box: the agent compresses its send, this machine buffers and decompresses locally', () => {
    const t = plan({ sender: box, receiver: local, senderWraps: true, compress: 'zstd' });
    expect(t.wraps.send).toEqual({ zstd: true, mbuffer: false });
    expect(t.argvs).toEqual(['ssh box -- zfs send tank/a@s1', 'pv -f -n -b -i 1', 'mbuffer -q -s 128k -m 128M', 'zstd -q -d -c', 'zfs receive -u backup/a']);
  });

  it('no pv on this machine: no counter stage', () => {
    const t = plan({ localCaps: NONE });
    expect(t.counterStage).toBeUndefined();
    expect(t.stages.map((s) => s.name)).toEqual(['send', 'ssh box (receive)']);
  });
});
