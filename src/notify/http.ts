// One POST with a timeout, for the HTTP channels. Errors name the server's origin only: topic paths and webhook URLs
// are often secrets themselves.
import { readBounded } from '../config/read.js';
import { shownPath } from '../config/shown.js';
import { HozoError } from '../errors.js';

export class NotifyError extends Error {
  constructor(message: string, opts?: { cause?: unknown }) {
    super(message, opts);
    this.name = 'NotifyError';
  }
}

/** scheme://host[:port] — what a log line may show of a URL. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}`;
  } catch {
    return '(invalid URL)';
  }
}

/** What of a URL must never be shown: its path and query, whole and in pieces (segments and values of 4+ chars). */
export function urlSecrets(url: string): string[] {
  try {
    const u = new URL(url);
    const pieces = [
      u.href,
      `${u.pathname}${u.search}`,
      u.search,
      ...u.pathname.split('/'),
      ...[...u.searchParams.values()],
      ...[...u.searchParams.values()].map(encodeURIComponent),
    ];
    return [...new Set(pieces.filter((p) => p.length >= 4 && p !== '/'))];
  } catch {
    return [url];
  }
}

/** Far above any token or user key. */
const MAX_SECRET_BYTES = 64 * 1024;

/** A secret from a file (trailing newline dropped). The error never contains the file's contents. */
export async function readSecretFile(path: string, what: string): Promise<string> {
  let text: string;
  try {
    // Bounded and never blocking: a FIFO or device named here would hang the run at its very end.
    text = readBounded(path, `${what} file`, MAX_SECRET_BYTES).toString('utf8');
  } catch (e) {
    const code = e instanceof HozoError ? (e.cause as NodeJS.ErrnoException | undefined)?.code : (e as NodeJS.ErrnoException).code;
    throw new NotifyError(e instanceof HozoError && code === undefined ? e.message : `cannot read ${what} file ${shownPath(path)}: ${code ?? 'error'}`, {
      cause: e,
    });
  }
  const secret = text.trim();
  if (secret === '') throw new NotifyError(`${what} file ${shownPath(path)} is empty`);
  return secret;
}

function describeFetchError(e: unknown): string {
  if (e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError')) return 'timed out';
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code !== undefined) return cause.code;
  if (cause?.message !== undefined) return cause.message;
  return e instanceof Error ? e.message : String(e);
}

export interface PostOptions {
  readonly headers: Record<string, string>;
  readonly body: string;
  readonly timeoutSeconds: number;
  /** Strings to blank out of any response text quoted in an error (the secrets we sent). */
  readonly secrets?: readonly string[];
}

/** POSTs and resolves on a 2xx answer; otherwise throws NotifyError naming only the origin. Returns the response text. */
export async function post(url: string, opts: PostOptions): Promise<string> {
  const where = redactUrl(url);
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: opts.headers,
      body: opts.body,
      signal: AbortSignal.timeout(Math.max(1, Math.round(opts.timeoutSeconds * 1000))),
    });
  } catch (e) {
    // fetch's own messages may quote the URL: only its origin may show.
    const why = describeFetchError(e)
      .split(url)
      .join(where)
      .replace(/\bhttps?:\/\/[^\s"'<>]+/g, (m) => redactUrl(m));
    throw new NotifyError(`POST ${where} failed: ${why}`);
  }
  let text = '';
  try {
    text = await res.text();
  } catch {
    /* the status is what matters */
  }
  if (!res.ok) {
    let snippet = text.replace(/\s+/g, ' ').trim().slice(0, 200);
    // The server may quote the request back (a 404 page with the path): the URL's path and query are secrets too.
    for (const s of [...(opts.secrets ?? []), ...urlSecrets(url)].sort((a, b) => b.length - a.length)) if (s !== '') snippet = snippet.split(s).join('***');
    throw new NotifyError(`POST ${where} answered HTTP ${res.status}${snippet ? `: ${snippet}` : ''}`);
  }
  return text;
}
