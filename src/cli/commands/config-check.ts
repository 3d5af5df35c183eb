import type { Command } from 'commander';
import type { Context } from '../context.js';
import { printJson } from '../context.js';

export function registerConfigCheck(program: Command, ctx: Context): void {
  const config = program.command('config').description('inspect the configuration');
  config
    .command('check')
    .description('validate the config file; exit 0 if valid, 2 with every problem listed if not')
    .option('--json', 'print the normalized config as JSON')
    .action((opts: { json?: boolean }) => {
      const c = ctx.loadConfig();
      if (opts.json) return printJson(ctx, c);
      const hosts = Object.keys(c.hosts);
      ctx.out.write(`${ctx.configPath()}: ok (${c.jobs.length} job(s), ${hosts.length} host(s))\n`);
    });
}
