// The files and directories a config names, checked before a run does anything: a key or known_hosts file that is
// missing, a directory or a FIFO (ssh would hang on it), or unreadable; a metrics directory that is a file. Without
// this a run wakes the box first and then fails at ssh with "Permission denied (publickey)", or at its very end with a
// bare ENOTDIR. config check reports the same as warnings (it often runs elsewhere: a NixOS build's sandbox has none
// of the secrets, so a missing file under /run — where sops-nix, agenix and systemd credentials put them — is left out
// there). No zod: the warm run path calls this.
import { accessSync, constants, statSync } from 'node:fs';
import { posix } from 'node:path';
import { HozoError } from '../errors.js';
import { stateDirectoryProblem } from '../state/dir.js';
import { ensureDirectory, kindOf } from '../util/safe-fs.js';
import { formatPath } from './issues.js';
import { errnoWords } from './read.js';
import type { Config, HostConfig } from './schema.js';
import { shownPath } from './shown.js';

/** A file the config names: where (the config path of the field) and what it is for. */
export interface NamedFile {
  readonly field: string;
  readonly path: string;
  /** read: hozo or ssh reads it; directory: hozo writes files into it. */
  readonly kind: 'read' | 'directory';
}

const MISSING = 'does not exist';

/** Why `path` cannot be read as a file (missing, not a regular file, unreadable by this user), or undefined. */
export function readableFileProblem(path: string): string | undefined {
  let st: import('node:fs').Stats;
  try {
    st = statSync(path);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? MISSING : errnoWords(e);
  }
  if (!st.isFile()) return `is ${kindOf(st)}, not a regular file`;
  try {
    accessSync(path, constants.R_OK);
  } catch {
    return `is not readable by this user (uid ${process.geteuid?.() ?? '?'})`;
  }
  return undefined;
}

/** The files one host entry names: its key and known_hosts, and its jump host's. */
function hostFiles(name: string, h: HostConfig): NamedFile[] {
  const at = formatPath(['hosts', name]);
  const out: NamedFile[] = [];
  if (h.sshKeyFile !== undefined) out.push({ field: `${at}.sshKeyFile`, path: h.sshKeyFile, kind: 'read' });
  if (h.knownHostsFile !== undefined) out.push({ field: `${at}.knownHostsFile`, path: h.knownHostsFile, kind: 'read' });
  if (h.via?.sshKeyFile !== undefined) out.push({ field: `${at}.via.sshKeyFile`, path: h.via.sshKeyFile, kind: 'read' });
  if (h.via?.knownHostsFile !== undefined) out.push({ field: `${at}.via.knownHostsFile`, path: h.via.knownHostsFile, kind: 'read' });
  return out;
}

/** The hosts a run against `hostName` connects to: the box, and the relay that wakes it. */
export function hostsUsed(c: Config, hostName: string): string[] {
  if (hostName === 'local' || !Object.hasOwn(c.hosts, hostName)) return [];
  const relay = c.hosts[hostName]!.wake?.method === 'ssh-relay' ? c.hosts[hostName]!.wake?.relayHost : undefined;
  return relay !== undefined && relay !== hostName && Object.hasOwn(c.hosts, relay) ? [hostName, relay] : [hostName];
}

/** What a command against `host` needs (every host's when undefined): the SSH files of the hosts it connects to, and
 *  with `metrics` (a run or verify that writes its textfile) the metrics directory. */
export function runFiles(c: Config, host: string | undefined, opts: { readonly metrics?: boolean } = {}): NamedFile[] {
  const hosts = host === undefined ? Object.keys(c.hosts) : hostsUsed(c, host);
  const out = hosts.flatMap((h) => hostFiles(h, c.hosts[h]!));
  if (opts.metrics === true && c.metrics !== undefined) out.push({ field: 'metrics.textfileDirectory', path: c.metrics.textfileDirectory, kind: 'directory' });
  return out;
}

/** The notification channels' secret files: read only when a run reports, so a problem there is a warning. */
export function notifyFiles(c: Config): NamedFile[] {
  const out: NamedFile[] = [];
  c.notify.forEach((n, i) => {
    if ((n.type === 'ntfy' || n.type === 'webhook' || n.type === 'pushover') && n.tokenFile !== undefined)
      out.push({ field: `notify[${i}].tokenFile`, path: n.tokenFile, kind: 'read' });
    if (n.type === 'pushover') out.push({ field: `notify[${i}].userFile`, path: n.userFile, kind: 'read' });
  });
  return out;
}

/** `field path: problem` of each named file that cannot be used; `access` as stateDirectoryProblem takes it. */
export function fileProblems(files: readonly NamedFile[], opts: { readonly access?: boolean; readonly missingUnderRunOk?: boolean } = {}): string[] {
  const out: string[] = [];
  for (const f of files) {
    const problem = f.kind === 'read' ? readableFileProblem(f.path) : stateDirectoryProblem(f.path, { access: opts.access !== false });
    if (problem === undefined) continue;
    if (opts.missingUnderRunOk === true && problem === MISSING && (f.path === '/run' || f.path.startsWith('/run/'))) continue;
    out.push(`${f.field} ${shownPath(f.path)}: ${problem.replace(/^it /, '')}`);
  }
  return out;
}

/**
 * Before a command touches anything (wakes a box, takes a lock): every file it needs is there and usable, or
 * CONFIG_INVALID (exit 2) naming each. With `metrics`, a metrics directory that is not there yet is created.
 */
export function ensureRunFiles(c: Config, host: string | undefined, opts: { readonly metrics?: boolean } = {}): void {
  const files = runFiles(c, host, opts);
  const problems = fileProblems(files);
  for (const f of problems.length === 0 ? files : []) {
    if (f.kind !== 'directory') continue;
    try {
      ensureDirectory(f.path, 0o755);
    } catch (e) {
      problems.push(`${f.field} ${shownPath(f.path)}: cannot be created: ${errnoWords(e)}`);
    }
  }
  if (problems.length === 0) return;
  throw new HozoError('CONFIG_INVALID', problems.length === 1 ? problems[0]! : `files named in the config cannot be used:\n  ${problems.join('\n  ')}`, {
    hint: 'fix the path (or the secret behind it) in the config; nothing was run and no box was woken',
  });
}

/** The directory a log file goes in, for its problem: a log file in a directory that is not there loses every line. */
export function logDirectoryProblem(file: string): string | undefined {
  const dir = posix.dirname(file);
  try {
    return statSync(dir).isDirectory() ? undefined : `${shownPath(dir)} is not a directory`;
  } catch (e) {
    return `its directory ${shownPath(dir)} ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `cannot be read: ${errnoWords(e)}`}`;
  }
}
