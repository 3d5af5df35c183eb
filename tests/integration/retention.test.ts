// A history the controller cannot erase, on real zfs-fuse: the box's retention buckets snapshots by when the box
// received them (its own record, agent/stamp.ts), never by the `creation` the sender's clock wrote.
// 200 daily snapshots are received over 200 simulated days: the agent's own receive code path (serve → receive →
// record) with its clock stepped one day per receive, streams from a real `zfs send`. All 200 have today's `creation`
// (a creation-based prune would keep 1 of them). Then 7 incrementals sent as `send -R -p` replication streams with
// properties (a replication stream clears snapshot properties it does not carry, so a record kept in the pool would
// be wiped), then prune: exactly what the policy allows is destroyed. Then the box's clock goes back a month for one
// more receive: that newest snapshot (by createtxg) stays.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { destroyTestPool, zfsFuseUnusable } from '../helpers/zfs-fuse.js';
import { validateAgentConfig } from '../../agent/config.js';
import { createContext, type AgentContext, type StreamSpawner } from '../../agent/context.js';
import { serve } from '../../agent/serve.js';
import { RECEIPTS_FILE } from '../../agent/stamp.js';
import { shellJoin } from '../../src/transport/quote.js';
import { expectedKept } from '../helpers/retention-oracle.js';

const skip = await zfsFuseUnusable([]);
if (skip !== undefined) console.warn(`SKIP: tests/integration/retention.test.ts: ${skip}`);

const ID = randomBytes(3).toString('hex');
const SRC = `hzrtsrc${ID}`;
const BOX = `hzrtbox${ID}`;
const DIR = `/tmp/hzrt-it-${ID}`;
const ROOT_DS = `${BOX}/kraken`;
const TARGET = `${ROOT_DS}/d`;
const DAY = 86_400;
const DAYS = 200;
// Day 0 at noon UTC, so that day DAYS+7 (the prune) is a little before the real now.
const T0 = Math.floor(Date.now() / 1000 / DAY) * DAY - (DAYS + 10) * DAY + DAY / 2;
const POLICY = { hourly: 0, daily: 7, weekly: 4, monthly: 6, yearly: 0 };

const zfs = async (...argv: string[]) => (await execa('zfs', argv)).stdout.trim();

/** The agent's context as its main() builds it, with the clock at `t` and streams fed by `zfs send SEND…`. */
function agentAt(t: number, send: readonly string[], out: string[], err: string[]): AgentContext {
  const config = validateAgentConfig({
    roots: [ROOT_DS],
    retention: POLICY,
    stateDirectory: join(DIR, 'state'),
    leaseDirectory: join(DIR, 'state', 'leases'),
    poweroffCommand: ['true'],
    pools: [BOX],
  });
  const ctx = createContext(config, { clock: () => t });
  const stream: StreamSpawner = async (chain) => {
    const r = await execa('sh', ['-c', `${shellJoin(['zfs', 'send', ...send])} | ${chain.map((a) => shellJoin(a)).join(' | ')}`], {
      reject: false,
      timeout: 120_000,
    });
    err.push(String(r.stderr));
    return r.exitCode ?? 1;
  };
  return { ...ctx, stream, out: (s) => void out.push(s), err: (s) => void err.push(s) };
}

async function receiveAt(t: number, send: readonly string[]): Promise<void> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await serve(agentAt(t, send, out, err), `receive -u ${TARGET}`);
  expect(code, err.join('')).toBe(0);
}

