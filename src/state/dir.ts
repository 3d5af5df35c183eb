// The state directory must exist (or be creatable) and be writable before a run takes its lock: otherwise the run
// fails later with a bare EACCES/ENOTDIR and a stack (what a non-root user meets with the default /var/lib/hozo).
import { accessSync, constants, statSync } from 'node:fs';
import { errnoWords } from '../config/read.js';
import { HozoError } from '../errors.js';
import { shownPath } from '../config/shown.js';
import { ensureDirectory } from '../util/safe-fs.js';

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
