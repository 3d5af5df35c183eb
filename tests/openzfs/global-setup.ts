// Boots the OpenZFS lab once for the whole `openzfs` vitest project (two TCG/KVM VMs take about a minute) and tears
// it down after the last file. Files attach to it with attachVmLab(). Without the image, root or qemu the project is
// skipped loudly with the reason; HOZO_OPENZFS=0 turns it off on purpose (the zfs-fuse suites are the inner loop).
import { existsSync } from 'node:fs';
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

declare module 'vitest' {
  export interface ProvidedContext {
    openzfsSkip: string;
    openzfsLab: string;
  }
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const series = (process.env['HOZO_OPENZFS_SERIES'] ?? '2.3') as Series;
  let skip = '';
  if (process.env['HOZO_OPENZFS'] === '0') skip = 'HOZO_OPENZFS=0';
  else {
    const missing = vmLabPrerequisites();
    if (missing.length > 0) skip = `missing ${missing.join(', ')}`;
    else if ((await findImage(series)) === undefined) skip = `no OpenZFS ${series} lab image (build it: bash scripts/lab-image.sh ${series})`;
  }
  project.provide('openzfsLab', 'oz');
  if (skip !== '') {
    console.warn(`\nSKIP: every test of the openzfs project (real OpenZFS ${series} in VMs): ${skip}\n`);
    project.provide('openzfsSkip', skip);
    return undefined;
  }
  if (process.env['HOZO_OPENZFS_REUSE'] === '1' && existsSync(join(LAB_ROOT, 'vm', 'oz', 'lab.json'))) {
    // Development: attach to a lab left up by `node dist/src/lab/vm/cli.js up` (and leave it up).
    console.warn('openzfs lab: reusing the running lab "oz" (HOZO_OPENZFS_REUSE=1); installing the current build in it');
    const lab = attachVmLab('oz');
    await stageRuntime();
    await lab.ensureBoxUp();
    await Promise.all([installRuntime(lab.ctl), installRuntime(lab.box)]);
    await authorizeController(lab.ctl, lab.box);
    project.provide('openzfsSkip', '');
    return undefined;
  }
  const lab = await createVmLab({ id: 'oz', series });
  console.warn(`openzfs lab: ${lab.zfsVersion}, accel ${lab.accel}, up in ${(lab.timings['total']! / 1000).toFixed(1)} s (${JSON.stringify(lab.timings)})`);
  project.provide('openzfsSkip', '');
  return async () => {
    await lab.destroy();
    await cleanupVmLabs('oz');
  };
}
