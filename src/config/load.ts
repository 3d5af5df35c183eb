import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { HozoError } from '../errors.js';
import { formatIssues } from './issues.js';
import { configSchema, type Config, type HostConfig, type JobConfig } from './schema.js';

export const DEFAULT_CONFIG_PATH = '/etc/hozo/config.json';

/** --config, then $HOZO_CONFIG, then /etc/hozo/config.json. */
export function resolveConfigPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag ?? env['HOZO_CONFIG'] ?? DEFAULT_CONFIG_PATH;
}

/** Validates already-parsed data; throws CONFIG_INVALID listing every problem. */
export function validateConfig(data: unknown, source = 'config'): Config {
  const result = configSchema.safeParse(data);
  if (!result.success) {
    const lines = formatIssues(result.error.issues);
    throw new HozoError('CONFIG_INVALID', `${source} is invalid:\n  ${lines.join('\n  ')}`, {
      hint: 'fix the listed fields; nothing was run',
    });
  }
  return result.data;
}

export function parseConfigText(text: string, source: string): Config {
  let data: unknown;
  try {
    // yaml is loaded only for YAML files: the NixOS module renders JSON, and start-up time matters.
    data = source.endsWith('.json') ? JSON.parse(text) : (createRequire(import.meta.url)('yaml') as typeof import('yaml')).parse(text);
  } catch (e) {
    throw new HozoError('CONFIG_INVALID', `${source}: cannot parse: ${(e as Error).message}`, { cause: e });
  }
  return validateConfig(data ?? {}, source);
}

export function loadConfig(path: string): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new HozoError('CONFIG_NOT_FOUND', `cannot read config ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      hint: 'pass --config FILE or set HOZO_CONFIG',
      cause: e,
    });
  }
  return parseConfigText(text, path);
}

export function findJob(config: Config, name: string): JobConfig {
  const job = config.jobs.find((j) => j.name === name);
  if (job === undefined) {
    const names = config.jobs.map((j) => j.name);
    throw new HozoError('UNKNOWN_JOB', `unknown job "${name}"`, {
      hint: names.length ? `configured jobs: ${names.join(', ')}` : 'the config has no jobs',
    });
  }
  return job;
}

export function findHost(config: Config, name: string): HostConfig {
  const host = config.hosts[name];
  if (host === undefined) {
    throw new HozoError('UNKNOWN_HOST', `unknown host "${name}"`, {
      hint: `configured hosts: ${Object.keys(config.hosts).join(', ') || '(none)'}`,
    });
  }
  return host;
}
