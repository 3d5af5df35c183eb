// Boots the OpenZFS labs once for the whole `openzfs` vitest project — one lab (two TCG/KVM VMs, about a minute and a
// half) per lane (tests/openzfs/lanes.ts), booted together — and tears them down after the last file. Files attach to
// their worker's lane's lab with attachVmLab(). Without the image, root or qemu the project is
// skipped loudly with the reason; HOZO_OPENZFS=0 turns it off on purpose (the zfs-fuse suites are the inner loop).
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { LAB_ROOT } from '../../src/lab/pools.js';
import {
  attachVmLab,
  authorizeController,
  cleanupVmLabs,
  createVmLab,
  findImage,
  installRuntime,
  stageRuntime,
  vmLabPrerequisites,
  type Series,
} from '../../src/lab/vm/lab.js';
import { laneLab, openzfsLanes, poolWorkers } from './lanes.js';

declare module 'vitest' {
  export interface ProvidedContext {
    openzfsSkip: string;
    /** Lab id per lane (index 0: lane 1). */
    openzfsLabs: string[];
  }
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const series = (process.env['HOZO_OPENZFS_SERIES'] ?? '2.3') as Series;
  // One lab per file vitest runs at once, at most HOZO_OPENZFS_LANES (scripts/test.sh passes --maxWorkers).
  const lanes = Math.min(openzfsLanes(), poolWorkers(project.vitest.config, availableParallelism()));
  const ids = Array.from({ length: lanes }, (_, i) => laneLab(i + 1).id);
  let skip = '';
  if (process.env['HOZO_OPENZFS'] === '0') skip = 'HOZO_OPENZFS=0';
  else {
    const missing = vmLabPrerequisites();
    if (missing.length > 0) skip = `missing ${missing.join(', ')}`;
    else if ((await findImage(series)) === undefined) skip = `no OpenZFS ${series} lab image (build it: bash scripts/lab-image.sh ${series})`;
  }
  project.provide('openzfsLabs', ids);
  if (skip !== '') {
    console.warn(`\nSKIP: every test of the openzfs project (real OpenZFS ${series} in VMs): ${skip}\n`);
    project.provide('openzfsSkip', skip);
    return undefined;
  }
  if (process.env['HOZO_OPENZFS_REUSE'] === '1' && existsSync(join(LAB_ROOT, 'vm', 'oz', 'lab.json'))) {
    // Development: attach to labs left up by `node dist/src/lab/vm/cli.js up [--id oz2]` (and leave them up).
    const absent = ids.filter((id) => !existsSync(join(LAB_ROOT, 'vm', id, 'lab.json')));
    if (absent.length > 0)
      throw new Error(
        `HOZO_OPENZFS_REUSE=1 with ${ids.length} lanes needs the labs ${ids.join(', ')}; not up: ${absent.join(', ')} (or set HOZO_OPENZFS_LANES=1)`,
      );
    console.warn(`openzfs lab: reusing the running lab(s) ${ids.join(', ')} (HOZO_OPENZFS_REUSE=1); installing the current build in them`);
    await stageRuntime();
    for (const id of ids) {
      const lab = attachVmLab(id);
      await lab.ensureBoxUp();
      await Promise.all([installRuntime(lab.ctl), installRuntime(lab.box)]);
      await authorizeController(lab.ctl, lab.box);
    }
    project.provide('openzfsSkip', '');
    return undefined;
  }
  await stageRuntime();
  const labs = await Promise.all(ids.map((id, i) => createVmLab({ id, series, subnet: laneLab(i + 1).subnet, staged: true })));
  for (const lab of labs)
    console.warn(
      `openzfs lab ${lab.id}: ${lab.zfsVersion}, accel ${lab.accel}, up in ${(lab.timings['total']! / 1000).toFixed(1)} s (${JSON.stringify(lab.timings)})`,
    );
  project.provide('openzfsSkip', '');
  return async () => {
    for (const lab of labs) {
      await lab.destroy();
      await cleanupVmLabs(lab.id);
    }
  };
}
