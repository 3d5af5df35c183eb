// `hozo serve` over plain HTTP on loopback: the JSON API (each answer checked against the schema schemas/openapi.json
// names for its path and status), the page without JavaScript, and the guard — no token → 401, another origin → 403,
// no CSRF token → 403, another Host → 421, a large body → 413, path traversal → 404, too many requests → 429 — and a
// run started from the web taking the same job lock as one started by hand (409 with who holds it). The jobs are
// local ones whose preRun hook sleeps (the lock is held meanwhile) and whose datasets do not exist: each run fails
// quickly, which is what the history and the page then show. The browser tests are tests/e2e (not here).
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OUTPUT_SCHEMAS } from '../../src/output/schemas.js';
import { HOZO, writeConfig } from '../helpers/hozo.js';
import { rawGet, serve, stop, until, type Server } from '../helpers/serve.js';

const skip = existsSync(HOZO) ? undefined : `${HOZO} is missing: run \`npm run build\` first`;
if (skip !== undefined) console.warn(`SKIP: tests/integration/serve.test.ts: ${skip}`);

const dir = mkdtempSync(join(tmpdir(), 'hozo-serve-'));
const OPENAPI = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'schemas', 'openapi.json'), 'utf8')) as {
  paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema?: { $ref?: string } }> }> }>>;
};

/** The answer checked against the schema the OpenAPI document names for this path template, method and status. */
function expectApi(method: 'get' | 'post', template: string, status: number, body: unknown): void {
  const op = OPENAPI.paths[template]?.[method];
  expect(op, `${method} ${template} is not in schemas/openapi.json`).toBeDefined();
  const response = op!.responses[String(status)];
  expect(response, `${method} ${template}: status ${status} is not documented`).toBeDefined();
  const ref = response!.content?.['application/json']?.schema?.$ref;
  expect(ref, `${method} ${template} ${status}: no JSON schema`).toBeDefined();
  const name = ref!.replace('#/components/schemas/', '') as keyof typeof OUTPUT_SCHEMAS;
  const r = OUTPUT_SCHEMAS[name].safeParse(body);
  expect(
    r.success,
    `${method} ${template} ${status} as ${name}: ${r.success ? '' : JSON.stringify(r.error.issues.slice(0, 4))}\n${JSON.stringify(body).slice(0, 800)}`,
  ).toBe(true);
}

const state = join(dir, 'state');
const job = (name: string, sleep: string) => ({
  name,
  host: 'local',
  hooks: { preRun: ['sleep', sleep] },
  datasets: [{ source: `nopool/${name}`, target: `nopool2/${name}` }],
});
const CONFIG = {
  stateDirectory: state,
  hosts: { box: { address: '127.0.0.1', port: 1, wake: { method: 'none' }, readyTimeout: 1, trust: 'trusted' } },
  jobs: [job('slow', '2'), job('other', '0')],
};

