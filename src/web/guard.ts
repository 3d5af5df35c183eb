// Who may ask `hozo serve` what: the token (from a file, compared in constant time), the Host header (a page reached
// through another name — DNS rebinding — is refused), the same-origin check and CSRF token of state-changing requests,
// and a request rate per client. Pure functions and small state; server.ts applies them to each request.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';

/** Equal strings, in time that does not depend on where they differ (both hashed first: lengths may differ). */
export function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b) && given.length === expected.length;
}

/** A loopback address (127.0.0.0/8, ::1, localhost): the default, and the only one served without a token. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  return isIP(h) === 4 && h.startsWith('127.');
}

/** `127.0.0.1:8480`, `[::1]:8480`, `0.0.0.0:80` → host and port; undefined when it is not that shape. */
export function parseListen(listen: string): { host: string; port: number } | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(listen);
  if (m === null) return undefined;
  const port = Number(m[2]);
  if (port > 65535) return undefined; // 0: any free port (the log says which)
  const host = m[1]!.replace(/^\[|\]$/g, '');
  if (isIP(host) === 0 && host !== 'localhost') return undefined;
  return { host, port };
}

const header = (req: IncomingMessage, name: string): string | undefined => {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
};

/** The token a request carries: `Authorization: Bearer …`, or the cookie the login form set. */
export function tokenOf(req: IncomingMessage): string | undefined {
  const auth = header(req, 'authorization');
  const bearer = auth !== undefined ? /^Bearer (\S{1,512})$/.exec(auth)?.[1] : undefined;
  if (bearer !== undefined) return bearer;
  const cookie = header(req, 'cookie') ?? '';
  for (const part of cookie.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === 'hozo_token') {
      try {
        return decodeURIComponent(v.join('='));
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

export interface Guard {
  /** The CSRF token of the page's forms (and of `X-Hozo-CSRF`): one per server process. */
  readonly csrf: string;
  /** undefined: the request may be answered; otherwise the status and message to refuse it with. */
  check(req: IncomingMessage, opts: { readonly changes: boolean; readonly form?: Record<string, string> }): Refusal | undefined;
  /** Whether `given` is the token (the login form). */
  tokenMatches(given: string): boolean;
}

export interface Refusal {
  readonly status: number;
  readonly code: string;
  readonly message: string;
}

/** The host:port of an Origin header ("http://127.0.0.1:8480" → "127.0.0.1:8480"); undefined for "null" or junk. */
function originHost(origin: string): string | undefined {
  try {
    const u = new URL(origin);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.host.toLowerCase() : undefined;
  } catch {
    return undefined;
  }
}

/**
 * `token`: what every request must carry (absent: none needed, loopback only). `hosts`: the Host header values this
 * server answers to; absent: any (with a token, which is the gate then).
 */
export function createGuard(opts: { readonly token?: string; readonly hosts?: readonly string[] }): Guard {
  const csrf = createHmac('sha256', randomBytes(32)).update('csrf').digest('base64url');
  const hosts = opts.hosts === undefined ? undefined : new Set(opts.hosts.map((h) => h.toLowerCase()));
  const tokenMatches = (given: string) => opts.token !== undefined && sameSecret(given, opts.token);
  return {
    csrf,
    tokenMatches,
    check(req, c) {
      const host = (header(req, 'host') ?? '').toLowerCase();
      // A name that is not this server's (DNS rebinding: a page elsewhere whose name now points at 127.0.0.1).
      if (hosts !== undefined && !hosts.has(host))
        return { status: 421, code: 'USAGE', message: `this server does not answer to the host name ${JSON.stringify(host.slice(0, 100))}` };
      const token = tokenOf(req);
      if (opts.token !== undefined && (token === undefined || !tokenMatches(token)))
        return { status: 401, code: 'UNAUTHORIZED', message: 'a token is needed (Authorization: Bearer …, or log in on the page)' };
      if (!c.changes) return undefined;
      // A browser says where a request comes from: another origin (a page elsewhere posting here) is refused.
      const origin = header(req, 'origin');
      if (origin !== undefined && originHost(origin) !== host) return { status: 403, code: 'FORBIDDEN', message: 'a request from another origin is refused' };
      const site = header(req, 'sec-fetch-site');
      if (site !== undefined && site !== 'same-origin' && site !== 'none')
        return { status: 403, code: 'FORBIDDEN', message: 'a cross-site request is refused' };
      // The bearer token itself (a client that has it needs nothing more), or the CSRF token only this server's pages
      // carry (a page elsewhere cannot read it).
      const bearer = opts.token !== undefined && /^Bearer /.test(header(req, 'authorization') ?? '');
      const given = header(req, 'x-hozo-csrf') ?? c.form?.['csrf'];
      if (!bearer && (given === undefined || !sameSecret(given, csrf)))
        return {
          status: 403,
          code: 'FORBIDDEN',
          message: 'a state-changing request needs the page\u2019s CSRF token (X-Hozo-CSRF, from GET /api/csrf, or the form field) or the bearer token',
        };
      return undefined;
    },
  };
}

/** A token bucket per client address: `rate` requests a second, bursts of `burst`; at most `clients` tracked. */
export function createRateLimit(rate = 100, burst = 200, clients = 1000): (client: string) => boolean {
  const buckets = new Map<string, { tokens: number; at: number }>();
  return (client) => {
    const now = Date.now();
    let b = buckets.get(client);
    if (b === undefined) {
      if (buckets.size >= clients) buckets.delete(buckets.keys().next().value!);
      b = { tokens: burst, at: now };
      buckets.set(client, b);
    }
    b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * rate);
    b.at = now;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  };
}
