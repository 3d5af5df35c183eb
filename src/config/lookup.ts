// Lookups on a validated Config. No schema here: the commands' start-up path (a cached config, the job's host) must
// not load zod.
import { HozoError } from '../errors.js';
import { shownName, shownPath } from './shown.js';
import type { Config, HostConfig, JobConfig } from './schema.js';

/** Configured names for a hint: the first 20, then how many more. */
function few(names: readonly string[], max = 20): string {
  const list = names
    .slice(0, max)
    .map((n) => shownPath(n, 64))
    .join(', ');
  return names.length > max ? `${list} and ${names.length - max} more` : list;
}

export function findJob(config: Config, name: string): JobConfig {
  const job = config.jobs.find((j) => j.name === name);
  if (job === undefined) {
    const names = config.jobs.map((j) => j.name);
    throw new HozoError('UNKNOWN_JOB', `unknown job ${shownName(name)}`, {
      hint: names.length ? `configured jobs: ${few(names)}` : 'the config has no jobs',
    });
  }
  return job;
}

/** The host of that name: own keys only (a name like toString or constructor is not inherited from Object). */
export function hostNamed(config: Config, name: string): HostConfig | undefined {
  return Object.hasOwn(config.hosts, name) ? config.hosts[name] : undefined;
}

export function findHost(config: Config, name: string): HostConfig {
  const host = hostNamed(config, name);
  if (host === undefined) {
    throw new HozoError('UNKNOWN_HOST', `unknown host ${shownName(name)}`, {
      hint: `configured hosts: ${few(Object.keys(config.hosts)) || '(none)'}`,
    });
  }
  return host;
}

/** The box is driven through hozo-agent (explicitly, or because hozo-agent powers it off). */
export function usesAgent(h: HostConfig): boolean {
  return h.agent ?? h.shutdown === 'agent';
}
