// One hozo-agent process for a whole run: the control requests (prepare, capabilities, hold, list, status, release,
// shutdown, …) go as lines over one `session` SSH call (agent/session.ts) instead of one SSH call — and one agent
// start-up, ~3 s on a small box — each. The streams (receive, send) keep their own call: commandFor is the inner
// runner's. An agent without sessions (older), a session that cannot start, or one that ends before answering sends
// the requests it had not answered as single calls; nothing is lost and nothing is sent twice that was answered.
import { spawn, type ChildProcess } from 'node:child_process';
import type { CommandResult, RunOptions, Runner } from './runner.js';
import { parseSessionFrame } from '../protocol/agent.js';

/** The agent verbs that may go through a session (agent/session.ts refuses the others). */
export const SESSION_VERBS: ReadonlySet<string> = new Set([
  'version',
  'capabilities',
  'list',
  'abort-receive',
  'status',
  'prepare',
  'hold',
  'release',
  'shutdown',
  'prune',
]);

/** The agent's answer for a session it does not know (exit 2 before any answer): an older agent. */
const REFUSED = 2;
/** ssh's own failure. */
const SSH_FAILED = 255;

interface Pending {
  readonly argv: readonly string[];
  readonly opts: RunOptions;
  readonly resolve: (r: CommandResult) => void;
  readonly reject: (e: unknown) => void;
  timer?: NodeJS.Timeout;
}

export interface SessionCapable extends Runner {
  connect?(): Promise<void>;
}

export class AgentSessionRunner implements Runner {
  readonly name: string;
  readonly local = false;
  /** 'off': single calls for the rest of the run (no sessions on this agent, or one broke). */
  private mode: 'auto' | 'off' = 'auto';
  private child: ChildProcess | undefined;
  private pending = new Map<number, Pending>();
  private nextId = 1;
  private answeredAny = false;
  private stderr = '';
  /** How many sessions this runner opened (a figure for logs and tests). */
  sessionsOpened = 0;
  /** Requests answered through a session / sent as single calls. */
  viaSession = 0;
  single = 0;

  constructor(readonly inner: SessionCapable) {
    this.name = inner.name;
  }

  connect(): Promise<void> {
    return this.inner.connect?.() ?? Promise.resolve();
  }

  commandFor(argv: readonly string[]): string[] {
    return this.inner.commandFor(argv);
  }

  run(argv: readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
    // A token with a space or a line break would change meaning on a line; as a single call the agent refuses it.
    if (this.mode === 'off' || !SESSION_VERBS.has(argv[0] ?? '') || argv.some((t) => t === '' || /\s/.test(t))) return this.runSingle(argv, opts);
    const child = this.child ?? this.open();
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      const p: Pending = { argv, opts, resolve, reject };
      if (opts.timeoutMs !== undefined) {
        p.timer = setTimeout(() => {
          // The agent answers in order: a stuck request holds up the rest. Give up on this session for the run.
          this.pending.delete(id);
          resolve({ stdout: '', stderr: `hozo-agent session: no answer to "${argv[0]}" within ${opts.timeoutMs} ms\n`, exitCode: null });
          this.mode = 'off';
          child.kill('SIGTERM');
        }, opts.timeoutMs);
      }
      this.pending.set(id, p);
      child.stdin!.write(`${id} ${argv.join(' ')}\n`);
    });
  }

  private runSingle(argv: readonly string[], opts: RunOptions): Promise<CommandResult> {
    this.single++;
    return this.inner.run(argv, opts);
  }

  private open(): ChildProcess {
    const [cmd, ...args] = this.inner.commandFor(['session']);
    const child = spawn(cmd!, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    this.sessionsOpened++;
    this.answeredAny = false;
    this.stderr = '';
    let buffer = '';
    child.stdin!.on('error', () => undefined);
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (t: string) => {
      if (this.stderr.length < 8192) this.stderr += t;
    });
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (t: string) => {
      buffer += t;
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        const frame = parseSessionFrame(line);
        if (frame === undefined || frame.id === 0) {
          // Not the protocol, or the agent ended the session: what is unanswered is answered by single calls.
          this.mode = 'off';
          child.kill('SIGTERM');
          return;
        }
        const p = this.pending.get(frame.id);
        if (p === undefined) continue;
        this.pending.delete(frame.id);
        clearTimeout(p.timer);
        this.answeredAny = true;
        this.viaSession++;
        p.resolve({ stdout: frame.stdout, stderr: frame.stderr, exitCode: frame.exit });
      }
    });
    const ended = (code: number | null) => {
      if (this.child !== child) return;
      this.child = undefined;
      // An agent that does not know `session` refuses it before answering anything: single calls from now on.
      if (!this.answeredAny && code === REFUSED && /unknown verb/.test(this.stderr)) this.mode = 'off';
      // Anything else (idle end, ssh failure, a crash) leaves unanswered requests: they go as single calls, which
      // also report a dead connection with ssh's own typed error. A later request opens a new session unless the
      // session broke the protocol.
      else if (code !== 0 && code !== SSH_FAILED && code !== null && this.answeredAny) this.mode = 'off';
      const unanswered = [...this.pending.values()];
      this.pending.clear();
      for (const p of unanswered) {
        clearTimeout(p.timer);
        this.runSingle(p.argv, p.opts).then(p.resolve, p.reject);
      }
    };
    child.on('error', () => ended(null));
    child.on('close', (code) => ended(code));
    return child;
  }

  /** Ends the session (the agent exits when its stdin closes), then the inner runner. */
  async close(): Promise<void> {
    const child = this.child;
    if (child !== undefined) {
      await new Promise<void>((done) => {
        const t = setTimeout(() => {
          child.kill('SIGTERM');
          done();
        }, 5000);
        child.once('close', () => {
          clearTimeout(t);
          done();
        });
        child.stdin!.end();
      });
    }
    await this.inner.close();
  }
}
