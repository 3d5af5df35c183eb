// `session`: many control requests over one SSH call, so a run starts the agent (node, ~3 s on a small box) once
// instead of once per request. Each stdin line is "<id> <request>", the request exactly what SSH_ORIGINAL_COMMAND
// would carry; it is parsed, confined, logged and carried out by the same handler, one at a time, in order. Each
// answer is one JSON line {"id","exit","stdout","stderr"}. The streams (receive, send) keep their own SSH call, and
// a session cannot be nested: a session grants nothing a series of single calls would not.
//
// Bounded: a line longer than a request may be, more than SESSION_MAX_REQUESTS requests, or a malformed line ends
// the session (an answer with id 0 says why, exit 2); an idle session ends after sessionIdleSeconds (agent config,
// default 600; the controller opens a new one when it needs one).
import type { Readable } from 'node:stream';
import { MAX_COMMAND_LENGTH, printable } from './command.js';
import type { SessionFrame } from '../src/protocol/agent.js';
import { AgentExit, type AgentContext } from './context.js';

export const SESSION_MAX_REQUESTS = 10_000;
/** Request ids: 1..999999999 (0 is the session's own answer). */
const ID = /^[1-9][0-9]{0,8}$/;
const MAX_LINE = MAX_COMMAND_LENGTH + 16;

export type { SessionFrame };

export type RequestHandler = (ctx: AgentContext, original: string, inSession: boolean) => Promise<number>;

export interface SessionOptions {
  readonly idleMs?: number;
  readonly maxRequests?: number;
}

/** Serves requests from `input` until it ends, goes idle, or breaks the protocol; resolves with the exit code. */
export function runSession(
  ctx: AgentContext,
  input: Readable,
  write: (text: string) => void,
  handle: RequestHandler,
  opts: SessionOptions = {},
): Promise<number> {
  const idleMs = opts.idleMs ?? ctx.config.sessionIdleSeconds * 1000;
  const maxRequests = opts.maxRequests ?? SESSION_MAX_REQUESTS;
  ctx.log.write('session started');
  return new Promise((resolve) => {
    let buffer = '';
    const lines: string[] = [];
    let received = 0;
    let answered = 0;
    let busy = false;
    let ended = false;
    let done = false;
    let idle: NodeJS.Timeout | undefined;

    const finish = (code: number, why: string) => {
      if (done) return;
      done = true;
      clearTimeout(idle);
      input.removeAllListeners('data');
      input.destroy();
      ctx.log.write(`session ended: ${why} (${answered} requests) → exit ${code}`);
      resolve(code);
    };
    /** A protocol violation: say why (id 0) and end; requests already answered stand, queued ones are dropped. */
    const violation = (reason: string) => {
      if (done) return;
      write(JSON.stringify({ id: 0, exit: AgentExit.REFUSED, stdout: '', stderr: `hozo-agent: session refused: ${reason}\n` } satisfies SessionFrame) + '\n');
      finish(AgentExit.REFUSED, `refused: ${reason}`);
    };
    const armIdle = () => {
      clearTimeout(idle);
      idle = setTimeout(() => {
        if (!busy && lines.length === 0) finish(AgentExit.OK, `idle for ${Math.round(idleMs / 1000)} s`);
      }, idleMs);
    };

    const pump = async () => {
      if (busy || done) return;
      busy = true;
      clearTimeout(idle);
      while (lines.length > 0 && !done) {
        const line = lines.shift()!;
        const sp = line.indexOf(' ');
        const id = sp < 0 ? line : line.slice(0, sp);
        if (!ID.test(id) || sp < 0) {
          violation(`malformed line ${printable(line, 60)} (expected "<id> <request>", id 1-999999999)`);
          break;
        }
        let stdout = '';
        let stderr = '';
        const sub: AgentContext = { ...ctx, out: (t) => void (stdout += t), err: (t) => void (stderr += t) };
        let exit: number;
        try {
          exit = await handle(sub, line.slice(sp + 1), true);
        } catch (e) {
          exit = AgentExit.FAILED;
          stderr += `hozo-agent: internal error: ${(e as Error).message}\n`;
        }
        answered++;
        if (!done) write(JSON.stringify({ id: Number(id), exit, stdout, stderr } satisfies SessionFrame) + '\n');
      }
      busy = false;
      if (done) return;
      if (ended) finish(AgentExit.OK, 'closed by the controller');
      else armIdle();
    };

    input.setEncoding('utf8');
    input.on('data', (chunk: string) => {
      if (done) return;
      buffer += chunk;
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (line.length > MAX_LINE) return violation(`a line of ${line.length} characters (at most ${MAX_LINE})`);
        if (++received > maxRequests) return violation(`more than ${maxRequests} requests in one session`);
        lines.push(line);
      }
      if (buffer.length > MAX_LINE) return violation(`a line of more than ${MAX_LINE} characters`);
      void pump();
    });
    input.on('end', () => {
      ended = true;
      // An unfinished last line (no newline) is not a request.
      if (buffer !== '') ctx.log.write(`session: dropped an unfinished line ${printable(buffer, 60)}`);
      void pump();
    });
    input.on('error', () => {
      ended = true;
      void pump();
    });
    armIdle();
  });
}
