// Typed errors: a stable code, a message for humans, a hint for what to do next, and the cause.

export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'CONFIG_NOT_FOUND'
  | 'USAGE'
  | 'UNKNOWN_JOB'
  | 'UNKNOWN_HOST'
  | 'INVALID_DATASET_NAME'
  | 'HOST_UNREACHABLE'
  | 'SSH_AUTH'
  | 'SSH_HOST_KEY'
  | 'ZFS_DATASET_NOT_FOUND'
  | 'ZFS_DATASET_EXISTS'
  | 'ZFS_DATASET_BUSY'
  | 'ZFS_TARGET_MODIFIED'
  | 'ZFS_INCREMENTAL_MISMATCH'
  | 'ZFS_PERMISSION'
  | 'ZFS_NO_SPACE'
  | 'ZFS_UNSUPPORTED'
  | 'ZFS_UNKNOWN'
  | 'PIPELINE_FAILED'
  | 'VERIFY_FAILED'
  | 'PLAINTEXT_REFUSED'
  | 'ENCRYPTION_MISMATCH'
  | 'LOCKED'
  | 'RESTORE_REFUSED'
  | 'INTERNAL'
  | 'INTERRUPTED'
  | 'AGENT_REFUSED'
  // hozo-agent answered something that is not the protocol (src/protocol/agent.ts).
  | 'AGENT_PROTOCOL'
  | 'BOX_SHUTTING_DOWN'
  // ZFS layer (src/zfs/errors.ts): no usable zfs on the host, partial-receive state, hold bookkeeping.
  | 'ZFS_UNAVAILABLE'
  | 'ZFS_RESUME_PENDING'
  | 'ZFS_RESUME_INVALID'
  | 'ZFS_HOLD_EXISTS'
  | 'ZFS_HOLD_NOT_FOUND'
  | 'TOOL_MISSING'
  | 'POOL_UNHEALTHY'
  // Own snapshots and hooks (src/job/snapshot-step.ts, hooks.ts).
  | 'HOOK_FAILED'
  | 'SNAPSHOT_FAILED'
  // The job's wake window closed during a transfer (src/job/window.ts): deferred, not failed.
  | 'WINDOW_CLOSED';

/** One validation problem: where (`jobs[0].host`) and what. */
export interface Problem {
  readonly path: string;
  readonly message: string;
}

export class HozoError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  /** For CONFIG_INVALID: every problem, as `config check --json` and `--json` errors report them. */
  readonly problems: readonly Problem[] | undefined;

  constructor(code: ErrorCode, message: string, opts: { hint?: string; cause?: unknown; problems?: readonly Problem[] } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'HozoError';
    this.code = code;
    this.hint = opts.hint;
    this.problems = opts.problems;
  }
}

export function isHozoError(e: unknown, code?: ErrorCode): e is HozoError {
  return e instanceof HozoError && (code === undefined || e.code === code);
}

/** Exit codes documented in --help and the README. */
export const ExitCode = {
  OK: 0,
  DATASET_FAILED: 1,
  USAGE: 2,
  UNREACHABLE: 3,
  /** The job is already running (its lock is held by a live run): nothing was done. */
  LOCKED: 4,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export function exitCodeFor(e: unknown): ExitCodeValue {
  if (!(e instanceof HozoError)) return ExitCode.DATASET_FAILED;
  return exitCodeForCode(e.code);
}

export function exitCodeForCode(code: ErrorCode): ExitCodeValue {
  switch (code) {
    case 'LOCKED':
      return ExitCode.LOCKED;
    case 'CONFIG_INVALID':
    case 'CONFIG_NOT_FOUND':
    case 'USAGE':
    case 'UNKNOWN_JOB':
    case 'UNKNOWN_HOST':
    case 'INVALID_DATASET_NAME':
    case 'RESTORE_REFUSED':
      return ExitCode.USAGE;
    case 'HOST_UNREACHABLE':
    case 'AGENT_REFUSED':
    case 'AGENT_PROTOCOL':
    case 'BOX_SHUTTING_DOWN':
    case 'SSH_AUTH':
    case 'SSH_HOST_KEY':
      return ExitCode.UNREACHABLE;
    default:
      return ExitCode.DATASET_FAILED;
  }
}
