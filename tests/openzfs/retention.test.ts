// A history a stolen controller cannot erase, on real OpenZFS through the real forced command: both VMs' clocks are
// stepped with `date -s` — the controller's before each snapshot (so `creation`, which the stream carries, is the
// controller's clock) and the box's before each receive (so the agent records its own receive time,
// agent/stamp.ts). 32 receives over 200 simulated days (every 8th day, then daily for the last week; the
// zfs-fuse test, tests/integration/retention.test.ts, receives all 200 but cannot forge `creation`), then 7
// incrementals whose `creation` lies 1–7 months in the future (the controller's clock set forward: the attack the
// review found wiping a creation-bucketed history), then the prune the key may request: exactly what the box's policy
// allows by receive time is destroyed, the real history months back survives. Then the box's clock goes back a month
// for one more receive (older `creation` too): that newest snapshot (by createtxg) is kept and the next incremental
// on top of it arrives. Both clocks are put back afterwards.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VmLab } from '../../src/lab/vm/lab.js';
import { AGENT_ROOT, AGENT_SSH, SRC, labOrSkip, reset, skipReason, writeAgentConfig } from './helpers.js';
import { expectedKept } from '../helpers/retention-oracle.js';

const lab: VmLab | undefined = labOrSkip();
if (lab === undefined) console.warn(`SKIP: tests/openzfs/retention.test.ts: ${skipReason()}`);

const DAY = 86_400;
const DAYS = 200;
const POLICY = { hourly: 0, daily: 7, weekly: 4, monthly: 6, yearly: 0 };
const DS = `${SRC}/rt`;
const TARGET = `${AGENT_ROOT}/rt`;
// Day 0 at noon UTC, so that the prune (day DAYS+7) is a few days before the real now.
const T0 = Math.floor(Date.now() / 1000 / DAY) * DAY - (DAYS + 10) * DAY + DAY / 2;
const name = (i: number) => `day-${String(i).padStart(3, '0')}`;
/** The days with a snapshot and a receive: every 8th, then every day of the last week (each receive costs 3–5 s on
 *  these emulated CPUs; 200 of them, as on zfs-fuse, would add ~15 minutes to CI). */
const RECEIVE_DAYS = Array.from({ length: DAYS }, (_, i) => i).filter((i) => i % 8 === 0 || i >= DAYS - 7);

