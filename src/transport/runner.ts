// A Runner executes argv on one host (this machine, or a box over SSH). Everything that talks to ZFS takes one,
// so the same code runs locally, remotely and against captured output in tests.

export interface CommandResult {
  readonly stdout: string;
  readonly stderr: string;
  /** Exit status; null when killed by a signal. */
  readonly exitCode: number | null;
}

export interface RunOptions {
  /** Kill the command after this many milliseconds (it then resolves with exitCode null). */
  readonly timeoutMs?: number;
}

export interface Runner {
  /** "local" or the configured host name; used in messages. */
  readonly name: string;
  /** true for this machine: a pipeline's stages run here as separate processes (src/pipeline/transfer.ts); false for
   *  a remote host, whose stages run inside one `commandFor` (one ssh). */
  readonly local: boolean;
  /** Runs argv; never rejects for a non-zero exit, only when the command could not be started at all. */
  run(argv: readonly string[], opts?: RunOptions): Promise<CommandResult>;
  /**
   * The local argv that runs `argv` on this runner's host with stdin/stdout connected to the caller:
   * identity for local, `ssh … host 'quoted argv'` for SSH. Used to build zero-copy pipelines.
   */
  commandFor(argv: readonly string[]): string[];
  /** Releases connections (e.g. an SSH ControlMaster). Idempotent. */
  close(): Promise<void>;
}
