// Runs argv on this machine. No shell: argv goes to the kernel as is, so names need no quoting.
import { execa } from 'execa';
import { HozoError } from '../errors.js';
import type { CommandResult, RunOptions, Runner } from './runner.js';

export interface LocalRunnerOptions {
  /** Applied when a call gives no timeoutMs; undefined = no limit. */
  readonly defaultTimeoutMs?: number;
}

export class LocalRunner implements Runner {
  readonly name = 'local';
  private readonly defaultTimeoutMs: number | undefined;

  constructor(opts: LocalRunnerOptions = {}) {
    this.defaultTimeoutMs = opts.defaultTimeoutMs;
  }

  async run(argv: readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
    const [file, ...args] = argv;
    if (file === undefined) throw new HozoError('INTERNAL', 'LocalRunner.run called with an empty argv');
    const timeout = opts.timeoutMs ?? this.defaultTimeoutMs;
    const r = await execa(file, args, {
      reject: false,
      // stdin closed: a command that unexpectedly reads (zfs receive) must see EOF, not hang on ours.
      stdin: 'ignore',
      stripFinalNewline: false,
      ...(timeout !== undefined ? { timeout } : {}),
    });
    // No exit code and no signal means it never started (ENOENT, EACCES): that is the one case that rejects.
    if (r.exitCode === undefined && r.signal === undefined && !r.timedOut) {
      throw new HozoError('INTERNAL', `cannot run "${file}" locally: ${String(r.shortMessage ?? r.message ?? 'spawn failed').split('\n')[0]}`, {
        hint: `is ${file} installed and on PATH?`,
        cause: r.cause ?? r,
      });
    }
    return { stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? ''), exitCode: r.exitCode ?? null };
  }

  commandFor(argv: readonly string[]): string[] {
    return [...argv];
  }

  async close(): Promise<void> {
    // Nothing held open.
  }
}
