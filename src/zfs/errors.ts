// zfs/zpool stderr → typed HozoError. Messages differ between zfs-fuse (2009 onnv libzfs) and OpenZFS 2.x, and
// line breaks fall inside sentences ("has been modified\nsince …"), so rules match on whitespace-tolerant text.
// Conservative: a message no rule knows is ZFS_UNKNOWN with the raw stderr, never a guess.
import { HozoError, type ErrorCode } from '../errors.js';
import type { CommandResult } from '../transport/runner.js';
import { AGENT_PERMISSIONS, CONTROLLER_PERMISSIONS } from './delegation.js';

export interface ZfsErrorContext {
  /** What hozo was doing; starts the message, e.g. "receive into backup/home". */
  readonly action: string;
  /** Runner name, for "on <host>" (omitted for "local"). */
  readonly host?: string;
  readonly argv?: readonly string[];
  readonly exitCode?: number | null;
}

/** Kept as the cause of every classified error: the raw facts behind the message. */
export class ZfsCommandFailure extends Error {
  readonly stderr: string;
  readonly argv: readonly string[] | undefined;
  readonly exitCode: number | null | undefined;

  constructor(stderr: string, argv?: readonly string[], exitCode?: number | null) {
    super(stderr.trim() === '' ? '(no stderr)' : stderr.trim());
    this.name = 'ZfsCommandFailure';
    this.stderr = stderr;
    this.argv = argv;
    this.exitCode = exitCode;
  }
}

interface Rule {
  readonly code: ErrorCode;
  readonly re: RegExp;
  readonly hint: string | ((m: RegExpMatchArray) => string);
}

