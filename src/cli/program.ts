import { Command } from 'commander';
import { HozoError } from '../errors.js';
import { VERSION } from '../version.js';
import { registerConfigCheck } from './commands/config-check.js';
import { registerJobs } from './commands/jobs.js';
import { registerPlan, registerRun } from './commands/run.js';
import { registerRestore } from './commands/restore.js';
import { registerBox } from './commands/box.js';
import { registerStatus } from './commands/status.js';
import { registerDemo } from './commands/demo.js';
import { registerServe } from './commands/serve.js';
import { registerVerify } from './commands/verify.js';
import { createContext, type Context } from './context.js';

export const EXIT_CODES_HELP = `
Exit codes:
  0  success
  1  some dataset failed (transfer, verification, conflict); status: the last run of a job failed
  2  usage or configuration error (nothing was run)
  3  host unreachable (ssh connection, authentication or host key)
  4  the job is already running (nothing was run)
  130/143  interrupted by SIGINT/SIGTERM (recorded as failed; lease released, the box put back to sleep)

Config: --config FILE, else $HOZO_CONFIG, else /etc/hozo/config.json (YAML or JSON).`;

/** One example per command, shown at the end of its --help. */
export const EXAMPLES: Record<string, string> = {
  config: 'hozo config check',
  'config check': 'hozo config check --config /etc/hozo/config.yaml',
  jobs: 'hozo jobs list',
  'jobs list': 'hozo jobs list --json',
  plan: 'hozo plan nightly --wake',
  run: 'hozo run nightly',
  restore: 'hozo restore nightly --dataset tank/home --to tank/home-restored',
  verify: 'hozo verify nightly --restore-test --files 500',
  wake: 'hozo wake offsite --wait',
  shutdown: 'hozo shutdown offsite',
  status: 'hozo status offsite --json',
  serve: 'hozo serve --listen 192.168.1.10:8480 --token-file /run/secrets/hozo-web-token',
  demo: 'hozo demo --serve',
};

export function buildProgram(out?: NodeJS.WritableStream): { program: Command; ctx: Context } {
  const program = new Command('hozo');
  const ctx = createContext(program, out);
  program
    .description('Hōzō — off-site ZFS backups to a sleeping box')
    .version(`hozo ${VERSION}`, '-V, --version', 'print "hozo" and its version')
    .option('-c, --config <file>', 'config file (YAML or JSON)')
    .option('-v, --verbose', 'debug output')
    .option('-q, --quiet', 'only warnings and errors on stderr')
    .option('--json', 'machine-readable output on stdout, errors included (also accepted after the command)')
    .addHelpText('after', EXIT_CODES_HELP)
    .showHelpAfterError('(add --help for usage)')
    .configureHelp({ showGlobalOptions: true })
    .exitOverride()
    .hook('preAction', () => {
      const g = program.opts<{ verbose?: boolean; quiet?: boolean }>();
      if (g.verbose === true && g.quiet === true)
        throw new HozoError('USAGE', '-v (--verbose) and -q (--quiet) contradict each other', { hint: 'pass one of them' });
    });
  registerConfigCheck(program, ctx);
  registerJobs(program, ctx);
  registerPlan(program, ctx);
  registerRun(program, ctx);
  registerRestore(program, ctx);
  registerVerify(program, ctx);
  registerBox(program, ctx);
  registerStatus(program, ctx);
  registerServe(program, ctx);
  registerDemo(program, ctx);
  // Every command's --help ends with the exit codes and an example.
  const all = (c: Command): Command[] => [c, ...c.commands.flatMap(all)];
  for (const c of all(program).slice(1)) {
    const path = [c.name()];
    for (let p = c.parent; p !== null && p !== program; p = p.parent) path.unshift(p.name());
    const example = EXAMPLES[path.join(' ')];
    c.addHelpText('after', `${EXIT_CODES_HELP.replace(/\n\nConfig:[\s\S]*$/, '')}${example !== undefined ? `\n\nExample:\n  ${example}` : ''}`);
  }
  return { program, ctx };
}
