// A scripted box for hozo-agent's verbs (no ZFS: the real thing is in tests/integration/agent.test.ts), shared by the
// serve and session unit tests, and the hostile requests every entry point must refuse.
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { MAX_COMMAND_LENGTH } from '../../agent/command.js';
import { validateAgentConfig, type AgentConfigInput } from '../../agent/config.js';
import type { AgentContext, StreamOptions } from '../../agent/context.js';
import { AuditLog } from '../../agent/log.js';
import { AgentState } from '../../agent/state.js';
import type { CommandResult, Runner } from '../../src/transport/runner.js';

// Every one of these must be refused: exit 2, one line on stderr, nothing run, no state changed.
export const HOSTILE: readonly (readonly [string, string | undefined])[] = [
  ['unset SSH_ORIGINAL_COMMAND', undefined],
  ['empty', ''],
  ['spaces only', '    '],
  ['zfs destroy', 'zfs destroy -r backup/kraken'],
  ['zfs receive directly', 'zfs receive -F backup/kraken/x'],
  ['zpool destroy', 'zpool destroy backup'],
  ['sh -c', 'sh -c id'],
  ['bash', 'bash -i'],
  ['rm', 'rm -rf /'],
  ['semicolon', 'list backup/kraken; rm -rf /'],
  ['and-and', 'list backup/kraken && id'],
  ['pipe', 'list backup/kraken | sh'],
  ['redirect', 'list backup/kraken > /tmp/x'],
  ['command substitution', 'list $(id)'],
  ['backticks', 'list `id`'],
  ['variable', 'list ${HOME}'],
  ['tilde', 'list ~root'],
  ['glob', 'list backup/kraken/*'],
  ['quotes', "list 'backup/kraken'"],
  ['newline', 'list backup/kraken\nrm -rf /'],
  ['carriage return', 'status\r'],
  ['tab separator', 'list\tbackup/kraken'],
  ['NUL byte', 'list backup/kraken\0rm'],
  ['very long input', `list ${'a/'.repeat(MAX_COMMAND_LENGTH)}x`],
  ['unicode', 'list backup/krakén'],
  ['list outside the roots', 'list backup/other'],
  ['list above the root', 'list backup'],
  ['list by prefix trick', 'list backup/kraken2'],
  ['list with ..', 'list backup/kraken/../other'],
  ['list absolute path', 'list /backup/kraken'],
  ['list a snapshot', 'list backup/kraken@snap'],
  ['list with option', 'list -o all backup/kraken'],
  ['receive outside the roots', 'receive backup/other/x'],
  ['receive into the root itself', 'receive backup/kraken'],
  ['receive -F without allowRollback', 'receive -F backup/kraken/x'],
  ['receive -o property', 'receive -o mountpoint=/etc backup/kraken/x'],
  ['receive -d', 'receive -d backup/kraken/x'],
  ['receive -e', 'receive -e backup/kraken/x'],
  ['receive two targets', 'receive backup/kraken/x backup/kraken/y'],
  ['receive without target', 'receive -u'],
  ['receive with .. component', 'receive backup/kraken/../../etc'],
  ['send outside the roots', 'send backup/other@s1'],
  ['send from outside the roots', 'send -i backup/other@a backup/kraken/x@b'],
  ['send a filesystem', 'send backup/kraken/x'],
  ['send -R', 'send -R backup/kraken/x@s'],
  ['send -t token', 'send -t 1-abc-def-0 backup/kraken/x@s'],
  ['hold path id', 'hold ../../etc/passwd 60'],
  ['hold dot id', 'hold .hidden 60'],
  ['hold huge ttl', 'hold a 99999999'],
  ['hold negative ttl', 'hold a -1'],
  ['hold zero ttl', 'hold a 0'],
  ['hold without ttl', 'hold a'],
  ['release path', 'release ../x'],
  ['release nothing', 'release'],
  ['status extra', 'status --all'],
  ['shutdown now', 'shutdown now'],
  ['prune --force', 'prune --force'],
  ['prune twice dry', 'prune --dry-run --dry-run'],
  ['upper case verb', 'LIST backup/kraken'],
  ['idle-check is not an SSH verb', 'idle-check'],
  ['serve recursion', 'serve'],
  ['scp', 'scp -t /root'],
  ['sftp', '/usr/lib/openssh/sftp-server'],
  ['internal-sftp', 'internal-sftp'],
  ['rsync', 'rsync --server -vlogDtpre.iLsfxC . /'],
  ['git', "git-upload-pack '/repo'"],
  ['env assignment', 'PATH=/tmp list backup/kraken'],
  ['options before verb', '--config /tmp/evil.json status'],
];

// --- a scripted box ---------------------------------------------------------------------------------------------

export type Reply = Partial<CommandResult> | undefined;

