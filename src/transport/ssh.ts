// OpenSSH transport: one ControlMaster per host per run, BatchMode, strict host key checking, a fast AEAD cipher.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exec } from '../util/exec.js';
import { HozoError } from '../errors.js';
import type { HostConfig } from '../config/schema.js';
import { AES_FIRST } from './cipher.js';
import { shellJoin } from './quote.js';
import type { CommandResult, RunOptions, Runner } from './runner.js';

/** AES-GCM first: on machines with AES-NI it moves about twice what chacha20 does (see TESTBED and cipher.ts). */
export const PREFERRED_CIPHERS = AES_FIRST;

export interface SshTarget {
  readonly name: string;
  readonly host: HostConfig;
  /** Seconds for TCP connect + handshake. */
  readonly connectTimeout?: number;
  /** Cipher preference list (cipher.ts); default AES-GCM first. */
  readonly ciphers?: string;
}

/** Options shared by the master and every client; host key checking is always strict. */
export function baseSshOptions(host: HostConfig, connectTimeout = 10, ciphers = PREFERRED_CIPHERS): string[] {
  const o = [
    '-o',
    'BatchMode=yes',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    `ConnectTimeout=${connectTimeout}`,
    '-o',
    'ServerAliveInterval=15',
    '-o',
    'ServerAliveCountMax=4',
    '-o',
    'Compression=no',
    '-o',
    'LogLevel=ERROR',
    '-p',
    String(host.port),
    '-l',
    host.user,
  ];
  if (host.knownHostsFile !== undefined) o.push('-o', `UserKnownHostsFile=${host.knownHostsFile}`, '-o', 'GlobalKnownHostsFile=/dev/null');
  if (host.sshKeyFile !== undefined) o.push('-i', host.sshKeyFile, '-o', 'IdentitiesOnly=yes');
  if (host.via !== undefined) o.push('-o', `ProxyCommand=${viaCommand(host)}`);
  const userCiphers = host.sshOptions.some((x) => /^Ciphers=/i.test(x));
  if (!userCiphers) o.push('-o', `Ciphers=${ciphers}`);
  for (const x of host.sshOptions) o.push('-o', x);
  return o;
}

