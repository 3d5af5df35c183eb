// What the file system says about the paths a validated config names, without creating anything: the schema reads no
// files (its result is cached), so a symlink into /proc or a FIFO as logFile is found here, before any command runs.
import { HozoError } from '../errors.js';
import { directoryInUseProblem, logFileProblem } from '../util/safe-fs.js';
import type { Config } from './schema.js';
import { shownPath } from './shown.js';

/** The config, or CONFIG_INVALID naming each path field that cannot be used. */
export function checkPathsInUse(c: Config, source: string): Config {
  const problems = [
    ['stateDirectory', directoryInUseProblem(c.stateDirectory)],
    ...(c.metrics !== undefined ? [['metrics.textfileDirectory', directoryInUseProblem(c.metrics.textfileDirectory)]] : []),
    ...(c.logFile !== undefined ? [['logFile', logFileProblem(c.logFile)]] : []),
  ]
    .filter((p): p is [string, string] => p[1] !== undefined)
    .map(([path, message]) => ({ path, message }));
  if (problems.length === 0) return c;
  throw new HozoError('CONFIG_INVALID', `${shownPath(source)} is invalid:\n  ${problems.map((p) => `${p.path}: ${p.message}`).join('\n  ')}`, {
    hint: 'fix the listed fields; nothing was run',
    problems,
  });
}
