// Bandwidth limits (hosts.<name>.bandwidthLimit, jobs[].bandwidthLimit): a rate in bytes per second as pv -L takes
// it ("20M": K, M, G are 1024-based). The local pv stage of every transfer enforces it (src/pipeline/transfer.ts), so
// it holds whichever way the stream goes (backup or restore) and whatever runs on the box. No zod here: the run path
// reads the validated config from the cache without loading it.

import type { Config, JobConfig } from '../config/schema.js';
import { hostNamed } from '../config/lookup.js';
import { formatBytes } from '../util/log.js';
import { BANDWIDTH } from '../config/rules.js';

const UNIT: Record<string, number> = { K: 1024, M: 1024 ** 2, G: 1024 ** 3 };

/** Bytes per second of a validated limit ("20M" → 20971520). */
export function bandwidthBytes(limit: string): number {
  if (!BANDWIDTH.test(limit)) throw new Error(`not a bandwidth limit: ${JSON.stringify(limit)}`);
  return Number(limit.slice(0, -1)) * UNIT[limit.slice(-1)]!;
}

export interface EffectiveLimit {
  /** For pv -L. */
  readonly limit: string;
  readonly bytesPerSecond: number;
  /** Which setting it came from (the smaller one when both are set). */
  readonly from: 'host' | 'job';
}

/** The limit a job's transfers run under: the smaller of its host's and its own; undefined when neither is set. */
export function effectiveLimit(host: string | undefined, job: string | undefined): EffectiveLimit | undefined {
  const h = host === undefined ? undefined : { limit: host, bytesPerSecond: bandwidthBytes(host), from: 'host' as const };
  const j = job === undefined ? undefined : { limit: job, bytesPerSecond: bandwidthBytes(job), from: 'job' as const };
  if (h === undefined) return j;
  if (j === undefined) return h;
  return j.bytesPerSecond <= h.bytesPerSecond ? j : h;
}

/** The limit of `job`'s transfers (its host's and its own bandwidthLimit). */
export function jobBandwidth(config: Config, job: JobConfig): EffectiveLimit | undefined {
  return effectiveLimit(hostNamed(config, job.host)?.bandwidthLimit, job.bandwidthLimit);
}

/** "20.0 MiB/s (the job's bandwidthLimit)", for the run's log and the rendered report (plan). */
export const describeLimit = (l: Pick<EffectiveLimit, 'bytesPerSecond' | 'from'>): string =>
  `${formatBytes(l.bytesPerSecond)}/s (the ${l.from}'s bandwidthLimit)`;
