// The wake window's admission and order (src/job/window.ts); the runs are tests/e2e/window.test.ts.
import { describe, expect, it } from 'vitest';
import { openWindow, windowMargin, windowOrder } from '../../src/job/window.js';
import type { DatasetPlan } from '../../src/planner/types.js';
import type { Inventory } from '../../src/zfs/types.js';

const snap = (name: string, creation: number) => ({ name, guid: name, createtxg: creation, creation });
const inv = (entries: Record<string, number[]>): Inventory =>
  new Map(
    Object.entries(entries).map(([name, cs]) => [name, { name, type: 'filesystem', guid: name, snapshots: cs.map((c, i) => snap(`${name}-${i}`, c)) }]),
  ) as unknown as Inventory;
const send = (source: string, target: string): DatasetPlan =>
  ({ source, target, action: 'send', base: undefined, steps: [], rollbackTo: undefined, createParent: undefined }) as unknown as DatasetPlan;

describe('openWindow', () => {
  it('closes maxAwake after the start less a margin, and admits only what fits the time left at the rate', () => {
    let now = 1_000_000;
    const w = openWindow(100, now, 1 << 20, () => now);
    try {
      expect(w.deadline).toBe(now + (100 - windowMargin(100)) * 1000);
      expect(windowMargin(100)).toBe(10);
      expect(w.admits(50 << 20, { first: false, resumable: false })).toBe(true); // 50 s of 90
      expect(w.admits(95 << 20, { first: false, resumable: false })).toBe(false);
      // First in line and resumable: started whatever its size (it continues next time when cut).
      expect(w.admits(95 << 20, { first: true, resumable: true })).toBe(true);
      expect(w.admits(undefined, { first: false, resumable: false })).toBe(true);
      now += 85_000;
      expect(w.admits(10 << 20, { first: false, resumable: false })).toBe(false); // 10 s of 5
      expect(w.admits(4 << 20, { first: false, resumable: false })).toBe(true);
      now += 6_000;
      expect(w.admits(undefined, { first: true, resumable: true })).toBe(false); // closed
    } finally {
      w.dispose();
    }
  });

  it("keeps at least four of the box's requests (at the ready check's pace) free after the transfers, up to half the window", () => {
    expect(windowMargin(30)).toBe(5); // 10 % is 3 s: the 5 s floor
    expect(windowMargin(30, 0.5)).toBe(5); // 4 × 0.5 + 1 = 3 s: still the floor
    expect(windowMargin(30, 2)).toBe(9); // a slow box (the OpenZFS lab's emulated one): 4 × 2 + 1
    expect(windowMargin(30, 10)).toBe(15); // never more than half the window
    expect(windowMargin(3600, 2)).toBe(60); // the 60 s cap of a long window is already more
    expect(windowMargin(3600, 20)).toBe(81);
    const now = 1_000_000;
    const w = openWindow(30, now, undefined, () => now, 2);
    try {
      expect(w.deadline).toBe(now + 21_000);
    } finally {
      w.dispose();
    }
  });

  it('measures the rate from what was sent (at least 1 MiB), else assumes the bandwidth limit', () => {
    const w = openWindow(60, Date.now(), undefined);
    try {
      expect(w.rate()).toBeUndefined();
      w.measured(100, 1);
      expect(w.rate()).toBeUndefined();
      w.measured(4 << 20, 1);
      expect(w.rate()).toBeCloseTo(((4 << 20) + 100) / 2);
    } finally {
      w.dispose();
    }
  });

  it('aborts its signal at the deadline with WINDOW_CLOSED', async () => {
    const w = openWindow(10, Date.now() - 4_900, undefined); // deadline = start + 5 s: 100 ms from now
    await new Promise((r) => setTimeout(r, 300));
    expect(w.signal.aborted).toBe(true);
    expect((w.signal.reason as { code: string }).code).toBe('WINDOW_CLOSED');
    w.dispose();
  });
});

describe('windowOrder', () => {
  it('most lagging first, then smallest, unknown sizes last among equals', () => {
    const plans = [send('p/a', 'b/a'), send('p/b', 'b/b'), send('p/c', 'b/c'), send('p/d', 'b/d')];
    const src = inv({ 'p/a': [100], 'p/b': [100], 'p/c': [100], 'p/d': [100] });
    const dst = inv({ 'b/a': [90], 'b/b': [50], 'b/c': [90], 'b/d': [90] });
    const est = new Map<number, number | undefined>([
      [0, 500],
      [1, 900],
      [2, 100],
      [3, undefined],
    ]);
    expect(windowOrder([0, 1, 2, 3], plans, src, dst, est).order).toEqual([1, 2, 0, 3]);
  });

  it('never puts a dataset before the parent whose full send creates its target', () => {
    // b/x does not exist on the box: its plan must run before b/x/y's, however small b/x/y is.
    const plans = [send('p/x', 'b/x'), send('p/x/y', 'b/x/y')];
    const src = inv({ 'p/x': [100], 'p/x/y': [100] });
    const dst = inv({});
    const r = windowOrder(
      [0, 1],
      plans,
      src,
      dst,
      new Map([
        [0, 900],
        [1, 1],
      ]),
    );
    expect(r.order).toEqual([0, 1]);
    expect(r.waitsFor(1)).toBe(0);
    // Once the parent exists there, the child is free to go first.
    const r2 = windowOrder(
      [0, 1],
      plans,
      src,
      inv({ 'b/x': [10], 'b/x/y': [10] }),
      new Map([
        [0, 900],
        [1, 1],
      ]),
    );
    expect(r2.order).toEqual([1, 0]);
    expect(r2.waitsFor(1)).toBeUndefined();
  });
});
