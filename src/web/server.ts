// `hozo serve`: the dashboard (page.ts) and the JSON API under /api/, on the same config, state and job locks as the
// CLI and the timers. It runs no zfs itself: "run now" starts `hozo run <job>` as a child (which takes the job's lock
// like a timer run, and records state, history and metrics the same way), wake and shut down start `hozo wake` /
// `hozo shutdown` and answer with their JSON. Who may ask is guard.ts; bounded everywhere: request bodies, requests per
// client, event-stream clients, a child's output and time.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config, JobConfig } from '../config/schema.js';
import { HozoError } from '../errors.js';
import { jobLockHolder } from '../job/lock.js';
import { readRuns } from '../state/history.js';
import { readProgress, type JobProgress } from '../state/progress.js';
import { formatProgress } from '../pipeline/progress.js';
import type { Logger } from '../util/log.js';
import { collectStatus, type StatusDocument } from '../cli/commands/status-hosts.js';
import { jobsDocument } from '../cli/commands/jobs.js';
import { createGuard, createRateLimit, type Guard } from './guard.js';
import { confirmPage, dashboard, ICON, loginPage, SCRIPT, STYLESHEET, type Notice, type Verb } from './page.js';

export interface ServeOptions {
  readonly config: Config;
  readonly configPath: string;
  readonly host: string;
  readonly port: number;
  /** Required on any address but loopback (the caller checks). */
  readonly token?: string;
  readonly log: Logger;
  /** How to start hozo itself: node and the script that is running now. */
  readonly self: readonly string[];
  /** Seconds a status answer is reused (each one may SSH to every awake box). */
  readonly statusTtl?: number;
}

export interface Served {
  readonly url: string;
  close(): Promise<void>;
}

/** Largest request body (a form with a token, a JSON body): far more than any is. */
export const MAX_BODY = 16 * 1024;
/** Event-stream clients at once. */
export const MAX_EVENT_CLIENTS = 64;
/** A child's stdout kept (its JSON answer). */
const MAX_CHILD_OUTPUT = 1024 * 1024;

const STATUS_OF_CODE: Record<string, number> = {
  UNKNOWN_JOB: 404,
  UNKNOWN_HOST: 404,
  NOT_FOUND: 404,
  USAGE: 400,
  CONFIG_INVALID: 400,
  LOCKED: 409,
  BUSY: 409,
  UNREACHABLE: 502,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  TOO_LARGE: 413,
  RATE_LIMITED: 429,
};

/** "tank/a: 12.0 MiB of 48.0 MiB (25%) 10.0 MiB/s ETA 0:03", as the CLI's progress line. */
const progressText = (p: JobProgress) => formatProgress(p.dataset, p.bytes, p.seconds, p.estimate);

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  // Not no-referrer: under it a browser sends "Origin: null" with the page's own form posts, which the origin check
  // must refuse. same-origin sends nothing to other sites either.
  'referrer-policy': 'same-origin',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
};

function send(res: ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type, 'content-length': String(Buffer.byteLength(body)), ...headers });
  res.end(body);
}
const sendJson = (res: ServerResponse, status: number, value: unknown) => send(res, status, 'application/json', JSON.stringify(value, null, 2) + '\n');
const errorJson = (res: ServerResponse, e: HttpError) =>
  sendJson(res, e.status, { version: 1, error: { code: e.code, message: e.message, ...(e.hint !== undefined ? { hint: e.hint } : {}) } });

/** The body of a request, at most MAX_BODY bytes (413 beyond, also when it claims more up front). */
function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const claimed = Number(req.headers['content-length'] ?? '0');
    if (claimed > MAX_BODY) return reject(new HttpError(413, 'TOO_LARGE', `a request body is at most ${MAX_BODY} bytes`));
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new HttpError(413, 'TOO_LARGE', `a request body is at most ${MAX_BODY} bytes`));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** A path segment as a name: percent-decoded, or undefined when it is not valid encoding. */
function segment(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}

