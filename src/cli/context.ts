// What every command action gets: global options resolved once, a logger, and a place to put its exit code
// (only main sets process.exitCode).
import type { Command } from 'commander';
import { loadConfigCached } from '../config/controller-cache.js';
import { checkPathsInUse } from '../config/paths-in-use.js';
import { resolveConfigPath } from '../config/paths.js';
import type { Config } from '../config/schema.js';
import { createLogger, type Logger } from '../util/log.js';

export interface GlobalOptions {
  config?: string;
  verbose?: boolean;
  quiet?: boolean;
  json?: boolean;
}

export interface Context {
  exitCode: number;
  readonly out: NodeJS.WritableStream;
  logger(config?: Config): Logger;
  /** The validated config; `fresh` validates even when the file and schema are unchanged (config check). */
  loadConfig(opts?: { fresh?: boolean }): Promise<Config>;
  configPath(): string;
  /** --json, given to the command or globally (before the command name). */
  json(opts?: { json?: boolean }): boolean;
}

export function createContext(program: Command, out: NodeJS.WritableStream = process.stdout): Context {
  const globals = () => program.opts<GlobalOptions>();
  let loaded: Promise<Config> | undefined;
  const ctx: Context = {
    exitCode: 0,
    out,
    configPath: () => resolveConfigPath(globals().config),
    json: (opts) => opts?.json === true || globals().json === true,
    loadConfig(opts = {}) {
      const path = ctx.configPath();
      if (opts.fresh === true) return import('../config/load.js').then((m) => checkPathsInUse(m.loadConfig(path), path));
      loaded ??= loadConfigCached(path).then((r) => checkPathsInUse(r.config, path));
      return loaded;
    },
    logger(config?: Config) {
      const g = globals();
      return createLogger({
        ...(g.verbose !== undefined ? { verbose: g.verbose } : {}),
        ...(g.quiet !== undefined ? { quiet: g.quiet } : {}),
        ...(config?.logFile !== undefined ? { logFile: config.logFile } : {}),
      });
    },
  };
  return ctx;
}

export function printJson(ctx: Context, value: unknown): void {
  ctx.out.write(JSON.stringify(value, null, 2) + '\n');
}
