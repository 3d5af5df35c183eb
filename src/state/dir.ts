// The state directory must exist (or be creatable) and be writable before a run takes its lock: otherwise the run
// fails later with a bare EACCES/ENOTDIR and a stack (what a non-root user meets with the default /var/lib/hozo).
import { accessSync, constants, statSync } from 'node:fs';
import { errnoWords } from '../config/read.js';
import { HozoError } from '../errors.js';
import { shownPath } from '../config/shown.js';
import { ensureDirectory, existingAncestor, VirtualPathError } from '../util/safe-fs.js';

export function ensureStateDirectory(dir: string): void {
  const fail = (why: string) =>
    new HozoError('CONFIG_INVALID', `stateDirectory ${shownPath(dir)} cannot be used: ${why}`, {
      hint:
        process.geteuid?.() === 0
          ? 'point stateDirectory at a writable directory'
          : 'hozo runs as root from its systemd unit; as another user, set stateDirectory to a directory you own (e.g. ~/.local/state/hozo)',
    });
  try {
    // Not a recursive mkdir: that never returns in /proc (a symlink there, or //proc/…).
    ensureDirectory(dir, 0o755);
  } catch (e) {
    throw fail((e as NodeJS.ErrnoException).code === 'EEXIST' ? 'it is not a directory' : errnoWords(e));
  }
  try {
    if (!statSync(dir).isDirectory()) throw fail('it is not a directory');
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (e) {
    if (e instanceof HozoError) throw e;
    throw fail(`not writable by this user (${errnoWords(e)})`);
  }
}

/**
 * Why a run could not use `dir` as its state directory, or undefined; nothing is created (config check, and the
 * readers' warnings: status and plan only read the state). A missing directory is fine when its nearest existing
 * parent is a directory (`access`: one this user may create it in). config check leaves access out: it often runs
 * as another user than the runs (a NixOS build's sandbox, an admin checking the service's config).
 */
export function stateDirectoryProblem(dir: string, opts: { readonly access?: boolean } = {}): string | undefined {
  // The walk up to the nearest existing parent is the one ensureDirectory makes (safe-fs.ts), without creating.
  let found: { real: string; exists: boolean };
  try {
    found = existingAncestor(dir);
  } catch (e) {
    return e instanceof VirtualPathError ? e.message : errnoWords(e);
  }
  const what = found.exists ? 'it' : `it does not exist, and ${shownPath(found.real)}`;
  if (!statSync(found.real).isDirectory()) return `${what} is not a directory`;
  if (opts.access === false) return undefined;
  try {
    accessSync(found.real, constants.W_OK | constants.X_OK);
    return undefined;
  } catch {
    return `${what} is not writable by this user (uid ${process.geteuid?.() ?? '?'})`;
  }
}
