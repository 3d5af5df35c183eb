// After every config-valid run, whatever happened: notify, remember the run (state file, run history), write the
// metrics file.
// None of these may fail the backup; each failure is logged (and notification failures counted).
import type { Config } from '../config/schema.js';
import { readJobState, recordRun, type JobState } from '../state/state.js';
import { appendRun } from '../state/history.js';
import type { Logger } from '../util/log.js';
import type { JobReport } from './report.js';

export function previousState(config: Config, job: string, log: Logger): JobState | undefined {
  return readJobState(config.stateDirectory, job, (m) => log.warn(m));
}

export async function recordOutcome(config: Config, report: JobReport, previous: JobState | undefined, log: Logger): Promise<void> {
  if (report.dryRun) return;
  // Loaded only when used: prom-client and the notifiers are a good part of hozo's start-up otherwise.
  const failures = config.notify.length === 0 ? 0 : await (await import('../notify/index.js')).notifyAll(config.notify, report, log);
  try {
    recordRun(config.stateDirectory, report, { notifyFailures: failures, warn: (m) => log.warn(m) });
  } catch (e) {
    log.error(`cannot write the state file in ${config.stateDirectory}: ${(e as Error).message}`);
  }
  try {
    appendRun(config.stateDirectory, report.job, report, (m) => log.warn(m));
  } catch (e) {
    log.error(`cannot write the run history in ${config.stateDirectory}: ${(e as Error).message}`);
  }
  if (config.metrics !== undefined) {
    try {
      // Pools whose capacity is unknown get only hozo_pool_healthy (from report.targetPools).
      const pools = report.targetPools.flatMap((p) =>
        p.capacityRatio === undefined
          ? []
          : [
              {
                host: report.host,
                name: p.name,
                healthy: p.health === 'ONLINE',
                capacityRatio: p.capacityRatio,
                errors: p.errors ?? 0,
                ...(p.lastScrubEnd !== undefined ? { lastScrubEnd: p.lastScrubEnd, scrubOverdue: p.scrubOverdue === true } : {}),
                ...(p.scrub?.progress !== undefined ? { scrubProgress: p.scrub.progress } : {}),
              },
            ],
      );
      const { writeJobMetrics } = await import('../metrics/textfile.js');
      const path = await writeJobMetrics(config.metrics.textfileDirectory, report, pools.length > 0 ? { pools } : {}, {
        ...(previous ? { previous } : {}),
        notifyFailures: failures,
      });
      if (path !== undefined) log.debug(`metrics written to ${path}`);
    } catch (e) {
      log.error(`cannot write metrics: ${(e as Error).message}`);
    }
  }
}
