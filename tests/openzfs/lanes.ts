// The OpenZFS suite runs its files in lanes: one lab (two VMs, its own namespace, bridge and subnet) per lane, one
// file at a time per lane. The VMs are emulated and mostly wait on each other (ssh round trips, a boot, a shaped
// link), so one lane left about a third of this 2-core machine idle and the 2.3 suite took 70–77 min (CI and a local
// clean clone, 2026-12-07); two lanes share the cores (2,301 s in the next clean-clone CI).
// HOZO_OPENZFS_LANES=1 gives the one-lab suite (and what HOZO_OPENZFS_REUSE=1 attaches to, unless more labs are up).
// vitest takes its worker count from the root config or the command line only (not a project's poolOptions), so
// scripts/test.sh and `npm run test:openzfs` pass --maxWorkers; the global setup boots as many labs as there are
// workers, at most HOZO_OPENZFS_LANES.
import type { TestSpecification } from 'vitest/node';
import { BaseSequencer } from 'vitest/node';

export const MAX_LANES = 4;

export function openzfsLanes(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env['HOZO_OPENZFS_LANES'];
  if (raw === undefined || raw === '') return 2;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > MAX_LANES) throw new Error(`HOZO_OPENZFS_LANES must be an integer 1..${MAX_LANES}, not "${raw}"`);
  return n;
}

/** How many test files vitest runs at once (its forks pool: root poolOptions.forks.maxForks, else maxWorkers, else
 *  one less than the CPUs), as the global setup sees the resolved config. */
export function poolWorkers(config: { maxWorkers?: number; poolOptions?: { forks?: { maxForks?: number } } }, cpus: number): number {
  return config.poolOptions?.forks?.maxForks ?? config.maxWorkers ?? Math.max(cpus - 1, 1);
}

/** Lab id and subnet (10.78.<n>.0/24) of lane n (1-based): oz on 10.78.1, oz2 on 10.78.2, … */
export const laneLab = (lane: number): { id: string; subnet: number } => ({ id: lane === 1 ? 'oz' : `oz${lane}`, subnet: lane });

/** The lane of this test worker: vitest numbers its concurrent workers 1..maxWorkers (VITEST_POOL_ID, a free slot
 *  of its pool), so two files running at once never share a lab. Anything else is an error, not a shared lab. */
export function workerLane(lanes: number, env: NodeJS.ProcessEnv = process.env): number {
  const raw = env['VITEST_POOL_ID'] ?? '1';
  const id = Number(raw);
  if (!Number.isInteger(id) || id < 1 || id > lanes)
    throw new Error(`vitest worker ${raw} has no lane of its own (${lanes} lab(s)): run the openzfs project with --maxWorkers=${lanes}`);
  return id;
}

// Seconds each file took in one lane (CI of 2026-12-07, .ci/run on a clean clone): longest first, so the lanes end
// together rather than the longest file starting last. A file not listed counts as 300 s.
const SECONDS: Record<string, number> = {
  'lifecycle.test.ts': 670,
  'resume.test.ts': 587,
  'encryption.test.ts': 539,
  'delegation.test.ts': 511,
  'operator.test.ts': 358,
  'replication.test.ts': 309,
  'retention.test.ts': 307,
  'controllers.test.ts': 289,
  'fleet.test.ts': 234,
  'scrub.test.ts': 220,
  'controller-side.test.ts': 178,
  'received-props.test.ts': 158,
  'systemd-units.test.ts': 190,
  'progress.test.ts': 80,
  'container.test.ts': 360,
};

export const estimatedSeconds = (file: string): number => SECONDS[file.slice(file.lastIndexOf('/') + 1)] ?? 300;

/** vitest's sequencer (a root option, so for every project): the openzfs files longest first, the others as vitest
 *  orders them. */
export default class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const openzfs = files.filter((f) => f.project.name === 'openzfs');
    const rest = await super.sort(files.filter((f) => f.project.name !== 'openzfs'));
    return [...rest, ...openzfs.sort((a, b) => estimatedSeconds(b.moduleId) - estimatedSeconds(a.moduleId) || a.moduleId.localeCompare(b.moduleId))];
  }
}
