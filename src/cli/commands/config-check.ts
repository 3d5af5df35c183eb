import type { Command } from 'commander';
import type { Context } from '../context.js';
import { printJson } from '../context.js';
import { hostNamed } from '../../config/lookup.js';
import { exitCodeFor, HozoError } from '../../errors.js';
import type { Config } from '../../config/schema.js';
import { shownPath } from '../../config/shown.js';
import { stateDirectoryProblem } from '../../state/dir.js';
import { fileProblems, logDirectoryProblem, notifyFiles, runFiles } from '../../config/files.js';

/** Every job that sends (or may send) plaintext off-site: to a trusted remote host, or datasets with allowPlaintext. */
export function plaintextWarnings(c: Config): string[] {
  const out: string[] = [];
  for (const job of c.jobs) {
    if (job.host === 'local') continue;
    if (hostNamed(c, job.host)?.trust === 'trusted') {
      out.push(
        `job "${job.name}" sends plaintext off-site: host "${job.host}" is trusted (unencrypted datasets go in the clear, encrypted ones are sent decrypted)`,
      );
      continue;
    }
    for (const d of job.datasets) {
      if (d.allowPlaintext)
        out.push(`job "${job.name}" sends ${d.source} in the clear to untrusted host "${job.host}" when it is not encrypted (allowPlaintext)`);
    }
  }
  return out;
}

/** What config check warns about (exit 0): nothing configured, plaintext off-site. */
export function configWarnings(c: Config): string[] {
  const none = c.jobs.length === 0 ? ['nothing is configured: the config has no jobs (hozo run needs one; see the README for an example)'] : [];
  const state = stateDirectoryProblem(c.stateDirectory, { access: false });
  const stateWarning = state === undefined ? [] : [`stateDirectory ${shownPath(c.stateDirectory)}: ${state}; hozo run would refuse it (exit 2)`];
  // Files as the runs would meet them, from here: a secret under /run that is missing here (a build's sandbox) is not
  // counted; the runs check again before they touch anything.
  const here = { access: false, missingUnderRunOk: true };
  const files = [
    ...fileProblems(runFiles(c, undefined, { metrics: true }), here).map((p) => `${p}; a run that needs it would refuse to start (exit 2)`),
    ...fileProblems(notifyFiles(c), here).map((p) => `${p}; notifications through it would fail`),
  ];
  const log = c.logFile !== undefined ? logDirectoryProblem(c.logFile) : undefined;
  const logWarning = log === undefined ? [] : [`logFile ${shownPath(c.logFile!)}: ${log}; its lines would be lost`];
  return [...none, ...stateWarning, ...files, ...logWarning, ...plaintextWarnings(c)];
}

export function registerConfigCheck(program: Command, ctx: Context): void {
  const config = program.command('config').description('inspect the configuration');
  config
    .command('check')
    .description('validate the config file; exit 0 if valid, 2 with every problem listed if not')
    .option('--json', 'print the normalized config as JSON')
    .action(async (opts: { json?: boolean }) => {
      // Always the full validation: this is the command that says whether the file is valid.
      if (ctx.json(opts)) {
        try {
          const c = await ctx.loadConfig({ fresh: true });
          return printJson(ctx, { version: 1, valid: true, problems: [], warnings: configWarnings(c), config: c });
        } catch (e) {
          if (!(e instanceof HozoError)) throw e;
          // Problems found in the file (or that it cannot be read): the same answer shape, exit 2.
          printJson(ctx, {
            version: 1,
            valid: false,
            problems: e.problems ?? [{ path: '(file)', message: e.message }],
            warnings: [],
            ...(e.hint ? { hint: e.hint } : {}),
          });
          ctx.exitCode = exitCodeFor(e);
          return;
        }
      }
      const c = await ctx.loadConfig({ fresh: true });
      const hosts = Object.keys(c.hosts);
      ctx.out.write(`${shownPath(ctx.configPath())}: ok (${c.jobs.length} job(s), ${hosts.length} host(s))\n`);
      for (const w of configWarnings(c)) ctx.out.write(`warning: ${w}\n`);
    });
}
