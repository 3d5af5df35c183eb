import type { Command } from 'commander';
import type { Context } from '../context.js';
import { printJson } from '../context.js';
import type { Config } from '../../config/schema.js';

/** Every job that sends (or may send) plaintext off-site: to a trusted remote host, or datasets with allowPlaintext. */
export function plaintextWarnings(c: Config): string[] {
  const out: string[] = [];
  for (const job of c.jobs) {
    if (job.host === 'local') continue;
    if (c.hosts[job.host]?.trust === 'trusted') {
      out.push(`job "${job.name}" sends plaintext off-site: host "${job.host}" is trusted (unencrypted datasets go in the clear, encrypted ones are sent decrypted)`);
      continue;
    }
    for (const d of job.datasets) {
      if (d.allowPlaintext) out.push(`job "${job.name}" sends ${d.source} in the clear to untrusted host "${job.host}" when it is not encrypted (allowPlaintext)`);
    }
  }
  return out;
}

export function registerConfigCheck(program: Command, ctx: Context): void {
  const config = program.command('config').description('inspect the configuration');
  config
    .command('check')
    .description('validate the config file; exit 0 if valid, 2 with every problem listed if not')
    .option('--json', 'print the normalized config as JSON')
    .action(async (opts: { json?: boolean }) => {
      // Always the full validation: this is the command that says whether the file is valid.
      const c = await ctx.loadConfig({ fresh: true });
      if (opts.json) return printJson(ctx, { ...c, warnings: plaintextWarnings(c) });
      const hosts = Object.keys(c.hosts);
      ctx.out.write(`${ctx.configPath()}: ok (${c.jobs.length} job(s), ${hosts.length} host(s))\n`);
      for (const w of plaintextWarnings(c)) ctx.out.write(`warning: ${w}\n`);
    });
}
