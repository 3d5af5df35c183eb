// Field schemas shared by the controller's config, its notify list and the agent's config.
import { z } from 'zod';
import { datasetNameProblem } from '../zfs/names.js';

export const datasetName = z.string().superRefine((v, ctx) => {
  const problem = datasetNameProblem(v);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `not a valid ZFS dataset name: "${v}" ${problem}` });
});

export const absolutePath = z.string().refine((p) => p.startsWith('/'), { message: 'expected an absolute path' });

/** Six hex pairs with one consistent separator, ":" or "-". */
export const MAC = /^([0-9A-Fa-f]{2})([:-])[0-9A-Fa-f]{2}(\2[0-9A-Fa-f]{2}){4}$/;

/** mbuffer's `-m`: a whole number of MiB or GiB, e.g. "128M" (the NixOS modules use the same pattern). */
export const bufferSize = z.string().regex(/^(?:[1-9][0-9]{0,4}M|[1-9][0-9]?G)$/, 'expected a size like "32M", "128M" or "1G" (M or G, no spaces)');
