// `hozo-agent session` (agent/session.ts) with the real request handler and a scripted box: many requests over one
// call, answered in order with their ids; the same refusals as single calls; streams and nesting refused; protocol
// violations and limits end the session. Then the controller's AgentSessionRunner against a real process speaking
// the protocol (the built agent binary, run as a forced command would run it), and its fallback to single calls.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runSession, type SessionFrame } from '../../agent/session.js';
import { handle } from '../../agent/serve.js';
import { AgentSessionRunner } from '../../src/transport/agent-session.js';
import { LocalRunner } from '../../src/transport/local.js';
import type { CommandResult, Runner } from '../../src/transport/runner.js';
import { harness, HOSTILE, type Harness } from '../helpers/agent-harness.js';

/** Runs a session over `lines` (written at once, then stdin closes unless `keepOpen`); the frames and exit code. */
async function session(h: Harness, lines: readonly string[], opts: { keepOpen?: boolean; idleMs?: number; maxRequests?: number } = {}) {
  const input = new PassThrough();
  let written = '';
  const done = runSession(h.ctx, input, (t) => void (written += t), handle, {
    ...(opts.idleMs !== undefined ? { idleMs: opts.idleMs } : {}),
    ...(opts.maxRequests !== undefined ? { maxRequests: opts.maxRequests } : {}),
  });
  for (const l of lines) input.write(l);
  if (opts.keepOpen !== true) input.end();
  const code = await done;
  const frames = written
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as SessionFrame);
  return { code, frames };
}

