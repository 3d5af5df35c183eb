// Manual control of a box: wake it, put it to sleep.
import type { Command } from 'commander';
import { HozoError } from '../../errors.js';
import type { HostReport } from '../../job/report.js';
import { usesAgent } from '../../config/lookup.js';
import type { Context } from '../context.js';
import { findHost } from '../../config/lookup.js';
import { printJson } from '../context.js';
import { ensureRunFiles } from '../../config/files.js';

async function hostOf(ctx: Context, name: string) {
  const config = await ctx.loadConfig();
  const host = findHost(config, name);
  ensureRunFiles(config, name);
  return { config, host };
}

export function registerBox(program: Command, ctx: Context): void {
  program
    .command('wake')
    .description('wake a box (magic packet or its configured method); with --wait, until SSH and its pools are ready')
    .argument('<host>', 'host name from the config')
    .option('--wait', 'wait until ready (up to its readyTimeout); exit 3 if it never is')
    .option('--json', 'machine-readable output')
    .action(async (name: string, opts: { wait?: boolean; json?: boolean }) => {
      const { config, host } = await hostOf(ctx, name);
      const log = ctx.logger(config);
      const [{ wakeHost }, { bringUp }] = await Promise.all([import('../../wake/wake.js'), import('../../job/lifecycle.js')]);
      if (!opts.wait) {
        const w = await wakeHost(config, name, host);
        // `wake: none` (always on) sends nothing: not woken, and whether it was awake is not known without --wait.
        if (ctx.json(opts)) printJson(ctx, { version: 1, name, awakeBefore: false, woke: w.method !== 'none', shutdown: 'skipped', detail: w.detail });
        else ctx.out.write(`${name}: ${w.detail}\n`);
        return;
      }
      const session = await bringUp(config, name, undefined, log, { wake: true, lease: false, sleepIfNotReady: false });
      await session.detach();
      const r = session.report;
      if (ctx.json(opts)) return printJson(ctx, { version: 1, ...r });
      ctx.out.write(r.awakeBefore ? `${name} was already awake\n` : `${name} is ready after ${(r.wakeSeconds ?? 0).toFixed(1)}s\n`);
    });

  program
    .command('shutdown')
    .description('put a box to sleep (agent: refused while receives, scrubs or other leases run)')
    .argument('<host>', 'host name from the config')
    .option('--json', 'machine-readable output')
    .action(async (name: string, opts: { json?: boolean }) => {
      const { config, host } = await hostOf(ctx, name);
      const log = ctx.logger(config);
      const report: HostReport = { name, awakeBefore: true, woke: false, shutdown: 'skipped' };
      const [{ shutdownBox }, { SshRunner }, { boxPortOpen }] = await Promise.all([
        import('../../job/lifecycle.js'),
        import('../../transport/ssh.js'),
        import('../../wake/ready.js'),
      ]);
      if (host.shutdown === 'none') {
        throw new HozoError('USAGE', `host "${name}" has shutdown: none`, { hint: 'set shutdown: agent or ssh for this host' });
      }
      if (!(await boxPortOpen(host, 2000))) {
        report.awakeBefore = false;
        report.shutdownDetail = 'already asleep';
      } else {
        const runner = new SshRunner({ name, host });
        try {
          await runner.connect();
          await shutdownBox(runner, host, usesAgent(host), report, log);
        } finally {
          await runner.close();
        }
      }
      if (ctx.json(opts)) printJson(ctx, { version: 1, ...report });
      else
        ctx.out.write(
          `${name}: ${report.awakeBefore ? report.shutdown : 'already asleep'}${report.shutdownDetail && report.awakeBefore ? ` (${report.shutdownDetail})` : ''}\n`,
        );
      if (report.shutdown === 'failed' || report.shutdown === 'refused') ctx.exitCode = 1;
    });
}
