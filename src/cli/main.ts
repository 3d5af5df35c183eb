#!/usr/bin/env node
// The only place that sets the exit code.
import { trace } from '../util/trace.js';
import { CommanderError, type Command } from 'commander';
import { ExitCode, exitCodeFor, HozoError } from '../errors.js';
import { buildProgram } from './program.js';
import { escapeUnsafe } from '../config/shown.js';
import { isJournalStream } from '../util/log.js';

/** --json anywhere on the command line (commander may not have parsed it when the error came). */
const wantsJson = (argv: readonly string[]) => argv.slice(2).includes('--json');

function writeErrorLines(e: HozoError | Error | string, journal: boolean): void {
  const prefix = journal ? '<3>' : '';
  const lines =
    e instanceof HozoError
      ? [`error: ${e.message}`, ...(e.hint ? [`hint: ${e.hint}`] : [])]
      : [`internal error: ${e instanceof Error ? (e.stack ?? e.message) : e}`];
  // A usage error of hozo's own (an option's value, options that contradict each other) ends as commander's do.
  if (e instanceof HozoError && e.code === 'USAGE') lines.push('(add --help for usage)');
  // Under journald every line of a multi-line message carries its priority (journalctl -p err shows it whole).
  // Each line escaped again (a message that quoted user text raw must still not drive the terminal).
  for (const l of lines.flatMap((x) => x.split('\n'))) process.stderr.write(`${prefix}${escapeUnsafe(l)}\n`);
}

/** A line of commander's: escaped, and cut (it quotes a refused argument whole, however long). */
const safeLine = (l: string) => (l.length > 400 ? `${escapeUnsafe(l.slice(0, 400))}… (${l.length} characters)` : escapeUnsafe(l));

/** commander's own errors quote the argument they refuse (an unknown option or command) as typed: escape them. */
function escapeCommanderErrors(cmd: Command): void {
  cmd.configureOutput({ ...cmd.configureOutput(), outputError: (text, write) => write(text.split('\n').map(safeLine).join('\n')) });
  for (const sub of cmd.commands) escapeCommanderErrors(sub);
}

// A reader that went away (`hozo --help | head`, a closed pipe) is no error of ours: stop writing, keep the exit code.
// Not for a run in progress — it only loses its stdout; the run itself, its state and metrics carry on.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
  });
}

async function main(argv: string[]): Promise<number> {
  trace('cli: modules loaded');
  const { program, ctx } = buildProgram();
  escapeCommanderErrors(program);
  try {
    await program.parseAsync(argv);
    return ctx.exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      // help and --version exit 0; anything else commander rejects is a usage error (already printed).
      if (e.exitCode !== 0 && wantsJson(argv)) {
        // A command group without its subcommand (`hozo config`): commander printed the group's help on stderr and
        // says only "(outputHelp)".
        const missing = e.code === 'commander.help' || e.message === '(outputHelp)';
        const error = missing
          ? {
              code: 'USAGE',
              message: 'a command is missing (the help, which lists them, is on stderr)',
              hint: 'add --help to the command for its subcommands',
            }
          : { code: 'USAGE', message: safeLine(e.message.replace(/^error: /, '')), hint: 'add --help for usage' };
        process.stdout.write(JSON.stringify({ version: 1, error }) + '\n');
      }
      return e.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
    }
    const journal = isJournalStream(2);
    if (wantsJson(argv)) {
      const err =
        e instanceof HozoError
          ? { code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}), ...(e.problems ? { problems: e.problems } : {}) }
          : { code: 'INTERNAL', message: e instanceof Error ? e.message : String(e) };
      process.stdout.write(JSON.stringify({ version: 1, error: err }, null, 2) + '\n');
    }
    writeErrorLines(e instanceof HozoError || e instanceof Error ? e : String(e), journal);
    return exitCodeFor(e);
  }
}

process.exitCode = await main(process.argv);
