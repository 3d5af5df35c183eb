// HOZO_TRACE=1: one stderr line per phase of a run, with the milliseconds since this process started (node's own
// start-up included). For finding where a run's fixed cost goes (docs/bench.md); off, it costs one env lookup.
import { performance } from 'node:perf_hooks';

const on = process.env.HOZO_TRACE === '1';

export function trace(label: string): void {
  if (on) process.stderr.write(`trace ${performance.now().toFixed(0)}ms ${label}\n`);
}