export async function startServer(o: ServeOptions): Promise<Served> {
  const { config, log } = o;
  // Made once the port is known (before the first request): without a token only loopback is served, and only under
  // its own names (a page elsewhere that rebinds a name of its own to 127.0.0.1 gets 421); with one, any Host.
  let guard!: Guard;
  const allowed = createRateLimit();
  const jobsByName = new Map(config.jobs.map((j) => [j.name, j]));
  const hostNames = new Set(Object.keys(config.hosts));
  /** Runs this server started, by job. */
  const running = new Map<string, number>();
  /** Hosts with a wake or shutdown under way. */
  const busyHosts = new Set<string>();
  const notices = new Map<string, Notice>();
  const events = new Set<ServerResponse>();

  let statusAt = 0;
  let statusNow: Promise<StatusDocument> | undefined;
  const status = (): Promise<StatusDocument> => {
    if (statusNow === undefined || Date.now() - statusAt > (o.statusTtl ?? 5) * 1000) {
      statusAt = Date.now();
      statusNow = collectStatus(config, { wake: false, log });
      statusNow.catch(() => (statusAt = 0));
    }
    return statusNow;
  };
  const invalidate = () => (statusAt = 0);

  const broadcast = (event: string, data: unknown) => {
    const text = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const r of events) r.write(text);
  };

  const notice = (n: Notice): string => {
    const id = randomBytes(9).toString('base64url');
    notices.set(id, n);
    if (notices.size > 100) notices.delete(notices.keys().next().value!);
    return id;
  };

  const findJob = (name: string | undefined): JobConfig => {
    const j = name === undefined ? undefined : jobsByName.get(name);
    if (j === undefined) throw new HttpError(404, 'UNKNOWN_JOB', 'no such job');
    return j;
  };
  const findHost = (name: string | undefined): string => {
    if (name === undefined || !hostNames.has(name)) throw new HttpError(404, 'UNKNOWN_HOST', 'no such host');
    return name;
  };

  /** Starts `hozo run <job>`; 409 while a run of it goes on (started here, by a timer or by hand). */
  const startRun = (job: JobConfig): { pid: number } => {
    const holder = running.has(job.name) ? `pid ${running.get(job.name)}` : jobLockHolder(config.stateDirectory, job.name);
    if (holder !== undefined) throw new HttpError(409, 'LOCKED', `job "${job.name}" is already running (${holder})`, 'wait for that run to finish');
    const child = spawn(o.self[0]!, [...o.self.slice(1), '--config', o.configPath, 'run', job.name], { stdio: ['ignore', 'ignore', 'pipe'] });
    const pid = child.pid ?? 0;
    running.set(job.name, pid);
    child.stderr.setEncoding('utf8');
    let tail = '';
    child.stderr.on('data', (d: string) => {
      const lines = (tail + d).split('\n');
      tail = lines.pop()!.slice(-4096);
      for (const l of lines) if (l !== '') log.info(`[run ${job.name}] ${l}`);
    });
    child.on('error', (e) => log.error(`[run ${job.name}] cannot start: ${e.message}`));
    child.on('close', (code, signal) => {
      running.delete(job.name);
      invalidate();
      log.info(`[run ${job.name}] finished: ${signal !== null ? `signal ${signal}` : `exit ${code}`}`);
      broadcast('run', { job: job.name, state: 'finished', exitCode: code, signal });
    });
    invalidate();
    broadcast('run', { job: job.name, state: 'started', pid });
    log.info(`[run ${job.name}] started from the web (pid ${pid})`);
    return { pid };
  };

  /** `hozo --json <verb> <host>`: its JSON and exit code, bounded in time and output. */
  const hostAction = (verb: 'wake' | 'shutdown', host: string): Promise<{ exitCode: number | null; json: unknown }> => {
    if (busyHosts.has(host)) throw new HttpError(409, 'BUSY', `a wake or shutdown of ${host} is under way`);
    busyHosts.add(host);
    return new Promise((resolve) => {
      const child = spawn(o.self[0]!, [...o.self.slice(1), '--config', o.configPath, '--json', verb, host], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (d: string) => {
        if (out.length < MAX_CHILD_OUTPUT) out += d;
      });
      child.stderr.resume();
      const timer = setTimeout(() => child.kill('SIGTERM'), (verb === 'wake' ? 60 : 300) * 1000);
      child.on('close', (code) => {
        clearTimeout(timer);
        busyHosts.delete(host);
        invalidate();
        let json: unknown;
        try {
          json = JSON.parse(out);
        } catch {
          json = { version: 1, error: { code: 'INTERNAL', message: `hozo ${verb} gave no answer (exit ${code})` } };
        }
        broadcast('host', { host, action: verb, exitCode: code });
        resolve({ exitCode: code, json });
      });
    });
  };

  const actionStatus = (r: { exitCode: number | null; json: unknown }): number => {
    if (r.exitCode === 0) return 200;
    const code = (r.json as { error?: { code?: string } })?.error?.code;
    if (code !== undefined) return STATUS_OF_CODE[code] ?? 500;
    return 409; // a host action that answered (refused, failed), exit 1
  };

  const routes = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const parts = url.pathname.split('/').slice(1);
    const method = req.method ?? 'GET';
    const api = parts[0] === 'api';
    const changes = method === 'POST';
    if (method !== 'GET' && method !== 'HEAD' && method !== 'POST') throw new HttpError(405, 'USAGE', `method ${method.slice(0, 20)} is not allowed`);
    if (url.pathname === '/static/hozo.css' && !changes) return send(res, 200, 'text/css; charset=utf-8', STYLESHEET, { 'cache-control': 'max-age=300' });
    if (url.pathname === '/static/hozo.svg' && !changes) return send(res, 200, 'image/svg+xml', ICON, { 'cache-control': 'max-age=86400' });
    if (url.pathname === '/static/hozo.js' && !changes) return send(res, 200, 'text/javascript; charset=utf-8', SCRIPT, { 'cache-control': 'max-age=300' });
    // The login form is the one thing served without the token.
    if (url.pathname === '/login' && changes) {
      const form = new URLSearchParams(await readBody(req));
      const given = form.get('token') ?? '';
      if (!guard.tokenMatches(given)) return send(res, 401, 'text/html; charset=utf-8', loginPage(true));
      return send(res, 303, 'text/plain', 'logged in\n', {
        location: '/',
        'set-cookie': `hozo_token=${encodeURIComponent(given)}; HttpOnly; SameSite=Strict; Path=/`,
      });
    }
    const body = changes ? await readBody(req) : '';
    const form =
      changes && /^application\/x-www-form-urlencoded/.test(req.headers['content-type'] ?? '') ? Object.fromEntries(new URLSearchParams(body)) : undefined;
    const refused = guard.check(req, { changes, ...(form !== undefined ? { form } : {}) });
    if (refused !== undefined) {
      if (refused.status === 401 && !api) return send(res, 401, 'text/html; charset=utf-8', loginPage(false));
      throw new HttpError(refused.status, refused.code, refused.message);
    }
    if (api) {
      const [, a, b, c] = parts;
      if (!changes && a === 'status' && parts.length === 2) return sendJson(res, 200, await status());
      if (!changes && a === 'csrf' && parts.length === 2) return sendJson(res, 200, { version: 1, csrf: guard.csrf });
      if (!changes && a === 'jobs' && parts.length === 2) return sendJson(res, 200, jobsDocument(config));
      if (!changes && a === 'jobs' && c === 'runs' && parts.length === 4) {
        const job = findJob(segment(b!));
        return sendJson(res, 200, { version: 1, job: job.name, runs: readRuns(config.stateDirectory, job.name, (m) => log.warn(m)) });
      }
      if (changes && a === 'jobs' && c === 'run' && parts.length === 4) {
        const job = findJob(segment(b!));
        return sendJson(res, 202, { version: 1, job: job.name, started: true, ...startRun(job) });
      }
      if (changes && a === 'hosts' && (c === 'wake' || c === 'shutdown') && parts.length === 4) {
        const r = await hostAction(c, findHost(segment(b!)));
        return sendJson(res, actionStatus(r), r.json);
      }
      if (!changes && a === 'events' && parts.length === 2) return openEvents(req, res);
      throw new HttpError(404, 'NOT_FOUND', 'no such API path');
    }
    if (!changes && url.pathname === '/') {
      const id = url.searchParams.get('notice');
      const running = new Map<string, string>();
      const progress = new Map<string, string>();
      for (const j of config.jobs) {
        const holder = runningHere(j.name) ?? jobLockHolder(config.stateDirectory, j.name);
        if (holder !== undefined) running.set(j.name, holder);
        const p = holder !== undefined ? readProgress(config.stateDirectory, j.name) : undefined;
        if (p !== undefined) progress.set(j.name, progressText(p));
      }
      const canShutdown = new Set(Object.entries(config.hosts).flatMap(([n, h]) => (h.shutdown !== 'none' ? [n] : [])));
      const n = id !== null ? notices.get(id) : undefined;
      return send(
        res,
        200,
        'text/html; charset=utf-8',
        dashboard({ status: await status(), jobs: config.jobs, running, progress, canShutdown, ...(n !== undefined ? { notice: n } : {}) }),
      );
    }
    if (!changes && parts[0] === 'confirm' && parts.length === 3 && (parts[1] === 'run' || parts[1] === 'wake' || parts[1] === 'shutdown')) {
      const name = segment(parts[2]!);
      const verb = parts[1] as Verb;
      if (verb === 'run') findJob(name);
      else findHost(name);
      return send(res, 200, 'text/html; charset=utf-8', confirmPage(verb, name!, guard.csrf));
    }
    if (
      changes &&
      parts.length === 3 &&
      ((parts[0] === 'jobs' && parts[2] === 'run') || (parts[0] === 'hosts' && (parts[2] === 'wake' || parts[2] === 'shutdown')))
    ) {
      // The forms: do it, then back to the page with what happened (Post/Redirect/Get).
      let n: Notice;
      try {
        if (parts[0] === 'jobs') {
          const job = findJob(segment(parts[1]!));
          const { pid } = startRun(job);
          n = { ok: true, text: `Job ${job.name} started (pid ${pid}); its result shows here when it is done.` };
        } else {
          const host = findHost(segment(parts[1]!));
          const r = await hostAction(parts[2] as 'wake' | 'shutdown', host);
          const j = r.json as { detail?: string; shutdown?: string; shutdownDetail?: string; error?: { message: string } };
          n =
            r.exitCode === 0
              ? {
                  ok: true,
                  text: `${host}: ${parts[2] === 'wake' ? (j.detail ?? 'woken') : `${j.shutdown ?? 'done'}${j.shutdownDetail ? ` (${j.shutdownDetail})` : ''}`}`,
                }
              : { ok: false, text: `${host}: ${j.error?.message ?? j.shutdownDetail ?? j.shutdown ?? `failed (exit ${r.exitCode})`}` };
        }
      } catch (e) {
        if (!(e instanceof HttpError) || e.status === 404) throw e;
        n = { ok: false, text: e.message };
      }
      return send(res, 303, 'text/plain', 'see /\n', { location: `/?notice=${notice(n)}` });
    }
    throw new HttpError(404, 'NOT_FOUND', 'not found');
  };
  const runningHere = (job: string) => (running.has(job) ? `pid ${running.get(job)}, started here` : undefined);

  // Each running job's transfer progress (its progress file, written by any `hozo run`), once a second while someone
  // listens, when it changed.
  const lastProgress = new Map<string, string>();
  const held = new Map<string, boolean>();
  const progressTimer = setInterval(() => {
    if (events.size === 0) return;
    for (const j of config.jobs) {
      // A run this server did not start (a timer's, one by hand): its start and end, from the job lock.
      const now = jobLockHolder(config.stateDirectory, j.name) !== undefined;
      if (!running.has(j.name) && held.has(j.name) && held.get(j.name) !== now) {
        invalidate();
        broadcast('run', { job: j.name, state: now ? 'started' : 'finished' });
      }
      held.set(j.name, now);
      const p = readProgress(config.stateDirectory, j.name);
      if (p === undefined || lastProgress.get(j.name) === p.at) continue;
      lastProgress.set(j.name, p.at);
      broadcast('progress', {
        job: j.name,
        dataset: p.dataset,
        bytes: p.bytes,
        seconds: p.seconds,
        ...(p.estimate !== undefined ? { estimate: p.estimate } : {}),
        text: progressText(p),
      });
    }
  }, 1000);
  progressTimer.unref();

  const openEvents = async (req: IncomingMessage, res: ServerResponse) => {
    if (events.size >= MAX_EVENT_CLIENTS) throw new HttpError(503, 'BUSY', `at most ${MAX_EVENT_CLIENTS} event streams at once`);
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream', connection: 'keep-alive' });
    events.add(res);
    res.write(`event: status\ndata: ${JSON.stringify(await status())}\n\n`);
    const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
    req.on('close', () => {
      clearInterval(ping);
      events.delete(res);
    });
  };

  const server = createServer((req, res) => {
    const client = req.socket.remoteAddress ?? '?';
    const url = new URL(req.url ?? '/', 'http://hozo.invalid');
    const fail = (e: unknown) => {
      const h =
        e instanceof HttpError
          ? e
          : e instanceof HozoError
            ? new HttpError(STATUS_OF_CODE[e.code] ?? 500, e.code, e.message, e.hint)
            : new HttpError(500, 'INTERNAL', 'internal error (see the server log)');
      if (h.status === 500) log.error(`web: ${req.method} ${url.pathname.slice(0, 200)}: ${(e as Error)?.stack ?? String(e)}`);
      if (res.headersSent) return res.destroy();
      errorJson(res, h);
    };
    if (!allowed(client)) return fail(new HttpError(429, 'RATE_LIMITED', 'too many requests; slow down'));
    routes(req, res, url).catch(fail);
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  guard = createGuard(
    o.token !== undefined ? { token: o.token } : { hosts: [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, `${o.host}:${port}`.toLowerCase()] },
  );
  const shown = o.host.includes(':') ? `[${o.host}]` : o.host;
  return {
    url: `http://${shown}:${port}`,
    close: async () => {
      clearInterval(progressTimer);
      for (const r of events) r.end();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
    },
  };
}