/** `host:port` as ssh's -W wants it (an IPv6 address in brackets). */
export const forwardTarget = (address: string, port: number | string): string => (address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`);

/** ssh to the jump host (`via`) with the same strict options as the box, forwarding stdin/stdout to `target` (-W). */
export function viaArgv(host: HostConfig, target: string): string[] {
  const v = host.via!;
  const known = v.knownHostsFile ?? host.knownHostsFile;
  return [
    'ssh',
    '-o',
    'BatchMode=yes',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'LogLevel=ERROR',
    '-o',
    'ConnectTimeout=10',
    ...(known !== undefined ? ['-o', `UserKnownHostsFile=${known}`, '-o', 'GlobalKnownHostsFile=/dev/null'] : []),
    ...(v.sshKeyFile !== undefined ? ['-i', v.sshKeyFile, '-o', 'IdentitiesOnly=yes'] : []),
    '-p',
    String(v.port),
    '-l',
    v.user,
    '-W',
    target,
    v.address,
  ];
}

/**
 * The ProxyCommand hozo builds itself for `via` (a config cannot give one): ssh to the jump host with the same strict
 * options, forwarding stdin/stdout to the box (-W). Every piece is a validated name or absolute path, quoted anyway.
 */
export function viaCommand(host: HostConfig): string {
  return shellJoin(viaArgv(host, '%h:%p'));
}

/** Maps ssh's own failures (exit 255) to typed errors; undefined when stderr is not ssh's. */
export function classifySshFailure(hostName: string, stderr: string): HozoError | undefined {
  const s = stderr;
  const at = `host "${hostName}"`;
  if (/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED|No [A-Z0-9-]+ host key is known/i.test(s)) {
    return new HozoError('SSH_HOST_KEY', `${at}: host key not trusted: ${firstLine(s)}`, {
      hint: 'add the box host key to knownHostsFile (ssh-keyscan, verified out of band); checking is never disabled',
    });
  }
  if (/Permission denied|Too many authentication failures|no such identity/i.test(s)) {
    return new HozoError('SSH_AUTH', `${at}: authentication failed: ${firstLine(s)}`, {
      hint: 'check sshKeyFile and the authorized_keys entry on the box',
    });
  }
  if (
    /Connection refused|No route to host|timed out|Could not resolve|Network is unreachable|Connection closed by|Connection reset|kex_exchange_identification/i.test(
      s,
    )
  ) {
    return new HozoError('HOST_UNREACHABLE', `${at} is unreachable: ${firstLine(s)}`, {
      hint: 'is the box awake and its sshd running? check address/port',
    });
  }
  return undefined;
}

function firstLine(s: string): string {
  return (
    s
      .trim()
      .split('\n')
      .filter((l) => l.trim() !== '')[0] ?? '(no message)'
  );
}

export class SshRunner implements Runner {
  readonly name: string;
  readonly local = false;
  private readonly host: HostConfig;
  private readonly connectTimeout: number;
  private readonly ciphers: string;
  private dir: string | undefined;
  private masterUp = false;
  /** The connect() under way, if any: close() must wait for it, or its master would outlive the run. */
  private connecting: Promise<void> | undefined;

  constructor(target: SshTarget) {
    this.name = target.name;
    this.host = target.host;
    this.connectTimeout = target.connectTimeout ?? 10;
    this.ciphers = target.ciphers ?? PREFERRED_CIPHERS;
  }

  private get controlPath(): string {
    if (this.dir === undefined) this.dir = mkdtempSync(join(tmpdir(), 'hozo-ssh-'));
    return join(this.dir, 'cm');
  }

  /** Options for a client that rides on the master (falls back to its own connection if the master is gone). */
  private clientOptions(): string[] {
    const o = baseSshOptions(this.host, this.connectTimeout, this.ciphers);
    if (this.masterUp) o.push('-o', 'ControlMaster=no', '-o', `ControlPath=${this.controlPath}`);
    return o;
  }

  /** Opens the ControlMaster; throws a typed error (unreachable / auth / host key) when it cannot. A call while one
   *  is under way waits for that one. */
  connect(): Promise<void> {
    if (this.masterUp) return Promise.resolve();
    this.connecting ??= this.openMaster().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async openMaster(): Promise<void> {
    const argv = [
      ...baseSshOptions(this.host, this.connectTimeout, this.ciphers),
      '-o',
      'ControlMaster=yes',
      '-o',
      `ControlPath=${this.controlPath}`,
      // A crashed controller must not leave the master (and the box) up for long.
      '-o',
      'ControlPersist=120',
      '-f',
      '-N',
      this.host.address,
    ];
    const r = await exec('ssh', argv, { timeoutMs: (this.connectTimeout + 20) * 1000 });
    if (r.exitCode !== 0) {
      throw (
        classifySshFailure(this.name, String(r.stderr)) ??
        new HozoError('HOST_UNREACHABLE', `host "${this.name}": ssh failed (exit ${r.exitCode ?? 'signal'}): ${firstLine(String(r.stderr))}`, {
          hint: 'check address, port, user and keys',
        })
      );
    }
    this.masterUp = true;
  }

  commandFor(argv: readonly string[]): string[] {
    return ['ssh', ...this.clientOptions(), this.host.address, '--', shellJoin(argv)];
  }

  async run(argv: readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
    const [cmd, ...args] = this.commandFor(argv);
    const r = await exec(cmd!, args, opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {});
    if (r.exitCode === 255) {
      const e = classifySshFailure(this.name, String(r.stderr));
      if (e !== undefined) throw e;
    }
    return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode };
  }

  async close(): Promise<void> {
    // A master still being opened (the early connection of a run that stopped at once) is closed once it is up.
    await this.connecting?.catch(() => undefined);
    if (this.masterUp) {
      this.masterUp = false;
      await exec('ssh', ['-o', `ControlPath=${this.controlPath}`, '-O', 'exit', this.host.address], { timeoutMs: 10_000 });
    }
    if (this.dir !== undefined) {
      rmSync(this.dir, { recursive: true, force: true });
      this.dir = undefined;
    }
  }
}
