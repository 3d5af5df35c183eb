// What may cross to a job's target: an untrusted host (every remote box unless its config says trusted) never sees
// plaintext. An encrypted source dataset goes raw (`zfs send -w`: the blocks as stored, no key needed or sent); an
// unencrypted one is refused, and nothing of it is sent, unless its dataset entry says allowPlaintext. After the
// receive, verifyEncrypted checks what the box holds: still encrypted the same way, its key not loaded there.
import { HozoError } from '../errors.js';
import { hostNamed } from '../config/lookup.js';
import type { Config, JobConfig } from '../config/schema.js';
import type { DatasetPlan } from '../planner/types.js';
import type { Dataset, Inventory } from '../zfs/types.js';

export type Crossing = { readonly raw: boolean; readonly refused?: undefined } | { readonly refused: HozoError; readonly raw?: undefined };

export const isEncrypted = (ds: Dataset | undefined): boolean => ds?.encryption !== undefined && ds.encryption !== 'off';

/** The job's dataset entry a (possibly recursive) plan came from: the longest source that covers it. */
function entryOf(job: JobConfig, source: string): JobConfig['datasets'][number] | undefined {
  return job.datasets.filter((d) => source === d.source || source.startsWith(d.source + '/')).sort((a, b) => b.source.length - a.source.length)[0];
}

export function untrusted(config: Config, job: JobConfig): boolean {
  return job.host !== 'local' && hostNamed(config, job.host)?.trust !== 'trusted';
}

/** How plan `p` may travel to the job's target, given the source listing. */
export function crossingOf(config: Config, job: JobConfig, p: DatasetPlan, srcInv: Inventory): Crossing {
  if (!untrusted(config, job)) return { raw: false };
  const src = srcInv.get(p.source);
  if (isEncrypted(src)) return { raw: true };
  if (entryOf(job, p.source)?.allowPlaintext === true) return { raw: false };
  const what = src?.encryption === undefined ? 'cannot be encrypted here (this ZFS has no native encryption)' : 'is not encrypted';
  return {
    refused: new HozoError(
      'PLAINTEXT_REFUSED',
      `${p.source} ${what} and host "${job.host}" is untrusted: nothing of it was sent, so the box never sees it in the clear`,
      {
        hint:
          `encrypt it (e.g. zfs create -o encryption=on -o keyformat=passphrase POOL/secure, then move the data there or send it in: zfs send ${p.source}@SNAP | zfs receive POOL/secure/NAME), ` +
          `mark the host trusted (hosts.${job.host}.trust: trusted) or allow plaintext for this dataset (allowPlaintext: true in its datasets entry)`,
      },
    ),
  };
}

/** Where the target copy's encryption root must be: itself (a raw receive of one dataset makes it its own root) or the
 *  target of the source's root. */
function expectedRoots(sourceRoot: string | undefined, source: string, target: string): string[] {
  const roots = [target];
  if (sourceRoot !== undefined && (source === sourceRoot || source.startsWith(sourceRoot + '/'))) {
    const up = source.slice(sourceRoot.length).split('/').filter(Boolean).length;
    roots.push(
      target
        .split('/')
        .slice(0, target.split('/').length - up)
        .join('/'),
    );
  }
  return roots;
}

/** undefined when the target copy of a raw send is as it must be; else what is wrong. */
export function verifyEncrypted(source: Dataset | undefined, target: Dataset | undefined): HozoError | undefined {
  if (source === undefined || target === undefined) return undefined;
  const problems: string[] = [];
  if (target.encryption !== source.encryption)
    problems.push(`encryption is ${target.encryption ?? 'unknown'}, the source's is ${source.encryption ?? 'unknown'}`);
  if (target.keyStatus !== 'unavailable')
    problems.push(`its key is ${target.keyStatus ?? 'of unknown status'} on the box (must be unavailable: the box must not be able to read it)`);
  if (target.encryptionRoot === undefined || !expectedRoots(source.encryptionRoot, source.name, target.name).includes(target.encryptionRoot)) {
    problems.push(
      `its encryption root is ${target.encryptionRoot ?? 'unknown'} (expected ${expectedRoots(source.encryptionRoot, source.name, target.name).join(' or ')})`,
    );
  }
  if (problems.length === 0) return undefined;
  return new HozoError('ENCRYPTION_MISMATCH', `${target.name}: the raw backup is not what was sent: ${problems.join('; ')}`, {
    hint: 'someone changed it on the box (or it was received without -w); check it there: zfs get encryption,encryptionroot,keystatus ' + target.name,
  });
}
