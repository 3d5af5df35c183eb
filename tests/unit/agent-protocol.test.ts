// The agent protocol (src/protocol/agent.ts) from both sides: what the agent's own handlers write (through the real
// serve(), on the scripted box of tests/helpers/agent-harness.ts) is read back by the controller's parsers, and
// answers that are not the protocol — a box assumed compromised one day, or not running hozo-agent — are a clear
// AGENT_PROTOCOL error naming the host and verb, never a crash or a wrongly typed value flowing on.
import { describe, expect, it } from 'vitest';
import { serve } from '../../agent/serve.js';
import { isHozoError, exitCodeForCode, ExitCode } from '../../src/errors.js';
import { AgentExit, parseHoldReply, parsePrepareReply, parseReleaseReply, parseSessionFrame, parseStatusReply } from '../../src/protocol/agent.js';
import { box, harness } from '../helpers/agent-harness.js';

const out = (h: { out: string[] }) => {
  const text = h.out.join('');
  h.out.length = 0;
  return text;
};

describe('agent replies round-trip through the controller parsers', () => {
  it('status, prepare (ready and not), hold (taken, full), release (plain and the one that powers off)', async () => {
    const h = harness(box(), { maxLeases: 1 });
    expect(await serve(h.ctx, 'status')).toBe(AgentExit.OK);
    const s = parseStatusReply('box', out(h));
    expect(s.pools.map((p) => [p.name, p.health])).toEqual([['backup', 'ONLINE']]);
    expect(s.shutdownPending).toBe(false);

    expect(await serve(h.ctx, 'prepare')).toBe(AgentExit.OK);
    expect(parsePrepareReply('box', out(h))).toMatchObject({ ready: true, shutdownPending: false });

    expect(await serve(h.ctx, 'hold a 600')).toBe(AgentExit.OK);
    expect(parseHoldReply('box', out(h))).toMatchObject({ held: true, lease: { id: 'a' }, leases: ['a'] });
    expect(await serve(h.ctx, 'hold b 600')).toBe(AgentExit.BUSY);
    expect(parseHoldReply('box', out(h))).toEqual({ held: false, id: 'b', reason: '1 leases are held already (maxLeases)', shuttingDown: false });

    // A shutdown asked for while "a" is held is deferred; the release of "a" carries it out.
    expect(await serve(h.ctx, 'shutdown')).toBe(AgentExit.BUSY);
    out(h);
    expect(await serve(h.ctx, 'release a')).toBe(AgentExit.OK);
    const r = parseReleaseReply('box', out(h));
    expect(r).toMatchObject({ released: true, id: 'a', leases: [] });
    expect(r.shutdown).toBeDefined();

    // Now the box is going down: a hold says so in its reply, and prepare reports the pending shutdown.
    expect(await serve(h.ctx, 'hold c 60')).toBe(AgentExit.BUSY);
    expect(parseHoldReply('box', out(h))).toMatchObject({ held: false, shuttingDown: true });
    expect(await serve(h.ctx, 'prepare')).toBe(AgentExit.BUSY);
    expect(parsePrepareReply('box', out(h))).toMatchObject({ ready: false, shutdownPending: true });
  });

  it('a plain release (no shutdown due) has no shutdown field', async () => {
    const h = harness(box());
    await serve(h.ctx, 'hold a 60');
    out(h);
    expect(await serve(h.ctx, 'release a')).toBe(AgentExit.OK);
    expect(parseReleaseReply('box', out(h)).shutdown).toBeUndefined();
  });
});

describe('answers that are not the protocol', () => {
  const status = (pools: unknown, extra: Record<string, unknown> = {}) => JSON.stringify({ protocol: 1, pools, shutdownPending: false, ...extra });
  const bad: [string, string][] = [
    ['empty', ''],
    ['not JSON', 'zfs: command not found\n'],
    ['a JSON array', '[]'],
    ['null', 'null'],
    ['pools missing', JSON.stringify({ protocol: 1, shutdownPending: false })],
    ['pools not an array', status({ name: 'backup' })],
    ['a pool without a name', status([{ health: 'ONLINE', imported: true }])],
    ['health a number', status([{ name: 'backup', health: 7, imported: true }])],
    ['capacity over 1', status([{ name: 'backup', health: 'ONLINE', imported: true, capacityRatio: 5 }])],
    ['errors not an integer', status([{ name: 'backup', health: 'ONLINE', imported: true, errors: 0.5 }])],
    ['scrubRunning a string', status([{ name: 'backup', health: 'ONLINE', imported: true, scrubRunning: 'yes' }])],
    ['shutdownPending a string', status([], { shutdownPending: 'true' })],
    ['the name only on the prototype', '{"protocol":1,"shutdownPending":false,"pools":[{"__proto__":{"name":"backup"},"health":"ONLINE","imported":true}]}'],
    ['too many pools', status(Array.from({ length: 10_001 }, (_, i) => ({ name: `p${i}`, health: 'ONLINE', imported: true })))],
  ];
  it.each(bad)('status: %s → AGENT_PROTOCOL naming the host and verb', (_what, text) => {
    let err: unknown;
    try {
      parseStatusReply('offsite', text);
    } catch (e) {
      err = e;
    }
    expect(isHozoError(err, 'AGENT_PROTOCOL')).toBe(true);
    expect((err as Error).message).toMatch(/^offsite: hozo-agent's answer to "status" is not the protocol/);
  });

  it('the error shows at most 120 characters of the answer, escaped, and exits as a box problem (3)', () => {
    const hostile = `\u001b[2J${'x'.repeat(500)}`;
    let err: unknown;
    try {
      parseStatusReply('offsite', hostile);
    } catch (e) {
      err = e;
    }
    expect((err as Error).message).not.toContain('\u001b');
    expect((err as Error).message.length).toBeLessThan(260);
    expect(exitCodeForCode('AGENT_PROTOCOL')).toBe(ExitCode.UNREACHABLE);
  });

  it('hold, release and prepare check their own fields', () => {
    expect(() => parseHoldReply('b', JSON.stringify({ held: true, leases: [] }))).toThrow(/"hold" is not the protocol/);
    expect(() => parseHoldReply('b', JSON.stringify({ held: false, id: 'x', reason: 'r' }))).toThrow(/"hold"/);
    expect(() => parseReleaseReply('b', JSON.stringify({ released: 'yes', id: 'x', leases: [] }))).toThrow(/"release"/);
    expect(() => parseReleaseReply('b', JSON.stringify({ released: true, id: 'x', leases: [], shutdown: 'now' }))).toThrow(/"release"/);
    expect(() => parsePrepareReply('b', JSON.stringify({ ready: 1, shutdownPending: false, pools: [] }))).toThrow(/"prepare"/);
  });

  it('session frames: one JSON line with integer id and exit and string outputs, else undefined', () => {
    expect(parseSessionFrame('{"id":3,"exit":0,"stdout":"a","stderr":""}')).toEqual({ id: 3, exit: 0, stdout: 'a', stderr: '' });
    for (const line of [
      '',
      'hello',
      '{"id":"3","exit":0,"stdout":"","stderr":""}',
      '{"id":3,"exit":0.5,"stdout":"","stderr":""}',
      '{"id":3,"exit":0,"stdout":1,"stderr":""}',
    ]) {
      expect(parseSessionFrame(line), line).toBeUndefined();
    }
  });
});
