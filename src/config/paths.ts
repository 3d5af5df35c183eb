// Where the config is (no schema here: the start-up path must not load zod).
import { HozoError } from '../errors.js';

export const DEFAULT_CONFIG_PATH = '/etc/hozo/config.json';

/** --config, then $HOZO_CONFIG, then /etc/hozo/config.json. An empty one is a usage error (never "no such file ''"). */
export function resolveConfigPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (flag === '') throw new HozoError('USAGE', '--config: an empty path', { hint: `name the config file, e.g. --config ${DEFAULT_CONFIG_PATH}` });
  if (flag !== undefined) return flag;
  const fromEnv = env['HOZO_CONFIG'];
  if (fromEnv === '')
    throw new HozoError('USAGE', 'HOZO_CONFIG: an empty path', {
      hint: `unset it (the default is ${DEFAULT_CONFIG_PATH}), set it to the config file, or pass --config FILE`,
    });
  return fromEnv ?? DEFAULT_CONFIG_PATH;
}
