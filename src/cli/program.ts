import { Command } from 'commander';
import { registerConfigCheck } from './commands/config-check.js';
import { registerJobs } from './commands/jobs.js';
import { registerPlan, registerRun } from './commands/run.js';
import { registerRestore } from './commands/restore.js';
import { registerBox } from './commands/box.js';
import { registerStatus } from './commands/status.js';
import { registerDemo } from './commands/demo.js';
import { createContext, type Context } from './context.js';

export const EXIT_CODES_HELP = `
Exit codes:
  0  success
  1  some dataset failed (transfer, verification, conflict) or the job is already running
  2  usage or configuration error (nothing was run)
  3  host unreachable (ssh connection, authentication or host key)

Config: --config FILE, else $HOZO_CONFIG, else /etc/hozo/config.json (YAML or JSON).`;

export function buildProgram(out?: NodeJS.WritableStream): { program: Command; ctx: Context } {
  const program = new Command('hozo');
  const ctx = createContext(program, out);
  program
    .description('Hōzō — off-site ZFS backups to a sleeping box')
    .version('0.1.0')
    .option('-c, --config <file>', 'config file (YAML or JSON)')
    .option('-v, --verbose', 'debug output')
    .option('-q, --quiet', 'only warnings and errors on stderr')
    .addHelpText('after', EXIT_CODES_HELP)
    .showHelpAfterError()
    .exitOverride();
  registerConfigCheck(program, ctx);
  registerJobs(program, ctx);
  registerPlan(program, ctx);
  registerRun(program, ctx);
  registerRestore(program, ctx);
  registerBox(program, ctx);
  registerStatus(program, ctx);
  registerDemo(program, ctx);
  return { program, ctx };
}
