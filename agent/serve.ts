// `hozo-agent serve`, the SSH forced command: one request per SSH call, taken from SSH_ORIGINAL_COMMAND, or with
// `session` many control requests over one call (agent/session.ts). A refusal does nothing at all (no zfs, no files
// but the audit log line) and exits 2.
import { HozoError } from '../src/errors.js';
import { PROTOCOL, parseCommand, printable, type Request } from './command.js';
import { AgentExit, type AgentContext } from './context.js';
import { hold, release, shutdown } from './lifecycle.js';
import { list } from './list.js';
import { prune } from './prune.js';
import { prepare, status, AGENT_PROTOCOL_VERSION } from './status.js';
import { abortReceive, capabilities, receive, send } from './streams.js';
import { runSession } from './session.js';

export const AGENT_VERSION = '0.1.0';

async function dispatch(ctx: AgentContext, req: Request, lastActivity: number | undefined): Promise<number> {
  switch (req.verb) {
    case 'version':
      ctx.out(JSON.stringify({ agent: 'hozo-agent', version: AGENT_VERSION, protocol: AGENT_PROTOCOL_VERSION, verbs: Object.values(PROTOCOL) }) + '\n');
      return AgentExit.OK;
    case 'capabilities':
      return capabilities(ctx);
    case 'list':
      return list(ctx, req.datasets);
    case 'receive':
      return receive(ctx, req);
    case 'abort-receive':
      return abortReceive(ctx, req);
    case 'send':
      return send(ctx, req);
    case 'status':
      return status(ctx, lastActivity);
    case 'prepare':
      return prepare(ctx);
    case 'hold':
      return hold(ctx, req);
    case 'release':
      return release(ctx, req);
    case 'shutdown':
      return shutdown(ctx);
    case 'prune':
      return prune(ctx, req.dryRun);
    case 'session':
      return runSession(ctx, process.stdin, (t) => void process.stdout.write(t), handle);
  }
}

/** Handles one SSH call; returns the exit code. `original` is SSH_ORIGINAL_COMMAND (undefined when unset). */
export function serve(ctx: AgentContext, original: string | undefined): Promise<number> {
  return handle(ctx, original);
}

/** One request, from SSH_ORIGINAL_COMMAND or a session line: parsed, logged, carried out. `inSession` refuses the
 *  verbs that need the call's own stdin/stdout (the streams) or would nest. */
export async function handle(ctx: AgentContext, original: string | undefined, inSession = false): Promise<number> {
  const parsed = parseCommand(original, ctx.config);
  if (parsed.ok && inSession && (parsed.request.verb === 'receive' || parsed.request.verb === 'send' || parsed.request.verb === 'session')) {
    const reason = `${parsed.request.verb} is not accepted inside a session (${parsed.request.verb === 'session' ? 'no nesting' : 'a stream needs an SSH call of its own'})`;
    ctx.log.write(`refused ${printable(original!, 200)}: ${reason}`);
    ctx.err(`hozo-agent: refused: ${reason}\n`);
    return AgentExit.REFUSED;
  }
  if (!parsed.ok) {
    ctx.log.write(`refused ${original === undefined ? '(no command)' : printable(original, 200)}: ${parsed.reason}`);
    ctx.err(`hozo-agent: refused: ${parsed.reason}\n`);
    return AgentExit.REFUSED;
  }
  const req = parsed.request;
  const lastActivity = ctx.state.lastActivity();
  // Read-only look-ups (monitoring, `hozo status`) must not keep the box awake; everything else is a controller at work.
  // A session counts through its requests, not by being open.
  const active = req.verb !== 'status' && req.verb !== 'version' && req.verb !== 'session';
  if (active) ctx.state.touchActivity();
  const t0 = Date.now();
  let code: number;
  try {
    code = await dispatch(ctx, req, lastActivity);
  } catch (e) {
    const err = e instanceof HozoError ? e : undefined;
    const message = (e as Error).message ?? String(e);
    ctx.err(`hozo-agent: ${req.verb} failed: ${message}\n${err?.hint !== undefined ? `hint: ${err.hint}\n` : ''}`);
    code = err !== undefined && (err.code === 'USAGE' || err.code === 'INVALID_DATASET_NAME') ? AgentExit.REFUSED : AgentExit.FAILED;
  } finally {
    // A long receive counts as activity until it ends.
    if (active) ctx.state.touchActivity();
  }
  ctx.log.write(`${printable(original!, 200)} → exit ${code} (${Date.now() - t0} ms)`);
  return code;
}
