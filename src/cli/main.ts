#!/usr/bin/env node
// The only place that sets the exit code.
import { CommanderError } from 'commander';
import { ExitCode, exitCodeFor, HozoError } from '../errors.js';
import { buildProgram } from './program.js';

async function main(argv: string[]): Promise<number> {
  const { program, ctx } = buildProgram();
  try {
    await program.parseAsync(argv);
    return ctx.exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      // help and --version exit 0; anything else commander rejects is a usage error (already printed).
      return e.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
    }
    const prefix = process.env['JOURNAL_STREAM'] !== undefined ? '<3>' : '';
    if (e instanceof HozoError) {
      process.stderr.write(`${prefix}error: ${e.message}\n`);
      if (e.hint) process.stderr.write(`${prefix}hint: ${e.hint}\n`);
    } else {
      process.stderr.write(`${prefix}internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    }
    return exitCodeFor(e);
  }
}

process.exitCode = await main(process.argv);
