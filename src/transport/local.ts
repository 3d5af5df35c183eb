// Runs argv on this machine. No shell: argv goes to the kernel as is, so names need no quoting.
import { exec } from '../util/exec.js';
import { HozoError } from '../errors.js';
import type { CommandResult, RunOptions, Runner } from './runner.js';

export interface LocalRunnerOptions {
  /** Applied when a call gives no timeoutMs; undefined = no limit. */
  readonly defaultTimeoutMs?: number;
}

export class LocalRunner implements Runner {
  readonly name = 'local';
  readonly local = true;
  private readonly defaultTimeoutMs: number | undefined;

  constructor(opts: LocalRunnerOptions = {}) {
    this.defaultTimeoutMs = opts.defaultTimeoutMs;
  }

  async run(argv: readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
    const [file, ...args] = argv;
    if (file === undefined) throw new HozoError('INTERNAL', 'LocalRunner.run called with an empty argv');
    const timeout = opts.timeoutMs ?? this.defaultTimeoutMs;
    const r = await exec(file, args, timeout !== undefined ? { timeoutMs: timeout } : {});
    // The one case that rejects: the program never started (ENOENT, EACCES).
    if (r.spawnError !== undefined) {
      throw new HozoError('INTERNAL', `cannot run "${file}" locally: ${r.spawnError.message}`, {
        hint: `is ${file} installed and on PATH?`,
        cause: r.spawnError,
      });
    }
    return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode };
  }

  commandFor(argv: readonly string[]): string[] {
    return [...argv];
  }

  async close(): Promise<void> {
    // Nothing held open.
  }
}
