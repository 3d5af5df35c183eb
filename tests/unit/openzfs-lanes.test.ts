// The OpenZFS suite's lanes (tests/openzfs/lanes.ts): how many, which lab a worker uses, and the file order.
import { describe, expect, it } from 'vitest';
import type { TestSpecification } from 'vitest/node';
import LongestFirst, { estimatedSeconds, laneLab, openzfsLanes, poolWorkers, workerLane } from '../openzfs/lanes.js';

describe('OpenZFS suite lanes', () => {
  it('two by default, HOZO_OPENZFS_LANES 1..4 otherwise, anything else a clear error', () => {
    expect(openzfsLanes({})).toBe(2);
    expect(openzfsLanes({ HOZO_OPENZFS_LANES: '1' })).toBe(1);
    expect(openzfsLanes({ HOZO_OPENZFS_LANES: '4' })).toBe(4);
    for (const bad of ['0', '5', '1.5', 'two', '-1'])
      expect(() => openzfsLanes({ HOZO_OPENZFS_LANES: bad }), bad).toThrow(/HOZO_OPENZFS_LANES must be an integer 1\.\.4/);
  });

  it('each lane its own lab and subnet; concurrent workers map to distinct lanes', () => {
    expect(laneLab(1)).toEqual({ id: 'oz', subnet: 1 });
    expect(laneLab(2)).toEqual({ id: 'oz2', subnet: 2 });
    expect([1, 2].map((w) => workerLane(2, { VITEST_POOL_ID: String(w) }))).toEqual([1, 2]);
    expect(workerLane(2, {})).toBe(1);
    // A worker beyond the labs would share one: refused.
    for (const bad of ['3', '0', 'undefined']) expect(() => workerLane(2, { VITEST_POOL_ID: bad }), bad).toThrow(/has no lane of its own/);
  });

  it("counts vitest's workers as its forks pool does", () => {
    expect(poolWorkers({ maxWorkers: 2 }, 2)).toBe(2);
    expect(poolWorkers({ maxWorkers: 2, poolOptions: { forks: { maxForks: 3 } } }, 2)).toBe(3);
    expect(poolWorkers({}, 2)).toBe(1);
    expect(poolWorkers({}, 8)).toBe(7);
  });

  it('orders the openzfs files longest first and leaves the other projects to vitest', async () => {
    const spec = (project: string, moduleId: string) => ({ project: { name: project }, moduleId }) as unknown as TestSpecification;
    const files = [
      spec('openzfs', '/r/tests/openzfs/progress.test.ts'),
      spec('openzfs', '/r/tests/openzfs/lifecycle.test.ts'),
      spec('openzfs', '/r/tests/openzfs/new-one.test.ts'),
      spec('openzfs', '/r/tests/openzfs/resume.test.ts'),
    ];
    const sorted = await new LongestFirst({
      config: { root: '/r' },
      cache: { getFileTestResults: () => undefined, getFileStats: () => undefined },
    } as never).sort(files);
    expect(sorted.map((s) => s.moduleId.split('/').pop())).toEqual(['lifecycle.test.ts', 'resume.test.ts', 'new-one.test.ts', 'progress.test.ts']);
    expect(estimatedSeconds('/x/new-one.test.ts')).toBe(300);
  });
});
