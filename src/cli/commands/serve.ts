// `hozo serve`: the web dashboard and JSON API (src/web/server.ts) until SIGINT/SIGTERM.
import type { Command } from 'commander';
import { readBounded } from '../../config/read.js';
import { shownName, shownPath } from '../../config/shown.js';
import { HozoError } from '../../errors.js';
import type { Context } from '../context.js';

/** The default: loopback only, where no token is needed. */
export const DEFAULT_LISTEN = '127.0.0.1:8480';

/** The token in `file` (trimmed); at least 16 characters, one line. */
export function readToken(file: string): string {
  const text = readBounded(file, 'token file', 4096).toString('utf8').trim();
  if (text.length < 16 || /\s/.test(text))
    throw new HozoError('CONFIG_INVALID', `token file ${shownPath(file)}: expected one line of at least 16 characters without spaces`, {
      hint: 'e.g. head -c 32 /dev/urandom | base64 > FILE',
    });
  return text;
}

export function registerServe(program: Command, ctx: Context): void {
  program
    .command('serve')
    .description('serve the web dashboard and the JSON API (/api/…) until stopped; it starts hozo run/wake/shutdown for its buttons')
    .option('--listen <address:port>', `where to listen (default ${DEFAULT_LISTEN}; any other than loopback needs --token-file)`)
    .option('--token-file <file>', 'a file holding the token every request must carry (Authorization: Bearer …, or the login form)')
    .action(async (opts: { listen?: string; tokenFile?: string }) => {
      const { isLoopback, parseListen } = await import('../../web/guard.js');
      const listen = parseListen(opts.listen ?? DEFAULT_LISTEN);
      if (listen === undefined)
        throw new HozoError('USAGE', `--listen: expected an IP address and port like 127.0.0.1:8480 or [::1]:8480, got ${shownName(opts.listen ?? '', 60)}`);
      const token = opts.tokenFile !== undefined ? readToken(opts.tokenFile) : undefined;
      if (token === undefined && !isLoopback(listen.host))
        throw new HozoError('USAGE', `--listen ${listen.host}: an address other than loopback needs --token-file`, {
          hint: 'anyone who can reach the port could start runs and shut boxes down; nothing was started',
        });
      const config = await ctx.loadConfig();
      const log = ctx.logger(config);
      const { startServer } = await import('../../web/server.js');
      let served: Awaited<ReturnType<typeof startServer>>;
      try {
        served = await startServer({
          config,
          configPath: ctx.configPath(),
          host: listen.host,
          port: listen.port,
          ...(token !== undefined ? { token } : {}),
          log,
          self: [process.execPath, process.argv[1]!],
        });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        throw new HozoError(
          'USAGE',
          `cannot listen on ${opts.listen ?? DEFAULT_LISTEN}: ${code === 'EADDRINUSE' ? 'the port is in use' : (code ?? String(e))}`,
        );
      }
      log.info(`serving ${served.url}/ (JSON API under /api/)${token !== undefined ? ', token required' : ''}`);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await served.close();
      log.info('stopped');
    });
}
