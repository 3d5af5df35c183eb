import type { Command } from 'commander';
import type { Context } from '../context.js';
import { printJson } from '../context.js';

export function registerConfigCheck(program: Command, ctx: Context): void {
  const config = program.command('config').description('inspect the configuration');
  config
    .command('check')
    .description('validate the config file; exit 0 if valid, 2 with every problem listed if not')
    .option('--json', 'print the normalized config as JSON')
    .action(async (opts: { json?: boolean }) => {
      // Always the full validation: this is the command that says whether the file is valid.
      const c = await ctx.loadConfig({ fresh: true });
      if (opts.json) return printJson(ctx, c);
      const hosts = Object.keys(c.hosts);
      ctx.out.write(`${ctx.configPath()}: ok (${c.jobs.length} job(s), ${hosts.length} host(s))\n`);
    });
}