describe('agent session: many requests over one call', () => {
  it('answers each request in order, with its id, as the single call would (same stdout and exit code)', async () => {
    const h = harness();
    const { code, frames } = await session(h, [
      '1 version\n',
      '2 prepare\n',
      '3 hold nightly 600\n',
      '4 list backup/kraken\n',
      '5 status\n',
      '6 release nightly\n',
    ]);
    expect(code).toBe(0);
    // `list` is unscripted in this box: zfs fails, and the session passes that on like any answer.
    expect(frames.map((f) => [f.id, f.exit])).toEqual([
      [1, 0],
      [2, 0],
      [3, 0],
      [4, 1],
      [5, 0],
      [6, 0],
    ]);
    expect(JSON.parse(frames[0]!.stdout)).toMatchObject({ agent: 'hozo-agent', verbs: expect.arrayContaining(['session']) });
    expect(JSON.parse(frames[2]!.stdout)).toMatchObject({ held: true, leases: ['nightly'] });
    expect(JSON.parse(frames[4]!.stdout)).toMatchObject({ leases: [expect.objectContaining({ id: 'nightly' })] });
    expect(JSON.parse(frames[5]!.stdout)).toMatchObject({ released: true, leases: [] });
    // The same exit codes and stderr as single calls on a fresh box, the same stdout where no clock is in it.
    const single = harness();
    for (const [i, req] of ['version', 'prepare', 'hold nightly 600', 'list backup/kraken'].entries()) {
      single.out.length = 0;
      single.err.length = 0;
      expect(await handle(single.ctx, req)).toBe(frames[i]!.exit);
      expect(single.err.join('')).toBe(frames[i]!.stderr);
      if (!req.startsWith('hold')) expect(single.out.join('')).toBe(frames[i]!.stdout);
    }
    // Audit log: the session, each request, the end.
    const log = readFileSync(h.ctx.config.logFile, 'utf8').trim().split('\n');
    expect(log[0]).toMatch(/session started$/);
    expect(log.filter((l) => / → exit \d \(\d+ ms\)$/.test(l))).toHaveLength(6);
    expect(log.at(-1)).toMatch(/session ended: closed by the controller \(6 requests\) → exit 0$/);
  });

  it('a failing request is answered with its exit code and stderr; the session goes on', async () => {
    const h = harness();
    const { code, frames } = await session(h, ['7 list backup/other\n', '8 release nobody\n', '9 version\n']);
    expect(code).toBe(0);
    expect(frames[0]).toMatchObject({ id: 7, exit: 2, stdout: '' });
    expect(frames[0]!.stderr).toMatch(/refused: dataset "backup\/other" is outside the backup roots/);
    expect(frames.map((f) => f.id)).toEqual([7, 8, 9]);
    expect(frames[2]!.exit).toBe(0);
  });

  const hostileOnALine = HOSTILE.filter(([, cmd]) => cmd !== undefined && !cmd.includes('\n') && cmd.trim() !== '' && cmd.length < 1000);
  it(`refuses the hostile requests (${hostileOnALine.length} that fit on a line) exactly as single calls: exit 2, nothing run, no state changed`, async () => {
    const h = harness();
    h.state.hold('existing', 600);
    const before = h.files().filter((f) => !f.endsWith('agent.log'));
    const { code, frames } = await session(
      h,
      hostileOnALine.map(([, cmd], i) => `${i + 1} ${cmd}\n`),
    );
    expect(code).toBe(0);
    expect(frames).toHaveLength(hostileOnALine.length);
    for (const [i, f] of frames.entries()) {
      expect({ name: hostileOnALine[i]![0], id: f.id, exit: f.exit, stdout: f.stdout }).toEqual({
        name: hostileOnALine[i]![0],
        id: i + 1,
        exit: 2,
        stdout: '',
      });
      expect(f.stderr).toMatch(/^hozo-agent: refused: [^\n]+\n$/);
    }
    expect(h.runner.calls).toEqual([]);
    expect(h.streams).toEqual([]);
    expect(h.files().filter((f) => !f.endsWith('agent.log'))).toEqual(before);
    expect(h.state.leases().map((l) => l.id)).toEqual(['existing']);
  });

  it('receive, send and a nested session are refused inside a session (a stream needs its own call): nothing runs', async () => {
    const h = harness();
    const { frames } = await session(h, ['1 receive -u backup/kraken/x\n', '2 send backup/kraken/x@s1\n', '3 session\n']);
    expect(frames.map((f) => f.exit)).toEqual([2, 2, 2]);
    expect(frames[0]!.stderr).toMatch(/receive is not accepted inside a session \(a stream needs an SSH call of its own\)/);
    expect(frames[2]!.stderr).toMatch(/no nesting/);
    expect(h.streams).toEqual([]);
    expect(h.runner.calls).toEqual([]);
  });

  it('a malformed line ends the session (id 0 says why, exit 2); requests after it are not run', async () => {
    for (const bad of ['version\n', '0 version\n', '-1 version\n', 'x1 version\n', '1234567890 version\n', '1\n', ' 1 version\n']) {
      const h = harness();
      const { code, frames } = await session(h, ['1 version\n', bad, '3 hold late 600\n']);
      expect({ bad, code }).toEqual({ bad, code: 2 });
      expect(frames.map((f) => f.id)).toEqual([1, 0]);
      expect(frames[1]!.stderr).toMatch(/session refused: malformed line/);
      expect(h.state.leases()).toEqual([]);
    }
  });

  it('a line longer than a request may be ends the session, even without a newline (bounded memory)', async () => {
    const h = harness();
    const { code, frames } = await session(h, [`1 list ${'a'.repeat(40_000)}`], { keepOpen: true });
    expect(code).toBe(2);
    expect(frames).toEqual([expect.objectContaining({ id: 0, exit: 2 })]);
    expect(frames[0]!.stderr).toMatch(/a line of more than \d+ characters/);
  });

  it('more than maxRequests requests end the session', async () => {
    const h = harness();
    const { code, frames } = await session(
      h,
      Array.from({ length: 6 }, (_, i) => `${i + 1} version\n`),
      { maxRequests: 4 },
    );
    expect(code).toBe(2);
    expect(frames.at(-1)).toMatchObject({ id: 0, exit: 2 });
    expect(frames.at(-1)!.stderr).toMatch(/more than 4 requests/);
    expect(frames.filter((f) => f.id !== 0).length).toBeLessThanOrEqual(4);
  });

  it('an idle session ends by itself (exit 0); an unfinished last line is not run', async () => {
    const h = harness();
    const t = Date.now();
    const { code, frames } = await session(h, ['1 version\n', '2 hold unfinished 600'], { keepOpen: true, idleMs: 200 });
    expect(code).toBe(0);
    expect(Date.now() - t).toBeLessThan(5000);
    expect(frames.map((f) => f.id)).toEqual([1]);
    expect(h.state.leases()).toEqual([]);
    expect(readFileSync(h.ctx.config.logFile, 'utf8')).toMatch(/session ended: idle for 0 s \(1 requests\)/);
  });

  it('status and version in a session do not count as activity; the session being open does not either', async () => {
    const h = harness();
    await session(h, ['1 status\n', '2 version\n']);
    expect(h.state.lastActivity()).toBeUndefined();
    await session(h, ['1 list backup/kraken\n']);
    expect(h.state.lastActivity()).toBeDefined();
  });
});

// --- the controller side ---------------------------------------------------------------------------------------

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const MAIN = join(ROOT, 'dist', 'bin', 'agent', 'hozo-agent.js');
const built = existsSync(MAIN);
if (!built) console.warn(`SKIP: AgentSessionRunner against the built agent: ${MAIN} is missing (npm run build)`);

/** The built agent as sshd's forced command would run it (SSH_ORIGINAL_COMMAND = the request), on this machine. */
class ForcedCommandRunner implements Runner {
  readonly name = 'box';
  readonly local = false;
  readonly singles: string[] = [];
  private readonly here = new LocalRunner({ defaultTimeoutMs: 30_000 });
  constructor(
    private readonly config: string,
    private readonly agentArgv: readonly string[] = [process.execPath, MAIN],
  ) {}
  commandFor(argv: readonly string[]): string[] {
    return ['env', `SSH_ORIGINAL_COMMAND=${argv.join(' ')}`, ...this.agentArgv, 'serve', '--config', this.config];
  }
  run(argv: readonly string[]): Promise<CommandResult> {
    this.singles.push(argv.join(' '));
    return this.here.run(this.commandFor(argv));
  }
  async close(): Promise<void> {}
}

