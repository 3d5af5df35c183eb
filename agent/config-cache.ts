// The agent's validated config, remembered between starts (the core is src/config/cache.ts): every SSH call starts
// hozo-agent, and on a small or emulated box loading zod to validate the same file again is about half of that start
// (~1.5 s of ~3 s under the OpenZFS lab's emulation). Same bytes and same build: the stored result, no zod; anything
// else: full validation. `check-config` always validates in full.
//
// The cache lives in the agent's own stateDirectory (0600, written only where the validated config says the state
// lives). Whoever can write there is already the agent user (its leases, markers and log live there), so it grants
// nothing the agent user does not already have; a controller's key cannot write files on the box at all.
import { loadCached, type LoadResult } from '../src/config/cache.js';
import { shownPath } from '../src/config/shown.js';
import { HozoError } from '../src/errors.js';
import { directoryInUseProblem, logFileProblem } from '../src/util/safe-fs.js';
import type { AgentConfig } from './config.js';

export { DEFAULT_AGENT_CONFIG_PATH } from './rules.js';
/** The default of agentConfigSchema's stateDirectory (kept equal by a test). */
export const DEFAULT_AGENT_STATE_DIRECTORY = '/var/lib/hozo-agent';

const SPEC = {
  format: 'hozo-agent-config-cache/1',
  schemaModules: [
    './config.js',
    '../src/config/fields.js',
    '../src/config/issues.js',
    '../src/config/shown.js',
    '../src/config/read.js',
    '../src/util/safe-fs.js',
    '../src/zfs/names.js',
  ].map((m) => new URL(m, import.meta.url)),
  defaultStateDirectory: DEFAULT_AGENT_STATE_DIRECTORY,
  parseRaw: (text: string) => JSON.parse(text) as unknown,
  validate: async (text: string, path: string) => (await import('./config.js')).parseAgentConfigText(text, path),
  checkInUse: (config: AgentConfig, path: string) => checkAgentPathsInUse(config, path),
  load: async (path: string) => (await import('./config.js')).loadAgentConfig(path),
};

/** What the file system says about the paths the agent writes (a symlink into /proc, a FIFO as logFile), without
 *  creating anything: the schema reads no files. Throws CONFIG_INVALID naming each field. */
export function checkAgentPathsInUse(config: AgentConfig, path: string): void {
  const problems = [
    ['stateDirectory', directoryInUseProblem(config.stateDirectory)],
    ['leaseDirectory', directoryInUseProblem(config.leaseDirectory)],
    ['logFile', logFileProblem(config.logFile)],
  ].filter((p): p is [string, string] => p[1] !== undefined);
  if (problems.length === 0) return;
  throw new HozoError('CONFIG_INVALID', `${shownPath(path)} is invalid:\n${problems.map(([k, m]) => `  ${k}: ${m}`).join('\n')}`, {
    hint: 'fix the listed fields (hozo-agent check-config --config FILE); the agent refuses every request until then',
    problems: problems.map(([p, message]) => ({ path: p, message })),
  });
}

export function loadAgentConfigCached(path: string): Promise<LoadResult<AgentConfig>> {
  return loadCached(path, SPEC);
}
