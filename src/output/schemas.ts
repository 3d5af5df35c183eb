// The JSON hozo prints (--json) and posts (webhook), as schemas: every document carries `version` (1), and these
// are the contract. `schemas/*.schema.json` in the repository are generated from them (node
// dist/src/output/write-schemas.js schemas; a test keeps the committed files equal to the generated ones), and the
// tests validate real outputs of the built CLI against them.
import { z } from 'zod';

export const OUTPUT_VERSION = 1;
const version = z.literal(OUTPUT_VERSION).describe('The output format version; a change that breaks readers bumps it.');

const errorInfo = z.object({ code: z.string(), message: z.string(), hint: z.string().optional() }).strict();
const problem = z.object({ path: z.string(), message: z.string() }).strict();
const iso = z.string().describe('ISO 8601 time');

const datasetReport = z
  .object({
    source: z.string(),
    target: z.string(),
    result: z.enum(['sent', 'up-to-date', 'planned', 'conflict', 'failed', 'deferred']).describe("deferred: left for the next wake by the job's window."),
    base: z.string().optional().describe('The common snapshot or bookmark the increment started from.'),
    newest: z.string().optional().describe('The newest snapshot now on the target.'),
    snapshotsSent: z.array(z.string()),
    bytes: z.number().optional(),
    seconds: z.number(),
    verified: z.boolean(),
    held: z.string().optional().describe("The snapshot held on the source with the job's tag after this run."),
    newestCreation: z.number().optional(),
    estimatedBytes: z.number().int().nonnegative().optional().describe("The stream's estimated size (windowed runs), when known."),
    error: errorInfo.optional(),
    plan: z.string().describe('The plan in words, e.g. "-I @a → @c".'),
  })
  .strict();

const poolReport = z
  .object({
    name: z.string(),
    health: z.string(),
    capacityRatio: z.number().optional(),
    errors: z.number().optional(),
    lastScrubEnd: z.number().optional(),
    scrubOverdue: z.boolean().optional(),
    scrub: z
      .object({ state: z.enum(['running', 'paused']), progress: z.number().min(0).max(1).optional() })
      .strict()
      .optional()
      .describe("A scrub in progress: running, or paused across the box's power-off (agent scrub policy)."),
  })
  .strict();

export const hostReport = z
  .object({
    name: z.string(),
    awakeBefore: z.boolean(),
    woke: z.boolean(),
    wakeSeconds: z.number().optional(),
    awakeSeconds: z.number().optional(),
    shutdown: z.enum(['done', 'deferred', 'skipped', 'refused', 'failed', 'not-configured']),
    shutdownDetail: z.string().optional(),
  })
  .strict();

/** `hozo run --json`, `hozo plan --json`, `hozo restore --json` and the webhook body. */
export const jobReport = z
  .object({
    version,
    job: z.string(),
    host: z.string(),
    dryRun: z.boolean().describe('true for plan and run --dry-run: nothing was changed.'),
    mode: z.enum(['run', 'plan', 'dry-run']).describe('Which command made the report: hozo run, hozo plan, hozo run --dry-run.'),
    startedAt: iso,
    finishedAt: iso,
    seconds: z.number(),
    result: z.enum(['ok', 'failed', 'unreachable', 'error']),
    datasets: z.array(datasetReport),
    targetPools: z.array(poolReport),
    hosts: z.array(hostReport),
    bytes: z.number(),
    warnings: z.array(z.string()),
    bandwidthLimit: z
      .object({ bytesPerSecond: z.number().int().positive(), from: z.enum(['host', 'job']) })
      .strict()
      .optional()
      .describe("The rate cap every transfer ran under (the smaller of the host's and the job's bandwidthLimit), when one is set."),
    window: z
      .object({
        maxAwake: z.number().describe('Seconds.'),
        deadline: iso.describe('When the window closed for transfers (maxAwake after the start, less a margin for what follows).'),
        backlogBytes: z.number().int().nonnegative().describe('Estimated bytes of the deferred datasets (those of known size).'),
        backlogDatasets: z.number().int().nonnegative(),
        unknownSize: z.number().int().nonnegative().describe('Deferred datasets whose size could not be estimated.'),
      })
      .strict()
      .optional()
      .describe('The wake window (job window.maxAwake), when set.'),
    ownSnapshot: z
      .object({
        name: z.string().describe('The short snapshot name, <prefix>_YYYYMMDDTHHMMSSZ.'),
        datasets: z.number().int().nonnegative().describe('Datasets that got it (plan, dry-run: would get it).'),
        atomic: z.boolean().describe('Taken in one zfs snapshot command (one point in time across the job).'),
        taken: z.boolean().describe('false for plan and dry-run, which take nothing.'),
        pruned: z.number().int().nonnegative().describe("The job's older own snapshots destroyed beyond keep."),
      })
      .strict()
      .optional()
      .describe("The job's own snapshot (snapshot.create)."),
    error: errorInfo.optional(),
  })
  .strict();