function agentConfig(dir: string, extra: Record<string, unknown> = {}): string {
  const path = join(dir, 'agent.json');
  // No pools: version, hold, release and status need none; nothing here touches ZFS.
  writeFileSync(
    path,
    JSON.stringify({
      roots: ['nopool/kraken'],
      pools: [],
      stateDirectory: join(dir, 'state'),
      leaseDirectory: join(dir, 'state', 'leases'),
      poweroffCommand: ['false'],
      ...extra,
    }),
  );
  return path;
}

describe.skipIf(!built)('AgentSessionRunner (controller) with the built agent binary as a forced command', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'hozo-session-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('one agent process answers every control request of a run; the stream verbs stay single calls', async () => {
    const inner = new ForcedCommandRunner(agentConfig(dir));
    const r = new AgentSessionRunner(inner);
    // Side by side, as bringUp and listAndHealth issue them.
    const [v, h1, st] = await Promise.all([r.run(['version']), r.run(['hold', 'ctl.nightly', '600']), r.run(['status'])]);
    expect(v.exitCode).toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({ agent: 'hozo-agent', verbs: expect.arrayContaining(['session']) });
    expect(JSON.parse(h1.stdout)).toMatchObject({ held: true });
    expect(JSON.parse(st.stdout)).toMatchObject({ leases: [expect.objectContaining({ id: 'ctl.nightly' })] });
    const refused = await r.run(['list', 'elsewhere/x']);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toMatch(/outside the backup roots/);
    const rel = await r.run(['release', 'ctl.nightly']);
    expect(JSON.parse(rel.stdout)).toMatchObject({ released: true, leases: [] });
    expect(r.sessionsOpened).toBe(1);
    expect(r.viaSession).toBe(5);
    expect(inner.singles).toEqual([]);
    // A stream is never put on a line.
    expect(r.commandFor(['receive', '-u', 'nopool/kraken/x'])).toEqual(inner.commandFor(['receive', '-u', 'nopool/kraken/x']));
    await r.close();
    const log = readFileSync(join(dir, 'state', 'agent.log'), 'utf8');
    expect(log.match(/session started/g)).toHaveLength(1);
    expect(log).toMatch(/session ended: closed by the controller \(5 requests\)/);
  });

  it('a token with a space or line break is never put on a line: it goes as a single call, which the agent refuses', async () => {
    const inner = new ForcedCommandRunner(agentConfig(dir));
    const r = new AgentSessionRunner(inner);
    const x = await r.run(['hold', 'a\n2 release b', '600']);
    expect(x.exitCode).toBe(2);
    expect(inner.singles).toEqual(['hold a\n2 release b 600']);
    expect(r.sessionsOpened).toBe(0);
    await r.close();
  });

  it('an agent without sessions (fake older agent: a script that refuses the verb) gets single calls, once tried', async () => {
    const old = join(dir, 'old-agent.sh');
    // Refuses `session` the way an agent of before this verb did; passes everything else to the real agent.
    writeFileSync(
      old,
      `#!/bin/sh\nif [ "$SSH_ORIGINAL_COMMAND" = session ]; then echo 'hozo-agent: refused: unknown verb "session" (allowed: version, …)' >&2; exit 2; fi\nexec ${process.execPath} ${MAIN} "$@"\n`,
      { mode: 0o755 },
    );
    const inner = new ForcedCommandRunner(agentConfig(dir), [old]);
    const r = new AgentSessionRunner(inner);
    const [a, b] = await Promise.all([r.run(['version']), r.run(['hold', 'x', '60'])]);
    expect([a.exitCode, b.exitCode]).toEqual([0, 0]);
    expect(await r.run(['release', 'x'])).toMatchObject({ exitCode: 0 });
    expect(r.sessionsOpened).toBe(1);
    expect(inner.singles.sort()).toEqual(['hold x 60', 'release x', 'version']);
    await r.close();
  });

  it('a session the agent ends while idle is opened again for the next request', async () => {
    const inner = new ForcedCommandRunner(agentConfig(dir, { sessionIdleSeconds: 1 }));
    const r = new AgentSessionRunner(inner);
    expect((await r.run(['version'])).exitCode).toBe(0);
    await new Promise((res) => setTimeout(res, 2500));
    expect(readFileSync(join(dir, 'state', 'agent.log'), 'utf8')).toMatch(/session ended: idle for 1 s \(1 requests\)/);
    expect((await r.run(['version'])).exitCode).toBe(0);
    expect(r.sessionsOpened).toBe(2);
    expect(inner.singles).toEqual([]);
    await r.close();
  });
});