export class ScriptedRunner implements Runner {
  readonly name = 'local';
  readonly local = true;
  readonly calls: string[] = [];
  constructor(private readonly reply: (cmd: string, argv: readonly string[]) => Reply) {}
  async run(argv: readonly string[]): Promise<CommandResult> {
    const cmd = argv.join(' ');
    this.calls.push(cmd);
    const r = this.reply(cmd, argv) ?? { exitCode: 1, stderr: `unscripted: ${cmd}` };
    return { stdout: r.stdout ?? '', stderr: r.stderr ?? '', exitCode: r.exitCode === undefined ? 0 : r.exitCode };
  }
  commandFor(argv: readonly string[]): string[] {
    return [...argv];
  }
  async close(): Promise<void> {}
}

export const STATUS_OK = `  pool: backup\n state: ONLINE\n scrub: none requested\nconfig:\n\n\tNAME        STATE     READ WRITE CKSUM\n\tbackup      ONLINE       0     0     0\n\t  /img/a    ONLINE       0     0     0\n\nerrors: No known data errors\n`;
export const STATUS_SCRUBBING = STATUS_OK.replace('none requested', 'scrub in progress for 0h0m, 11.11% done, 0h0m to go');
export const LIST_OK = 'backup\tONLINE\t1.98G\t1.57G\t428M\t78%\n';

/** A healthy imported pool "backup" with the root "backup/kraken"; override per test. */
export function box(extra: (cmd: string) => Reply = () => undefined): (cmd: string) => Reply {
  return (cmd) => {
    const e = extra(cmd);
    if (e !== undefined) return e;
    if (cmd === 'zpool list -H -o name,health,size,alloc,free,cap backup') return { stdout: LIST_OK };
    if (cmd === 'zpool status backup') return { stdout: STATUS_OK };
    if (cmd === 'zpool export backup') return {};
    // After a receive: the guids the agent records receive times for (agent/stamp.ts).
    if (cmd.startsWith('zfs get -H -p -r -o name,value guid ')) return { stdout: `${cmd.split(' ').pop()}@s1\t123\n` };
    if (cmd === 'zfs list -H -o name backup/kraken') return { stdout: 'backup/kraken\n' };
    if (cmd === 'zfs list -H -o name backup') return { stdout: 'backup\n' };
    if (/^zfs list -H -o name /.test(cmd)) return { exitCode: 1, stderr: `cannot open '${cmd.split(' ').pop()}': dataset does not exist\n` };
    return undefined;
  };
}

export interface Harness {
  ctx: AgentContext;
  runner: ScriptedRunner;
  streams: { chain: string[][]; opts: StreamOptions }[];
  detached: string[][];
  out: string[];
  err: string[];
  state: AgentState;
  dir: string;
  setNow(t: number): void;
  files(): string[];
}

let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
});

export function harness(
  reply: (cmd: string) => Reply = box(),
  config: Partial<AgentConfigInput> = {},
  streamCode = 0,
  onStream?: (h: Harness) => unknown,
): Harness {
  const dir = mkdtempSync(join(tmpdir(), 'hozo-agent-unit-'));
  dirs.push(dir);
  let now = 1_800_000_000;
  const cfg = validateAgentConfig({
    roots: ['backup/kraken'],
    stateDirectory: join(dir, 'state'),
    leaseDirectory: join(dir, 'state', 'leases'),
    poweroffCommand: ['sh', '-c', 'echo off'],
    prepareTimeoutSeconds: 0,
    ...config,
  });
  const state = new AgentState({ leaseDirectory: cfg.leaseDirectory, stateDirectory: cfg.stateDirectory, clock: () => now, uptime: () => 100_000 });
  const runner = new ScriptedRunner(reply);
  const h: Harness = {
    runner,
    streams: [],
    detached: [],
    out: [],
    err: [],
    state,
    dir,
    setNow: (t) => {
      now = t;
    },
    files: () => {
      const list = (d: string, prefix = ''): string[] => {
        let names: string[];
        try {
          names = readdirSync(d);
        } catch {
          return [];
        }
        return names.flatMap((n) => (statSync(join(d, n)).isDirectory() ? list(join(d, n), `${prefix}${n}/`) : [`${prefix}${n}`]));
      };
      return list(dir).sort();
    },
    ctx: undefined as unknown as AgentContext,
  };
  h.ctx = {
    config: cfg,
    state,
    runner,
    stream: async (chain, opts) => {
      h.streams.push({ chain: chain.map((a) => [...a]), opts });
      // The stream lasts until what onStream started has finished (a request that arrives while bytes flow).
      await onStream?.(h);
      return streamCode;
    },
    detach: (argv) => void h.detached.push([...argv]),
    log: new AuditLog(cfg.logFile, {}),
    out: (t) => void h.out.push(t),
    err: (t) => void h.err.push(t),
    sleep: async () => undefined,
    diskPower: async () => null,
  };
  return h;
}

export const json = (h: Harness): Record<string, unknown> => JSON.parse(h.out.join('')) as Record<string, unknown>;