// Order matters: the first rule that matches anywhere in stderr wins, most specific first.
const RULES: readonly Rule[] = [
  // The zfs command could not reach ZFS at all.
  {
    code: 'ZFS_PERMISSION',
    re: /connect: Permission denied|ZFS utilities must be run as root/i,
    hint: 'run as root, or (OpenZFS) delegate the needed permissions with `zfs allow`; zfs-fuse serves root only',
  },
  {
    code: 'ZFS_UNAVAILABLE',
    re: /failed to initialize (the )?(ZFS|libzfs) library|zfs-fuse daemon is running|ZFS modules (are not loaded|cannot be auto-loaded)|\/dev\/zfs and \/proc\/self\/mounts are required|\b(zfs|zpool): (command )?not found/i,
    hint: 'ZFS is not usable on this host: load the zfs kernel module (modprobe zfs) or start the zfs-fuse daemon',
  },
  // Partially received state (receive -s) and resume tokens.
  {
    code: 'ZFS_RESUME_PENDING',
    re: /partially-complete state from\s+"zfs receive -s"|A resuming stream can be generated/i,
    hint: 'the target holds a partial receive: resume it with its receive_resume_token (zfs send -t), or discard it with `zfs receive -A DATASET`',
  },
  {
    code: 'ZFS_RESUME_INVALID',
    re: /does not have any\s+resumable receive state to abort/i,
    hint: 'there is no partial receive to abort on that dataset; nothing to do',
  },
  {
    code: 'ZFS_RESUME_INVALID',
    re: /resume token is corrupt|resume token does not match|cannot resume send|cannot receive resume stream|cannot resume recv|Resuming recv on existing/i,
    hint: 'the resume token cannot be used (stale or from another stream): discard the partial receive with `zfs receive -A DATASET` and replicate from the last common snapshot',
  },
  // Target state that blocks a receive.
  {
    code: 'ZFS_TARGET_MODIFIED',
    re: /has been modified\s+since most recent snapshot/i,
    hint: 'the target changed after its last received snapshot (mounted and written to?): set readonly=on on backup datasets; receiving with force (-F) rolls the change back and discards it',
  },
  {
    code: 'ZFS_TARGET_MODIFIED',
    re: /more recent snapshots (or bookmarks )?exist/i,
    hint: 'newer snapshots exist after the rollback point; rolling back with -r destroys them, so do that only if they are disposable',
  },
  {
    code: 'ZFS_INCREMENTAL_MISMATCH',
    re: /most recent snapshot of \S+ does not\s+match incremental source/i,
    hint: "the target's newest snapshot is not the stream's base: let hozo re-plan from the inventory (common snapshot by guid), or receive with force (-F) to roll the target back to the base",
  },
  {
    code: 'ZFS_INCREMENTAL_MISMATCH',
    re: /incremental source \(?\S+\)? does not exist|not an earlier snapshot from the same fs|incremental source must be in same filesystem/i,
    hint: 'the incremental base is gone from the source or is not older than the target snapshot: re-plan from a fresh inventory; keep a hold on the base so pruning cannot remove it',
  },
  // Holds, so hold/release can be idempotent.
  {
    code: 'ZFS_HOLD_EXISTS',
    re: /tag already exists on this dataset/i,
    hint: 'the snapshot already carries this hold tag; nothing to do',
  },
  {
    code: 'ZFS_HOLD_NOT_FOUND',
    re: /no such tag on this dataset/i,
    hint: 'the snapshot does not carry this hold tag (already released?); nothing to do',
  },
  {
    code: 'ZFS_DATASET_EXISTS',
    re: /destination has snapshots/i,
    hint: 'a full stream cannot overwrite a target that has snapshots: if it shares history with the source, replicate incrementally from the common snapshot; otherwise choose another target or destroy its snapshots yourself',
  },
  {
    code: 'ZFS_DATASET_EXISTS',
    re: /destination '[^']*' exists|destination '[^']*' is a clone|dataset already exists|destination already exists|pool or dataset exists|bookmark exists/i,
    hint: 'the target already exists: replicate incrementally into it, receive with force (-F) only if it may be overwritten, or choose another target',
  },
  {
    code: 'ZFS_DATASET_BUSY',
    re: /dataset is busy|pool or dataset is busy|target is busy|pool is busy|it's being held/i,
    hint: 'something is using it (a mount, a running send/receive, or a hold on a snapshot being destroyed): retry in a few seconds; release holds before destroying',
  },
  {
    code: 'ZFS_DATASET_NOT_FOUND',
    re: /cannot receive new filesystem stream: (dataset|parent \S+) does not exist|parent '[^']*' is not a filesystem/i,
    hint: 'the parent of the target does not exist: create it (zfs create -p -o canmount=off PARENT) or fix the target path',
  },
  {
    code: 'ZFS_DATASET_NOT_FOUND',
    re: /dataset does not exist|no such pool or dataset|no such pool|could not send \S+: does not exist|destination '[^']*' does not exist|bookmark '[^']*' does not exist|could not find any snapshots to destroy/i,
    hint: 'check the name and that the pool is imported; list with `zfs list -r POOL`',
  },
  {
    code: 'ZFS_PERMISSION',
    re: /permission denied|operation not permitted|delegated administration is disabled/i,
    hint: `run as root, or delegate (OpenZFS): \`zfs allow -u USER ${CONTROLLER_PERMISSIONS.join(',')} SOURCE\` for the controller's user, \`zfs allow -u hozo ${AGENT_PERMISSIONS.join(',')} ROOT\` on an agent box; in a container, root also needs --cap-add SYS_ADMIN and --device /dev/zfs (docs/container.md)`,
  },
  {
    code: 'ZFS_NO_SPACE',
    re: /out of space|no space left on device|quota exceeded/i,
    hint: 'the pool (or a quota) is full: free space by pruning old snapshots on the target, raise the quota, or grow the pool',
  },
  {
    code: 'ZFS_UNSUPPORTED',
    re: /invalid option '(.)'/i,
    hint: (m) => `this zfs does not know option -${m[1] ?? '?'}: hozo should have probed for it — please report this`,
  },
  {
    code: 'ZFS_UNSUPPORTED',
    re: /unrecognized command '([^']*)'|bad property list: invalid property '([^']*)'|invalid property '([^']*)'/i,
    hint: (m) => `this zfs does not know "${m[1] ?? m[2] ?? m[3] ?? '?'}" (older implementation such as zfs-fuse?)`,
  },
  {
    code: 'ZFS_UNSUPPORTED',
    re: /invalid option\s*$|cannot be used to destroy an encrypted filesystem|operation not supported|unsupported version|pool must be upgraded|kernel modules must be upgraded|module does not support|stream is not compatible with the data in the pool|requires -L|incompatible embedded data stream|Function not implemented|pyzfs\.py not found/im,
    hint: 'this ZFS (or pool version) cannot do that: upgrade the receiving side, or send without the newer stream features',
  },
  // A broken stream is a symptom: the other end of the pipeline failed first.
  {
    code: 'PIPELINE_FAILED',
    re: /invalid backup stream|failed to read from stream|checksum mismatch|incomplete stream|Broken pipe|cannot send .*: signal received/i,
    hint: "the stream was cut short: the sending side, the transport or the receiving side stopped; the other stage's error says why",
  },
];

