// Field schemas shared by the controller's config, its notify list and the agent's config.
import { z } from 'zod';
import { datasetNameProblem } from '../zfs/names.js';

export const datasetName = z.string().superRefine((v, ctx) => {
  const problem = datasetNameProblem(v);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `not a valid ZFS dataset name: "${v}" ${problem}` });
});

export const absolutePath = z
  .string()
  .refine((p) => p.startsWith('/'), { message: 'expected an absolute path' })
  .refine((p) => p.length <= 4096, { message: 'expected a path of at most 4096 characters' })
  .refine((p) => !/[\u0000-\u001f\u007f]/.test(p), { message: 'a path with control characters (a newline?) is refused' });

/** A directory or file hozo writes: not in the kernel's virtual file systems (a recursive mkdir there never returns). */
export const writablePath = absolutePath.refine((p) => !/^\/(proc|sys|dev)(\/|$)/.test(p), { message: 'must not be under /proc, /sys or /dev' });

export { MAC } from './mac.js';

/** mbuffer's `-m`: a whole number of MiB or GiB, e.g. "128M" (the NixOS modules use the same pattern). */
export const bufferSize = z.string().regex(/^(?:[1-9][0-9]{0,4}M|[1-9][0-9]?G)$/, 'expected a size like "32M", "128M" or "1G" (M or G, no spaces)');

export { hostAddressProblem, ipv4Problem, wakeAddressProblem } from './addresses.js';
import { BANDWIDTH } from '../pipeline/bandwidth.js';

/** A rate cap in bytes per second, as pv -L takes it: a whole number and K, M or G (1024-based), e.g. "20M". */
export const bandwidthLimit = z
  .string()
  .regex(BANDWIDTH, 'expected a rate in bytes per second like "500K", "20M" or "1G" (K, M or G, 1024-based, no spaces)')
  .describe('Cap on the stream rate in bytes per second, e.g. "20M" (K, M, G: 1024-based, as pv -L takes it); the smaller of the host\'s and the job\'s applies. Needs pv on the controller.');

/** A name that becomes part of a systemd unit, a file and a metric label. */
export const NAME_MAX = 64;
