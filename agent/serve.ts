// `hozo-agent serve`, the SSH forced command: one request per SSH call, taken from SSH_ORIGINAL_COMMAND, or with
// `session` many control requests over one call (agent/session.ts). A refusal does nothing at all (no zfs, no files
// but the audit log line) and exits 2.
import { HozoError } from '../src/errors.js';
import { AGENT_PROTOCOL_VERSION, PROTOCOL, parseCommand, printable, type Request } from './command.js';
import { AgentExit, type AgentContext } from './context.js';

export const AGENT_VERSION = '0.1.0';

// Each verb's module is loaded when the verb is asked for: a `receive` call starts the agent (node) once per stream,
// and on a slow box (the OpenZFS lab's VMs, a Raspberry Pi) every module less is start-up time saved (docs/bench.md).
async function dispatch(ctx: AgentContext, req: Request, lastActivity: number | undefined): Promise<number> {
  switch (req.verb) {
    case 'version':
      ctx.out(JSON.stringify({ agent: 'hozo-agent', version: AGENT_VERSION, protocol: AGENT_PROTOCOL_VERSION, verbs: Object.values(PROTOCOL) }) + '\n');
      return AgentExit.OK;
    case 'capabilities':
      return (await import('./streams.js')).capabilities(ctx);
    case 'list':
      return (await import('./list.js')).list(ctx, req.datasets);
    case 'receive':
      return (await import('./streams.js')).receive(ctx, req);
    case 'abort-receive':
      return (await import('./streams.js')).abortReceive(ctx, req);
    case 'send':
      return (await import('./streams.js')).send(ctx, req);
    case 'status':
      return (await import('./status.js')).status(ctx, lastActivity);
    case 'prepare':
      return (await import('./status.js')).prepare(ctx);
    case 'hold':
      return (await import('./lifecycle.js')).hold(ctx, req);
    case 'release':
      return (await import('./lifecycle.js')).release(ctx, req);
    case 'shutdown':
      return (await import('./lifecycle.js')).shutdown(ctx);
    case 'prune':
      return (await import('./prune.js')).prune(ctx, req.dryRun);
    case 'session':
      return (await import('./session.js')).runSession(ctx, process.stdin, (t) => void process.stdout.write(t), handle);
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
