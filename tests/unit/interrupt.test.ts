import { describe, expect, it } from 'vitest';
import { onInterrupt, unlessInterrupted } from '../../src/job/interrupt.js';
import { silentLogger } from '../../src/util/log.js';

describe('interruption (SIGINT/SIGTERM during a run)', () => {
  it('the first signal aborts the run and sets 128 + its number as the exit code', async () => {
    for (const [sig, code] of [
      ['SIGINT', 130],
      ['SIGTERM', 143],
    ] as const) {
      const i = onInterrupt(silentLogger, 60_000);
      try {
        expect(i.exitCode()).toBeUndefined();
        process.emit(sig, sig);
        expect(i.received()).toBe(sig);
        expect(i.exitCode()).toBe(code);
        expect(i.signal.aborted).toBe(true);
        expect(String((i.signal.reason as Error).message)).toBe(`interrupted by ${sig}`);
      } finally {
        i.dispose();
      }
    }
  });
  it('a retry wait ends at once when the run is interrupted', async () => {
    const c = new AbortController();
    const long = new Promise((r) => setTimeout(r, 60_000).unref());
    const t0 = Date.now();
    setTimeout(() => c.abort(new Error('interrupted by SIGTERM')), 50);
    await expect(unlessInterrupted(long, c.signal)).rejects.toThrow(/interrupted/);
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});