const UNKNOWN_HINT = 'hozo does not recognise this zfs message (shown in full); check it by hand, and report it so hozo can learn it';

/** stderr up to a usage dump: option errors append the whole usage (and a property table) that must not match. */
function beforeUsage(stderr: string): string {
  const cut = stderr.search(/^usage:/m);
  return cut > 0 ? stderr.slice(0, cut) : stderr;
}

/** One-line text for the message: line breaks in zfs output split sentences. */
function summarize(stderr: string): string {
  const text = beforeUsage(stderr)
    .trim()
    .replace(/\s*\n\s*/g, ' ');
  return text.length > 600 ? `${text.slice(0, 600)}…` : text;
}

function prefix(context: ZfsErrorContext): string {
  const on = context.host !== undefined && context.host !== 'local' ? ` on ${context.host}` : '';
  return `${context.action}${on}`;
}

/** Classifies a failed zfs/zpool command's stderr. Never throws; unknown text → ZFS_UNKNOWN with the raw stderr. */
export function classify(stderr: string, context: ZfsErrorContext): HozoError {
  const cause = new ZfsCommandFailure(stderr, context.argv, context.exitCode);
  const head = beforeUsage(stderr);
  for (const rule of RULES) {
    const m = head.match(rule.re);
    if (m === null) continue;
    const hint = typeof rule.hint === 'string' ? rule.hint : rule.hint(m);
    return new HozoError(rule.code, `${prefix(context)}: ${summarize(stderr)}`, { hint, cause });
  }
  const raw = stderr.trim();
  const detail = raw === '' ? `failed (exit ${context.exitCode ?? 'unknown'}) without a message` : `failed: ${raw}`;
  return new HozoError('ZFS_UNKNOWN', `${prefix(context)} ${detail}`, { hint: UNKNOWN_HINT, cause });
}

/** Failures a retry cannot mend. Recognised in the stderr of a failed pipeline stage, they replace PIPELINE_FAILED. */
const DEFINITIVE: readonly ErrorCode[] = ['ZFS_PERMISSION', 'ZFS_NO_SPACE'];

/**
 * The zfs error behind a failed stream, when it is one a retry cannot mend: `message` (the pipeline's, which names the
 * stage) with that error's code and hint, e.g. ZFS_PERMISSION and the `zfs allow` to run. Otherwise undefined.
 */
export function definitiveStageError(stderr: string, message: string, cause: unknown): HozoError | undefined {
  const c = classify(stderr, { action: 'stream' });
  return DEFINITIVE.includes(c.code) ? new HozoError(c.code, message, { ...(c.hint !== undefined ? { hint: c.hint } : {}), cause }) : undefined;
}

/** stdout of a successful command; otherwise the classified error (a killed command is ZFS_UNKNOWN). */
export function checkResult(result: CommandResult, context: ZfsErrorContext): string {
  if (result.exitCode === 0) return result.stdout;
  const ctx = { ...context, exitCode: result.exitCode };
  if (result.exitCode === null) {
    throw new HozoError('ZFS_UNKNOWN', `${prefix(ctx)}: zfs was killed (timeout or signal)`, {
      hint: 'the host may be overloaded or the pool hung; check `zpool status` there and retry',
      cause: new ZfsCommandFailure(result.stderr, ctx.argv, null),
    });
  }
  // zfs-fuse prints some failures ("internal error: …") on stdout and nothing on stderr.
  throw classify(result.stderr.trim() !== '' ? result.stderr : result.stdout, ctx);
}