describe.skipIf(lab === undefined)('box retention by receive time on real OpenZFS (forced command, both clocks stepped)', () => {
  const L = lab!;
  // One connection each for the whole test (a new SSH handshake costs ~2.6 s on these emulated CPUs): the
  // controller's key (forced command: hozo-agent serve) and root on the box (its clock).
  const mux = (path: string) => `-o ControlMaster=auto -o ControlPath=${path} -o ControlPersist=300`;
  const AGENT = `${AGENT_SSH} ${mux('/tmp/rt-agent.sock')} hozo@${L?.box.ip}`;
  const ROOT = `${AGENT_SSH} ${mux('/tmp/rt-root.sock')} root@${L?.box.ip}`;
  const restoreClocks = async () => {
    const now = Math.floor(Date.now() / 1000);
    await Promise.all([L.ctl.sh(`date -s @${now} >/dev/null`), L.box.sh(`date -s @${now} >/dev/null`)]);
  };

  /** One shell line on ctl for day `t`: the controller's clock at `created`, a snapshot, the box's clock at `t`,
   *  the stream through the forced command (`prev`: incremental base). */
  const step = (snap: string, created: number, t: number, prev: string | undefined) =>
    `date -s @${created} >/dev/null && zfs snapshot ${DS}@${snap} && ${ROOT} 'date -s @${t} >/dev/null' && ` +
    `zfs send ${prev === undefined ? '' : `-i @${prev} `}${DS}@${snap} | ${AGENT} 'receive -u ${TARGET}' || { echo "receive of @${snap} failed" >&2; exit 1; }`;

  /** The agent's prune through the forced command at box time `t`; its JSON report. */
  async function pruneAt(t: number): Promise<{ destroyed: string[]; kept: { snapshot: string; reasons: string[] }[] }> {
    const out = await L.ctl.check(`${ROOT} 'date -s @${t} >/dev/null' && ${AGENT} prune`, { timeoutMs: 600_000 });
    return JSON.parse(out) as { destroyed: string[]; kept: { snapshot: string; reasons: string[] }[] };
  }

  beforeAll(async () => {
    await reset(L);
    await writeAgentConfig(L, { retention: POLICY });
    await L.box.check('rm -f /var/lib/hozo-agent/received.json');
    await L.ctl.check(`zfs create ${DS} && echo data > /tank/src/rt/f`);
  }, 600_000);
  afterAll(async () => {
    await restoreClocks().catch(() => undefined);
    await L.ctl.sh(`for s in /tmp/rt-agent.sock /tmp/rt-root.sock; do ssh -o ControlPath=$s -O exit x 2>/dev/null; done; true`).catch(() => undefined);
    await reset(L).catch(() => undefined);
  });

  it(`${RECEIVE_DAYS.length} receives over ${DAYS} days, 7 future-dated incrementals, prune destroys exactly what the policy allows; a clock gone back keeps the newest`, async () => {
    try {
      // The real history: created and received on its day.
      const lines = RECEIVE_DAYS.map((d, k) => step(name(d), T0 + d * DAY - 3600, T0 + d * DAY, k === 0 ? undefined : name(RECEIVE_DAYS[k - 1]!)));
      // The forged ones: received on days DAYS…DAYS+6, created k+1 months after their receive by a clock set forward.
      const forged = Array.from({ length: 7 }, (_, k) => DAYS + k);
      const last = RECEIVE_DAYS[RECEIVE_DAYS.length - 1]!;
      for (const [k, d] of forged.entries()) lines.push(step(name(d), T0 + d * DAY + (k + 1) * 30 * DAY, T0 + d * DAY, name(k === 0 ? last : forged[k - 1]!)));
      await L.ctl.check(`set -o pipefail; ${lines.join('\n')}`, { timeoutMs: 1_500_000 });

      const now = T0 + (DAYS + 7) * DAY;
      // The attack is real: the forged snapshots' creation is months ahead of the box's clock.
      const creation = new Map(
        (await L.box.check(`zfs get -H -p -o name,value creation -t snapshot -r ${TARGET}`))
          .split('\n')
          .map((l) => l.split('\t'))
          .map(([n, v]) => [n!.slice(n!.indexOf('@') + 1), Number(v)]),
      );
      for (const [k, d] of forged.entries()) expect(creation.get(name(d))! - now, name(d)).toBeGreaterThan(k * 30 * DAY);
      expect(creation.get(name(0))).toBeLessThan(now - 190 * DAY);

      const report = await pruneAt(now);
      // The oracle: the newest snapshot of each of the last 7 days, 4 ISO weeks and 6 months by receive day, and the newest.
      const all = [...RECEIVE_DAYS, ...forged].map((d) => ({ name: name(d), t: T0 + d * DAY }));
      const expected = expectedKept(all, POLICY);
      const kept = report.kept.map((k) => k.snapshot.slice(k.snapshot.indexOf('@') + 1)).sort();
      expect(kept).toEqual([...expected].sort());
      expect(report.destroyed.length).toBe(all.length - expected.size);
      for (const d of forged) expect(kept, `${name(d)}: received on one of the last 7 days`).toContain(name(d));
      // The monthly buckets reach back about half a year: real history months older than the forged week survives.
      // Six calendar months by receive day: the oldest kept is the newest receive of the month five before the
      // prune's, whose last day is at least four whole months (>= 120 days) before day DAYS+6 — so never later than
      // day DAYS-120 whatever today's date is (day-080 when the last receive falls on the 1st of a month).
      expect(kept[0]! <= name(DAYS - 120), kept[0]).toBe(true);
      const left = (await L.box.check(`zfs list -H -o name -t snapshot -r ${TARGET}`))
        .split('\n')
        .map((n) => n.slice(n.indexOf('@') + 1))
        .sort();
      expect(left).toEqual(kept);

      // The box's clock goes back a month (and the controller's: an older creation too): the next receive is stamped
      // "older" than the ones before it and is still the newest by createtxg, the next incremental's base.
      const back = now - 30 * DAY;
      await L.ctl.check(`set -o pipefail; ${step('back', back - 3600, back, name(forged[6]!))}`, { timeoutMs: 300_000 });
      const r2 = await pruneAt(back);
      expect(r2.kept.find((k) => k.snapshot === `${TARGET}@back`)?.reasons).toContain('newest');
      expect(r2.destroyed).not.toContain(`${TARGET}@back`);
      await L.ctl.check(`set -o pipefail; ${step('after', back + 60, back + 120, 'back')}`, { timeoutMs: 300_000 });
      expect(await L.box.check(`zfs list -H -o name -s createtxg -t snapshot -r ${TARGET} | tail -n 2`)).toBe(`${TARGET}@back\n${TARGET}@after`);
    } finally {
      await restoreClocks();
    }
  }, 1_800_000);
});