describe.skipIf(skip !== undefined)("box retention by receive time on real zfs-fuse (the agent's own code path, stepped clock)", () => {
  beforeAll(async () => {
    process.env['TZ'] = 'UTC';
    mkdirSync(DIR, { recursive: true });
    for (const p of [SRC, BOX]) {
      await execa('truncate', ['-s', '256M', join(DIR, `${p}.img`)]);
      await execa('zpool', ['create', '-m', join(DIR, 'mnt', p), p, join(DIR, `${p}.img`)]);
    }
    await zfs('create', `${SRC}/d`);
    await zfs('create', '-o', 'canmount=off', ROOT_DS);
  });
  afterAll(async () => {
    for (const p of [SRC, BOX]) await destroyTestPool(p);
    if (existsSync(DIR)) rmSync(DIR, { recursive: true, force: true });
  });

  it('200 days received, 7 replication-stream incrementals, prune destroys exactly what the policy allows; a clock gone back keeps the newest', async () => {
    const name = (i: number) => `day-${String(i).padStart(3, '0')}`;
    for (let i = 0; i < DAYS; i++) {
      await zfs('snapshot', `${SRC}/d@${name(i)}`);
      await receiveAt(T0 + i * DAY, i === 0 ? [`${SRC}/d@${name(i)}`] : ['-i', `@${name(i - 1)}`, `${SRC}/d@${name(i)}`]);
    }
    // Replication streams with properties, as a stolen controller could send them.
    for (let i = DAYS; i < DAYS + 7; i++) {
      await zfs('snapshot', `${SRC}/d@${name(i)}`);
      await zfs('set', `org.example:note=${i}`, `${SRC}/d@${name(i)}`);
      await receiveAt(T0 + i * DAY, ['-R', '-p', '-i', `@${name(i - 1)}`, `${SRC}/d@${name(i)}`]);
    }
    const receipts = JSON.parse(readFileSync(join(DIR, 'state', RECEIPTS_FILE), 'utf8')) as Record<string, number>;
    const guidOf = new Map(
      (await zfs('get', '-H', '-p', '-r', '-o', 'name,value', 'guid', TARGET))
        .split('\n')
        .map((l) => l.split('\t'))
        .filter(([n]) => n!.includes('@'))
        .map(([n, g]) => [n!.slice(n!.indexOf('@') + 1), g!]),
    );
    // Every snapshot has the box's own receive time, one day apart.
    expect(Object.keys(receipts).length).toBe(DAYS + 7);
    for (let i = 0; i < DAYS + 7; i++) expect(receipts[guidOf.get(name(i))!], name(i)).toBe(T0 + i * DAY);
    // All of them were created today on this machine: creation says nothing about the history.
    const creations = (await zfs('get', '-H', '-p', '-r', '-o', 'value', 'creation', TARGET)).split('\n').map(Number);
    expect(Math.max(...creations) - Math.min(...creations)).toBeLessThan(DAY);

    const now = T0 + (DAYS + 7) * DAY;
    const out: string[] = [];
    const err: string[] = [];
    expect(await serve(agentAt(now, [], out, err), 'prune'), err.join('')).toBe(0);
    const report = JSON.parse(out.join('')) as { destroyed: string[]; kept: { snapshot: string; reasons: string[] }[] };

    // The oracle: the newest snapshot of each of the last 7 days, 4 ISO weeks and 6 months (by receive day), and the newest.
    const all = Array.from({ length: DAYS + 7 }, (_, i) => ({ name: name(i), t: T0 + i * DAY }));
    const expected = expectedKept(all, POLICY);
    const kept = report.kept.map((k) => k.snapshot.slice(k.snapshot.indexOf('@') + 1)).sort();
    expect(kept).toEqual([...expected].sort());
    expect(report.destroyed.length).toBe(DAYS + 7 - expected.size);
    // The monthly buckets reach back about half a year: real history months older than the last week survives.
    // Six calendar months by receive day, counted from the newest receive (day DAYS+6): the oldest kept is the last
    // day of the month five before, which is at least 121 days before day DAYS+6 (four whole months are >= 120 days),
    // so never later than day DAYS-115, whatever today's date is (day-081 on 2026-12-07, day-085 at the worst).
    expect(kept[0]! <= name(DAYS - 115), kept[0]).toBe(true);
    const left = (await zfs('list', '-H', '-o', 'name', '-t', 'snapshot', '-r', TARGET))
      .split('\n')
      .map((n) => n.slice(n.indexOf('@') + 1))
      .sort();
    expect(left).toEqual(kept);

    // The box's clock went back a month: the next receive is stamped "older" than the ones before it, and is still
    // the newest (by createtxg), the next incremental's base: prune keeps it.
    await zfs('snapshot', `${SRC}/d@back`);
    await receiveAt(now - 30 * DAY, ['-i', `@${name(DAYS + 6)}`, `${SRC}/d@back`]);
    const out2: string[] = [];
    expect(await serve(agentAt(now - 30 * DAY, [], out2, err), 'prune'), err.join('')).toBe(0);
    const r2 = JSON.parse(out2.join('')) as { destroyed: string[]; kept: { snapshot: string; reasons: string[] }[] };
    expect(r2.kept.find((k) => k.snapshot === `${TARGET}@back`)?.reasons).toContain('newest');
    expect(r2.destroyed).not.toContain(`${TARGET}@back`);
  }, 600_000);
});
