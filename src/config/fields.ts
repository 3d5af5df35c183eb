// Field schemas shared by the controller's config, its notify list and the agent's config.
import { z } from 'zod';
import { datasetNameProblem } from '../zfs/names.js';
import { absolutePathProblem, writablePathProblem } from '../util/safe-fs.js';
import { escapeUnsafe, shownName } from './shown.js';

export const datasetName = z.string().superRefine((v, ctx) => {
  const problem = datasetNameProblem(v);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `not a valid ZFS dataset name: ${shownName(v)} ${problem}` });
});

/** A string refined by a `problem` function: one message, the function's. */
export const checked = (problem: (v: string) => string | undefined) =>
  z.string().superRefine((v, ctx) => {
    const p = problem(v);
    if (p !== undefined) ctx.addIssue({ code: 'custom', message: p });
  });

export const absolutePath = checked(absolutePathProblem);

/** A directory or file hozo writes: normalized, no "..", not in the kernel's virtual file systems (a recursive mkdir
 *  there never returns). Symlinks are resolved where it is used (src/util/safe-fs.ts). */
export const writablePath = checked(writablePathProblem);

/** A command as a list of arguments: none empty, none with a NUL byte (no process can be given one). */
export const argvSchema = z
  .array(checked((a) => (a === '' ? 'an empty argument' : a.includes('\0') ? 'contains a NUL byte (no command can be given one)' : undefined)))
  .min(1, 'expected a command as a list of arguments');

/** Why `u` cannot be an http(s) URL in a config, or undefined. `new URL` would strip spaces, tabs and newlines. */
export function httpUrlProblem(u: string): string | undefined {
  if (u.length > 2048) return `expected a URL of at most 2048 characters (this one has ${u.length})`;
  if (u.trim() !== u) return 'a URL with leading or trailing spaces is refused';
  if (escapeUnsafe(u) !== u || /\s/.test(u)) return 'a URL with spaces or control characters is refused (percent-encode them)';
  let url: URL;
  try {
    url = new URL(u);
  } catch {
    return 'expected an http:// or https:// URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'expected an http:// or https:// URL';
  return undefined;
}

export { MAC } from './mac.js';

/** Largest mbuffer memory, in MiB. */
export const MAX_BUFFER_MIB = 16 * 1024;

/** mbuffer's `-m`: a whole number of MiB or GiB, e.g. "128M" (the NixOS modules use the same pattern). */
export const bufferSize = z
  .string()
  .regex(/^(?:[1-9][0-9]{0,4}M|[1-9][0-9]?G)$/, 'expected a size like "32M", "128M" or "1G" (M or G, no spaces)')
  .refine((v) => !/^[0-9]+[MG]$/.test(v) || Number(v.slice(0, -1)) * (v.endsWith('G') ? 1024 : 1) <= MAX_BUFFER_MIB, {
    message: `at most ${MAX_BUFFER_MIB / 1024}G (mbuffer allocates all of it, on each end)`,
  });

export { hostAddressProblem, ipv4Problem, macProblem, wakeAddressProblem } from './addresses.js';
import { BANDWIDTH } from './rules.js';

/** A rate cap in bytes per second, as pv -L takes it: a whole number and K, M or G (1024-based), e.g. "20M". */
export const bandwidthLimit = z
  .string()
  .regex(BANDWIDTH, 'expected a rate in bytes per second like "500K", "20M" or "1G" (K, M or G, 1024-based, no spaces)')
  .describe(
    'Cap on the stream rate in bytes per second, e.g. "20M" (K, M, G: 1024-based, as pv -L takes it); the smaller of the host\'s and the job\'s applies. Needs pv on the controller.',
  );

/** A name that becomes part of a systemd unit, a file and a metric label. */
export const NAME_MAX = 64;