/** `hozo jobs list --json`. */
export const jobsList = z
  .object({
    version,
    jobs: z.array(
      z
        .object({
          name: z.string(),
          host: z.string(),
          schedule: z.string(),
          snapshots: z.enum(['all', 'latest']),
          datasets: z.array(
            z.object({ source: z.string(), target: z.string(), recursive: z.boolean(), exclude: z.array(z.string()), allowPlaintext: z.boolean() }).strict(),
          ),
        })
        .strict(),
    ),
  })
  .strict();

/** `hozo status --json`. */
export const status = z
  .object({
    version,
    jobs: z.array(
      z
        .object({
          job: z.string(),
          host: z.string(),
          state: z.object({}).passthrough().nullable().describe("The job's state file (lastRun, lastSuccess, datasets), or null before its first run."),
        })
        .strict(),
    ),
    hosts: z.array(
      z
        .object({
          name: z.string(),
          state: z.enum(['awake', 'asleep', 'unreachable']),
          awake: z.boolean(),
          woken: z.boolean(),
          pools: z
            .array(
              z
                .object({
                  name: z.string(),
                  health: z.string(),
                  capacity: z.string().optional(),
                  scrub: z.string().optional().describe('"scrub paused at 12%", "scrub running 40%", "last scrub 3 days ago" (hozo-agent boxes).'),
                })
                .strict(),
            )
            .optional(),
          agent: z.unknown().optional().describe("hozo-agent's own status answer, when the box runs it."),
          error: z.string().optional(),
        })
        .strict(),
    ),
  })
  .strict();

/** `hozo config check --json`. */
export const configCheck = z
  .object({
    version,
    valid: z.boolean(),
    problems: z.array(problem),
    warnings: z.array(z.string()),
    hint: z.string().optional(),
    config: z.object({}).passthrough().optional().describe('The config with defaults filled in (when valid).'),
  })
  .strict();

/** `hozo wake --json` / `hozo shutdown --json`. */
export const hostAction = hostReport.extend({ version, detail: z.string().optional().describe('wake without --wait: how it was woken.') }).strict();

/** Any command's error with --json. */
export const errorOutput = z.object({ version, error: errorInfo.extend({ problems: z.array(problem).optional() }).strict() }).strict();

/** `hozo verify --json`. */
export const verifyReport = z
  .object({
    version,
    kind: z.literal('verify'),
    job: z.string(),
    host: z.string(),
    startedAt: iso,
    finishedAt: iso,
    seconds: z.number(),
    result: z.enum(['ok', 'failed', 'unreachable', 'error']),
    restoreTest: z.boolean(),
    seed: z.number().int().nonnegative().describe('The seed of the dataset and file samples (--seed repeats them).'),
    datasets: z.array(
      z
        .object({
          source: z.string(),
          target: z.string(),
          result: z.enum(['ok', 'failed']),
          snapshot: z.string().optional().describe('The newest snapshot on both sides (by guid).'),
          guid: z.string().optional(),
          behind: z.number().int().nonnegative().optional().describe('Source snapshots newer than it (not backed up yet).'),
          protectedBy: z.array(z.enum(['hold', 'bookmark'])),
          restoreTest: z
            .object({
              result: z.enum(['ok', 'mismatch', 'failed', 'skipped']),
              reason: z.string().optional(),
              entries: z.number().int().nonnegative().optional(),
              filesChecked: z.number().int().nonnegative().optional(),
              bytesChecked: z.number().int().nonnegative().optional(),
              mismatches: z.array(z.object({ path: z.string(), problem: z.string() }).strict()).optional(),
              truncated: z.boolean().optional(),
              seconds: z.number().optional(),
            })
            .strict()
            .optional(),
          error: errorInfo.optional(),
        })
        .strict(),
    ),
    targetPools: z.array(poolReport),
    hosts: z.array(hostReport),
    warnings: z.array(z.string()),
    error: errorInfo.optional(),
  })
  .strict();

/** `hozo serve`: GET /api/jobs/{job}/runs — the job's kept runs, newest first (at most 100). */
export const jobRuns = z.object({ version, job: z.string(), runs: z.array(jobReport).describe('Newest first.') }).strict();

/** `hozo serve`: POST /api/jobs/{job}/run — the run was started (its report comes in the job's runs). */
export const runStarted = z
  .object({ version, job: z.string(), started: z.literal(true), pid: z.number().int().nonnegative().describe('The `hozo run` process.') })
  .strict();

/** `hozo serve`: GET /api/csrf — the token a state-changing request without the bearer token carries (X-Hozo-CSRF). */
export const csrf = z.object({ version, csrf: z.string() }).strict();

export const OUTPUT_SCHEMAS = {
  'job-report': jobReport,
  'verify-report': verifyReport,
  'jobs-list': jobsList,
  status,
  'config-check': configCheck,
  'host-action': hostAction,
  error: errorOutput,
  'job-runs': jobRuns,
  'run-started': runStarted,
  csrf,
} as const;

/** The JSON Schema of each output (draft 2020-12). */
export function jsonSchemas(): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(OUTPUT_SCHEMAS).map(([name, s]) => [
      name,
      { title: `hozo ${name} output (schemas/${name}.schema.json)`, ...z.toJSONSchema(s, { io: 'output', unrepresentable: 'any' }) },
    ]),
  );
}
