// Where the config is (no schema here: the start-up path must not load zod).
export const DEFAULT_CONFIG_PATH = '/etc/hozo/config.json';

/** --config, then $HOZO_CONFIG, then /etc/hozo/config.json. */
export function resolveConfigPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag ?? env['HOZO_CONFIG'] ?? DEFAULT_CONFIG_PATH;
}
