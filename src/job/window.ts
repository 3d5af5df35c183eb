// The wake window (job `window: {maxAwake}`): the box is awake at most maxAwake per run. Before sending, each
// dataset's stream is estimated (send -nP where the source has it, else the snapshot's `referenced` for a full
// stream, else unknown); datasets go most lagging first, then smallest; one starts only if its estimate fits the
// time left at the measured rate (before any measurement: the bandwidth limit, if any). What does not fit is
// deferred (the backlog, reported and in the metrics) and goes first at the next wake, being the most lagging then.
// A transfer still running when the window closes is cut (a resumable receive continues next time).
import { HozoError } from '../errors.js';
import type { DatasetPlan } from '../planner/types.js';
import type { Inventory } from '../zfs/types.js';

/** Kept free for what follows the transfers: stopping a cut pipeline, the verify listing, holds, the release and
 *  shutdown request. 10 % of the window, at least 5 s and at most 60 s — but never less than four requests to the
 *  box at the pace its ready check took (`requestSeconds`, one request) plus a second, up to half the window: a
 *  fixed 5 s was 0.6 s too few in the OpenZFS lab's emulated VMs on a busy machine, and a slow box is slow after the
 *  transfers too. */
export function windowMargin(maxAwake: number, requestSeconds = 0): number {
  const base = Math.min(60, Math.max(5, maxAwake * 0.1));
  return Math.min(Math.max(base, 4 * requestSeconds + 1), Math.max(base, maxAwake / 2));
}

export interface Window {
  /** Unix ms after which nothing starts and a running transfer is cut. */
  readonly deadline: number;
  /** Aborted at the deadline (with WINDOW_CLOSED). */
  readonly signal: AbortSignal;
  /** Records a finished transfer for the rate. */
  measured(bytes: number, seconds: number): void;
  /** Bytes per second so far (or the assumed rate), undefined when nothing is known. */
  rate(): number | undefined;
  /** Whether a stream of `estimate` bytes (undefined: unknown) may start now. `first`: nothing was started yet
   *  and the receive is resumable — it starts whatever its size, and continues next time if cut. */
  admits(estimate: number | undefined, opts: { first: boolean; resumable: boolean }): boolean;
  dispose(): void;
}

export function openWindow(maxAwake: number, startedAt: number, assumedRate: number | undefined, now: () => number = Date.now, requestSeconds = 0): Window {
  const deadline = startedAt + (maxAwake - windowMargin(maxAwake, requestSeconds)) * 1000;
  const controller = new AbortController();
  const closed = () =>
    controller.abort(
      new HozoError('WINDOW_CLOSED', `the wake window (maxAwake ${maxAwake} s) closed during the transfer`, { hint: 'the rest goes first at the next wake' }),
    );
  const timer = setTimeout(closed, Math.max(0, deadline - now()));
  let bytes = 0;
  let seconds = 0;
  return {
    deadline,
    signal: controller.signal,
    measured(b, s) {
      if (b > 0 && s > 0) {
        bytes += b;
        seconds += s;
      }
    },
    rate() {
      // A measurement of at least 1 MiB says more than the assumption; below that, start-up costs dominate.
      if (bytes >= 1 << 20) return bytes / seconds;
      return assumedRate;
    },
    admits(estimate, o) {
      const left = (deadline - now()) / 1000;
      if (left <= 0) return false;
      if (o.first && o.resumable) return true;
      const r = this.rate();
      if (estimate === undefined || r === undefined) return true;
      return estimate / r <= left;
    },
    dispose() {
      clearTimeout(timer);
    },
  };
}

/** Unix seconds of the newest snapshot a dataset has (0 when none: never backed up, the most lagging). */
const newest = (inv: Inventory, ds: string) => Math.max(0, ...(inv.get(ds)?.snapshots ?? []).map((s) => s.creation));

/**
 * The order of the plans `indices` for a windowed run: most lagging first (how far the target's newest snapshot is
 * behind the source's), then the smallest estimate, the unknown last; but never a dataset before the parent whose
 * full send creates its target (planJob put parents first).
 */
export function windowOrder(
  indices: readonly number[],
  plans: readonly DatasetPlan[],
  srcInv: Inventory,
  dstInv: Inventory,
  estimates: ReadonlyMap<number, number | undefined>,
): { order: number[]; waitsFor: (i: number) => number | undefined } {
  const lag = (i: number) => newest(srcInv, plans[i]!.source) - newest(dstInv, plans[i]!.target);
  const size = (i: number) => estimates.get(i) ?? Number.POSITIVE_INFINITY;
  const sorted = [...indices].sort((a, b) => lag(b) - lag(a) || size(a) - size(b) || a - b);
  const byTarget = new Map(indices.map((i) => [plans[i]!.target, i]));
  // A plan waits for the plan (in this run) of the nearest ancestor target that does not exist yet on the box.
  const waitsFor = (i: number): number | undefined => {
    const t = plans[i]!.target;
    for (let p = t.lastIndexOf('/'); p > 0; p = t.lastIndexOf('/', p - 1)) {
      const j = byTarget.get(t.slice(0, p));
      if (j !== undefined && !dstInv.has(t.slice(0, p))) return j;
    }
    return undefined;
  };
  const out: number[] = [];
  const placed = new Set<number>();
  const place = (i: number) => {
    if (placed.has(i)) return;
    const w = waitsFor(i);
    if (w !== undefined) place(w);
    placed.add(i);
    out.push(i);
  };
  for (const i of sorted) place(i);
  return { order: out, waitsFor };
}
