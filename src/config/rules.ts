// Values both the schema (config/schema.ts, which loads zod) and the run path (which must not: a warm `hozo run`
// reads the validated config from the cache) need: defaults, formats and names derived from config. No imports: a leaf.

/** hosts.<name>.scrubWarnAfter's default (the schema's), and the limit for a job whose target is this machine. */
export const DEFAULT_SCRUB_WARN_AFTER = 35 * 86_400;

/** A bandwidth limit as pv -L takes it: "20M" (K, M or G, 1024-based). */
export const BANDWIDTH = /^[1-9][0-9]{0,6}[KMG]$/;

/** The prefix of a job's own snapshots. */
export const snapshotPrefixOf = (job: { name: string; snapshot?: { prefix?: string | undefined } | undefined }): string =>
  job.snapshot?.prefix ?? `hozo_${job.name}`;