describe.skipIf(skip !== undefined)('hozo serve: JSON API and page over plain HTTP (loopback)', () => {
  let s: Server;
  let csrf: string;
  beforeAll(async () => {
    chmodSync(dir, 0o755);
    s = await serve(writeConfig(dir, CONFIG, 'serve.yaml'));
    const r = await fetch(`${s.url}/api/csrf`);
    const body = await r.json();
    expectApi('get', '/api/csrf', r.status, body);
    csrf = (body as { csrf: string }).csrf;
  });
  afterAll(() => stop(s));

  const post = (path: string, headers: Record<string, string> = {}, body?: string) =>
    fetch(`${s.url}${path}`, { method: 'POST', headers: { 'x-hozo-csrf': csrf, ...headers }, ...(body !== undefined ? { body } : {}), redirect: 'manual' });

  it('GET /api/status and /api/jobs: the documented shapes, the same as the CLI’s --json', async () => {
    const st = await fetch(`${s.url}/api/status`);
    const body = (await st.json()) as { jobs: { job: string }[]; hosts: { name: string; state: string }[] };
    expectApi('get', '/api/status', st.status, body);
    expect(st.status).toBe(200);
    expect(body.jobs.map((j) => j.job)).toEqual(['slow', 'other']);
    expect(body.hosts).toEqual([expect.objectContaining({ name: 'box', state: 'unreachable' })]);
    const jobs = await fetch(`${s.url}/api/jobs`);
    expectApi('get', '/api/jobs', jobs.status, await jobs.json());
    expect(st.headers.get('content-security-policy')).toMatch(/default-src 'none'/);
    expect(st.headers.get('cache-control')).toBe('no-store');
  });

  it('POST run: 202, then 409 naming the pid while it runs; the run lands in the history (documented job-report shape)', async () => {
    const first = await post('/api/jobs/slow/run');
    const started = (await first.json()) as { pid: number };
    expectApi('post', '/api/jobs/{job}/run', first.status, started);
    expect(first.status).toBe(202);
    const again = await post('/api/jobs/slow/run');
    const busy = (await again.json()) as { error: { code: string; message: string } };
    expectApi('post', '/api/jobs/{job}/run', again.status, busy);
    expect(again.status).toBe(409);
    expect(busy.error).toMatchObject({ code: 'LOCKED', message: expect.stringContaining(`pid ${started.pid}`) });
    await until('the run is in the history and its process gone', async () => {
      const r = (await (await fetch(`${s.url}/api/jobs/slow/runs`)).json()) as { runs: unknown[] };
      return r.runs.length === 1 && /\[run slow\] finished: exit 1/.test(s.stderr());
    });
    const runs = await fetch(`${s.url}/api/jobs/slow/runs`);
    const body = (await runs.json()) as { runs: { job: string; result: string; mode: string }[] };
    expectApi('get', '/api/jobs/{job}/runs', runs.status, body);
    expect(body.runs[0]).toMatchObject({ job: 'slow', mode: 'run', result: 'failed' });
  });

  it('a run started by hand holds the same lock: the web answers 409 with its pid, and its event stream tells its start and end', async () => {
    const ac = new AbortController();
    const events = await fetch(`${s.url}/api/events`, { signal: ac.signal });
    const reader = events.body!.getReader();
    let seen = '';
    const read = (async () => {
      for (;;) {
        const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
        if (done) return;
        seen += Buffer.from(value!).toString('utf8');
      }
    })();
    await new Promise((r) => setTimeout(r, 1200)); // one look at the lock before the run
    const byHand = spawn('node', [HOZO, '--config', join(dir, 'serve.yaml'), 'run', 'slow'], { stdio: 'ignore' });
    try {
      await until('the hand run holds the lock', async () => existsSync(join(state, 'locks', 'slow.lock')));
      const r = await post('/api/jobs/slow/run');
      const body = (await r.json()) as { error: { code: string; message: string } };
      expect(r.status, JSON.stringify(body)).toBe(409);
      expect(body.error.message).toMatch(new RegExp(`pid ${byHand.pid}`));
      await new Promise((resolve) => (byHand.exitCode !== null ? resolve(undefined) : byHand.once('exit', resolve)));
      await until('the stream said the run started and finished', async () =>
        /event: run\ndata: \{"job":"slow","state":"started"\}[\s\S]*event: run\ndata: \{"job":"slow","state":"finished"\}/.test(seen),
      );
    } finally {
      ac.abort();
      await read;
      await new Promise((resolve) => (byHand.exitCode !== null ? resolve(undefined) : byHand.once('exit', resolve)));
    }
  });

  it('refused: no CSRF token or a wrong one (403), another origin (403), a cross-site fetch (403), another Host (421), PUT (405)', async () => {
    const cases: [Promise<Response>, number][] = [
      [fetch(`${s.url}/api/jobs/other/run`, { method: 'POST' }), 403],
      [post('/api/jobs/other/run', { 'x-hozo-csrf': 'x'.repeat(43) }), 403],
      [post('/api/jobs/other/run', { origin: 'http://evil.example' }), 403],
      [post('/api/jobs/other/run', { origin: 'null' }), 403],
      [post('/api/jobs/other/run', { 'sec-fetch-site': 'cross-site' }), 403],
      [rawGet(`${s.url}/api/status`, { host: 'rebound.example:80' }), 421],
      [fetch(`${s.url}/api/status`, { method: 'PUT' }), 405],
    ];
    for (const [p, want] of cases) {
      const r = await p;
      const body = (await r.json()) as { error: { code: string; message: string } };
      expect(r.status, JSON.stringify(body)).toBe(want);
      expect(OUTPUT_SCHEMAS.error.safeParse(body).success).toBe(true);
      expect(JSON.stringify(body)).not.toMatch(/\n\s+at |\.js:\d+/);
    }
    // None of them started anything.
    const runs = (await (await fetch(`${s.url}/api/jobs/other/runs`)).json()) as { runs: unknown[] };
    expect(runs.runs).toEqual([]);
  });

  it('a body over 16 KiB is 413; unknown or traversing names are 404 with no stack; too many requests are 429', async () => {
    const big = await post('/api/jobs/other/run', { 'content-type': 'application/json' }, 'x'.repeat(20_000));
    expect(big.status).toBe(413);
    expectApi('post', '/api/jobs/{job}/run', big.status, await big.json());
    for (const path of [
      '/api/jobs/nope/runs',
      '/api/jobs/..%2F..%2Fetc%2Fpasswd/runs',
      '/api/jobs/%E0%A4%A/runs',
      '/api/jobs/__proto__/runs',
      '/api/jobs/constructor/runs',
    ]) {
      const r = await fetch(`${s.url}${path}`);
      const body = await r.json();
      expect(r.status, path).toBe(404);
      expectApi('get', '/api/jobs/{job}/runs', r.status, body);
    }
    const host = await post('/api/hosts/toString/wake');
    expect(host.status).toBe(404);
    const many = await Promise.all(Array.from({ length: 400 }, () => fetch(`${s.url}/static/hozo.css`).then((r) => r.status)));
    expect(many.filter((x) => x === 429).length).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 3500)); // the bucket refills
  });

  it('POST wake on an always-on host: its `hozo wake --json` answer (host-action), nothing sent', async () => {
    const r = await post('/api/hosts/box/wake');
    const body = await r.json();
    expectApi('post', '/api/hosts/{host}/wake', r.status, body);
    expect(r.status).toBe(200);
    expect(body).toMatchObject({ version: 1, name: 'box', woke: false });
  });

  it('the page: jobs and boxes without JavaScript; a button goes through a confirmation form and comes back with what happened', async () => {
    const page = await fetch(`${s.url}/`);
    const html = await page.text();
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    // One script, from the package (no inline script: the CSP allows none); the page works without it.
    expect(html.match(/<script[^>]*>/gi)).toEqual(['<script src="/static/hozo.js" defer>']);
    expect(page.headers.get('content-security-policy')).toMatch(/script-src 'self';/);
    expect(html).toMatch(/<th scope="row">slow<\/th>/);
    expect(html).toMatch(/<span class="r-failed">failed<\/span>/);
    expect(html).toMatch(/<span class="s-unreachable">unreachable<\/span>/);
    expect(html).toContain('href="/confirm/run/other"');
    const confirm = await (await fetch(`${s.url}/confirm/run/other`)).text();
    expect(confirm).toMatch(/<form method="post" action="\/jobs\/other\/run">/);
    const token = /name="csrf" value="([^"]+)"/.exec(confirm)?.[1];
    expect(token).toBe(csrf);
    const done = await fetch(`${s.url}/jobs/other/run`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: s.url },
      body: `csrf=${encodeURIComponent(token!)}`,
      redirect: 'manual',
    });
    expect(done.status).toBe(303);
    const back = await (await fetch(new URL(done.headers.get('location')!, s.url))).text();
    expect(back).toMatch(/<p class="notice ok" role="status">Job other started \(pid \d+\)/);
    // Without the form's token the same POST is refused.
    const bare = await fetch(`${s.url}/jobs/other/run`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'csrf=',
      redirect: 'manual',
    });
    expect(bare.status).toBe(403);
    expect((await fetch(`${s.url}/confirm/run/nope`)).status).toBe(404);
  });

  it('GET /api/events: a status event at once, then run events as a run starts and ends', async () => {
    const ac = new AbortController();
    const r = await fetch(`${s.url}/api/events`, { signal: ac.signal });
    expect(r.headers.get('content-type')).toBe('text/event-stream');
    const reader = r.body!.getReader();
    let text = '';
    const read = async (want: RegExp) => {
      const deadline = Date.now() + 20_000;
      while (!want.test(text) && Date.now() < deadline) {
        const { value, done } = await reader.read();
        if (done) break;
        text += Buffer.from(value).toString('utf8');
      }
      expect(text).toMatch(want);
    };
    try {
      await read(/^event: status\ndata: \{"version":1,/);
      await until('other is free again', async () => (await post('/api/jobs/other/run')).status === 202);
      await read(/event: run\ndata: \{"job":"other","state":"started"/);
      await read(/event: run\ndata: \{"job":"other","state":"finished","exitCode":1/);
    } finally {
      ac.abort();
    }
  });
});

describe.skipIf(skip !== undefined)('hozo serve with a token', () => {
  let s: Server;
  const TOKEN = 'tok-0123456789abcdef-secret';
  beforeAll(async () => {
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    s = await serve(writeConfig(dir, CONFIG, 'serve-token.yaml'), ['--token-file', tokenFile]);
  });
  afterAll(() => stop(s));

  it('no token or a wrong one: 401 (API) or the login page; the bearer token opens the API and may POST without CSRF', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong-token-000000000' }, { authorization: `Bearer ${TOKEN}x` }, { cookie: 'hozo_token=nope' }]) {
      const r = await fetch(`${s.url}/api/status`, { headers });
      const body = await r.json();
      expect(r.status, JSON.stringify(headers)).toBe(401);
      expectApi('get', '/api/status', r.status, body);
    }
    const page = await fetch(`${s.url}/`);
    expect(page.status).toBe(401);
    expect(await page.text()).toMatch(/<form method="post" action="\/login">/);
    const ok = await fetch(`${s.url}/api/status`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.status).toBe(200);
    const run = await fetch(`${s.url}/api/jobs/other/run`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(run.status).toBe(202);
    // A Host of any name is answered with the token (the token is the gate), never its contents.
    expect(JSON.stringify(await ok.json())).not.toContain(TOKEN);
  });

  it('the login form: a wrong token is 401, the right one sets an HttpOnly, SameSite=Strict cookie that opens the page', async () => {
    const bad = await fetch(`${s.url}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'token=nope',
      redirect: 'manual',
    });
    expect(bad.status).toBe(401);
    const good = await fetch(`${s.url}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `token=${encodeURIComponent(TOKEN)}`,
      redirect: 'manual',
    });
    expect(good.status).toBe(303);
    const cookie = good.headers.get('set-cookie')!;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    const page = await fetch(`${s.url}/`, { headers: { cookie: cookie.split(';')[0]! } });
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/<th scope="row">slow<\/th>/);
  });
});

describe.skipIf(skip !== undefined)('hozo serve refuses to start', () => {
  it('on an address other than loopback without a token, or with a short token: exit 2, nothing listens', async () => {
    const config = writeConfig(dir, CONFIG, 'serve-bad.yaml');
    const short = join(dir, 'short-token');
    writeFileSync(short, 'abc\n');
    for (const [args, says] of [
      [['--listen', '0.0.0.0:0'], /--listen 0\.0\.0\.0: an address other than loopback needs --token-file/],
      [['--listen', 'example.org:80'], /--listen: expected an IP address and port/],
      [['--token-file', short], /expected one line of at least 16 characters/],
    ] as const) {
      const p = spawn('node', [HOZO, '--config', config, 'serve', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      const code = await new Promise((resolve) => p.once('exit', resolve));
      expect(code, err).toBe(2);
      expect(err).toMatch(says);
    }
  });
});
