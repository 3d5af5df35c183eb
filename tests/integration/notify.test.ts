// Notifications against real endpoints on loopback: a node:http server that records what it receives, and a fake
// sendmail (a shell script) that writes its argv and stdin to files. No mocks of fetch or of child processes.
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { JobReport } from '../../src/job/report.js';
import { formatMessage } from '../../src/notify/message.js';
import { notifyAll } from '../../src/notify/notify.js';
import { notifySchema, type NotifyChannel } from '../../src/notify/schema.js';
import type { Logger } from '../../src/util/log.js';

/** The report without the lifecycle's `hosts` (notifications do not need them). */
type Report = Omit<JobReport, 'hosts'>;

interface Recorded {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

let server: Server;
let base: string;
let received: Recorded[] = [];

/** Routes: /ok → 200; /fail → 500 echoing the Authorization header; /hang → never answers; /pushover → {"status":1}. */
beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '';
      received.push({ method: req.method ?? '', path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      if (path.startsWith('/hang')) return; // the client's timeout has to end this
      if (path.startsWith('/fail')) {
        res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end(`internal error; you sent ${req.headers.authorization ?? 'nothing'}`);
        return;
      }
      if (path.startsWith('/pushover-refuses')) {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end('{"user":"invalid","errors":["user identifier is not a valid user"],"status":0}');
        return;
      }
      if (path.startsWith('/pushover')) {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end('{"status":1,"request":"5042853c-402d-4a18-abcb-168734a801de"}');
        return;
      }
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{"id":"x"}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  received = [];
});

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

function recordingLogger(): Logger & { lines: { level: string; msg: string }[] } {
  const lines: { level: string; msg: string }[] = [];
  const push = (level: string) => (msg: string) => lines.push({ level, msg });
  return { lines, error: push('error'), warn: push('warn'), info: push('info'), debug: push('debug'), progress: () => {} };
}

const dir = mkdtempSync(join(tmpdir(), 'hozo-notify-'));
const secret = (name: string, value: string) => {
  const p = join(dir, name);
  writeFileSync(p, value + '\n', { mode: 0o600 });
  return p;
};
const NTFY_TOKEN = 'tk_ntfysecret0123456789';
const PUSHOVER_TOKEN = 'azGDORePK8gMaC0QOYAMyEEuzJnyUi';
const PUSHOVER_USER = 'uQiRzpo4DXghDmr9QzzfQu27cmVRsG';
const HOOK_TOKEN = 'hook-bearer-secret';
const ntfyTokenFile = secret('ntfy-token', NTFY_TOKEN);
const pushoverTokenFile = secret('pushover-token', PUSHOVER_TOKEN);
const pushoverUserFile = secret('pushover-user', PUSHOVER_USER);
const hookTokenFile = secret('hook-token', HOOK_TOKEN);

/** A sendmail stand-in: writes its arguments (one per line) and its stdin next to itself; exits with `code`. */
function fakeSendmail(name: string, code = 0): { path: string; args: () => string[]; message: () => string } {
  const path = join(dir, name);
  writeFileSync(
    path,
    `#!/bin/sh\nprintf '%s\\n' "$@" > '${path}.args'\ncat > '${path}.msg'\n${code !== 0 ? `echo "sendmail: cannot connect to relay" >&2\nexit ${code}\n` : ''}`,
  );
  chmodSync(path, 0o755);
  return {
    path,
    args: () => readFileSync(`${path}.args`, 'utf8').trimEnd().split('\n'),
    message: () => readFileSync(`${path}.msg`, 'utf8'),
  };
}

function failedReport(): Report {
  return {
    job: 'nightly',
    host: 'box',
    dryRun: false,
    startedAt: '2026-03-01T04:00:00.000Z',
    finishedAt: '2026-03-01T04:04:12.000Z',
    seconds: 252,
    result: 'failed',
    datasets: [
      {
        source: 'tank/home',
        target: 'backup/home',
        result: 'sent',
        snapshotsSent: ['@a'],
        bytes: 4096,
        seconds: 200,
        verified: true,
        plan: 'incremental -I @z → @a',
      },
      { source: 'tank/db', target: 'backup/db', result: 'up-to-date', snapshotsSent: [], seconds: 1, verified: true, plan: 'up to date' },
      {
        source: 'tank/media',
        target: 'backup/media',
        result: 'failed',
        snapshotsSent: [],
        seconds: 3,
        verified: false,
        plan: 'incremental',
        error: { code: 'ZFS_NO_SPACE', message: 'cannot receive: out of space', hint: 'free space on pool backup' },
      },
    ],
    targetPools: [{ name: 'backup', health: 'ONLINE' }],
    bytes: 4096,
    warnings: [],
  };
}

const okReport = (): Report => {
  const r = failedReport();
  r.result = 'ok';
  r.datasets = r.datasets.slice(0, 2);
  return r;
};

const channels = (list: unknown[]): NotifyChannel[] => notifySchema.parse(list);

/** RFC 2047 B-words back to text. */
const decodeWords = (h: string) =>
  h
    .replace(/=\?UTF-8\?B\?([^?]*)\?=\s*/g, (_, b64: string) => Buffer.from(b64, 'base64').toString('latin1'))
    .replace(/[\x80-\xff]+/g, (s) => Buffer.from(s, 'latin1').toString('utf8'));

describe('notifications over real loopback HTTP and a fake sendmail', () => {
  it('ntfy: POSTs the body to the topic with title, priority, tags and the bearer token', async () => {
    const log = recordingLogger();
    const n = await notifyAll(channels([{ type: 'ntfy', url: `${base}/hozo-topic-7f3a`, tokenFile: ntfyTokenFile }]), failedReport(), log);
    expect(n).toBe(0);
    expect(received).toHaveLength(1);
    const r = received[0]!;
    const expected = formatMessage(failedReport());
    expect(r).toMatchObject({ method: 'POST', path: '/hozo-topic-7f3a', body: expected.body });
    expect(decodeWords(String(r.headers['title']))).toBe('hozo nightly: FAILED — 1 of 3 datasets failed');
    expect(r.headers['priority']).toBe('high');
    expect(r.headers['tags']).toBe('rotating_light,hozo');
    expect(r.headers['authorization']).toBe(`Bearer ${NTFY_TOKEN}`);
    expect(r.body).toContain('✗ tank/media → backup/media: ZFS_NO_SPACE: cannot receive: out of space\n  hint: free space on pool backup');
    expect(log.lines).toEqual([{ level: 'info', msg: `notified via ntfy ${base}` }]);
  });

  it('pushover: a form POST to the overridden API URL with token and user from their files', async () => {
    const n = await notifyAll(
      channels([{ type: 'pushover', apiUrl: `${base}/pushover/1/messages.json`, tokenFile: pushoverTokenFile, userFile: pushoverUserFile, on: 'always' }]),
      okReport(),
      recordingLogger(),
    );
    expect(n).toBe(0);
    expect(received).toHaveLength(1);
    const r = received[0]!;
    expect(r.path).toBe('/pushover/1/messages.json');
    expect(r.headers['content-type']).toBe('application/x-www-form-urlencoded');
    const form = Object.fromEntries(new URLSearchParams(r.body));
    expect(form).toEqual({
      token: PUSHOVER_TOKEN,
      user: PUSHOVER_USER,
      title: 'hozo nightly: OK — 2 datasets, 4.0 KiB in 4m 12s',
      message: formatMessage(okReport()).body,
      priority: '0',
    });
  });

  it('webhook: POSTs the run report as JSON', async () => {
    const report = failedReport();
    const n = await notifyAll(channels([{ type: 'webhook', url: `${base}/hooks/T0/B0/secretpath`, tokenFile: hookTokenFile }]), report, recordingLogger());
    expect(n).toBe(0);
    const r = received[0]!;
    expect(r.path).toBe('/hooks/T0/B0/secretpath');
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.headers['x-hozo-job']).toBe('nightly');
    expect(r.headers['x-hozo-result']).toBe('failed');
    expect(r.headers['authorization']).toBe(`Bearer ${HOOK_TOKEN}`);
    expect(JSON.parse(r.body)).toEqual(JSON.parse(JSON.stringify(report)));
  });

  it('email: runs sendmail with the recipients as argv and the message on stdin', async () => {
    const sm = fakeSendmail('sendmail-ok');
    const n = await notifyAll(
      channels([{ type: 'email', to: ['ops@example.org', 'me@example.org'], from: 'hozo@example.org', sendmail: sm.path }]),
      failedReport(),
      recordingLogger(),
    );
    expect(n).toBe(0);
    expect(sm.args()).toEqual(['-i', '-f', 'hozo@example.org', 'ops@example.org', 'me@example.org']);
    const mail = sm.message();
    const [head, ...rest] = mail.split('\n\n');
    const subject = /^Subject: (.*(?:\n .*)*)$/m.exec(head!)![1]!;
    expect(decodeWords(subject.replace(/\n /g, ' '))).toBe('hozo nightly: FAILED — 1 of 3 datasets failed');
    expect(head).toContain('To: ops@example.org, me@example.org');
    expect(head).toContain('From: hozo@example.org');
    expect(rest.join('\n\n')).toBe(formatMessage(failedReport()).body + '\n');
  });

  it('sends to every matching channel at once and skips those whose `on` does not match', async () => {
    const sm = fakeSendmail('sendmail-all');
    const list = channels([
      { type: 'ntfy', url: `${base}/t1` },
      { type: 'webhook', url: `${base}/hook-on-success`, on: 'success' },
      { type: 'webhook', url: `${base}/hook-always`, on: 'always' },
      { type: 'email', to: 'ops@example.org', sendmail: sm.path, on: 'failure' },
    ]);
    expect(await notifyAll(list, failedReport(), recordingLogger())).toBe(0);
    expect(received.map((r) => r.path).sort()).toEqual(['/hook-always', '/t1']);
    expect(existsSync(`${sm.path}.msg`)).toBe(true);
    received = [];
    expect(await notifyAll(list, okReport(), recordingLogger())).toBe(0);
    expect(received.map((r) => r.path).sort()).toEqual(['/hook-always', '/hook-on-success']);
    received = [];
    expect(await notifyAll(list, { ...failedReport(), dryRun: true }, recordingLogger())).toBe(0);
    expect(received).toEqual([]);
  });

  it('counts failures without throwing: HTTP 500, refused connection, timeout, refusal, missing secret, sendmail failing or missing', async () => {
    const refused = await closedPort();
    const bad = fakeSendmail('sendmail-fails', 75);
    const log = recordingLogger();
    const list = channels([
      { type: 'ntfy', url: `${base}/fail/topic-secret-1`, tokenFile: ntfyTokenFile },
      { type: 'webhook', url: `http://127.0.0.1:${refused}/hook-secret-2` },
      { type: 'webhook', url: `${base}/hang/hook-secret-3`, timeout: 1 },
      { type: 'pushover', apiUrl: `${base}/pushover-refuses`, tokenFile: pushoverTokenFile, userFile: pushoverUserFile },
      { type: 'ntfy', url: `${base}/ok`, tokenFile: join(dir, 'no-such-token') },
      { type: 'email', to: 'ops@example.org', sendmail: bad.path },
      { type: 'email', to: 'ops@example.org', sendmail: join(dir, 'no-such-sendmail') },
      { type: 'webhook', url: `${base}/ok-hook` }, // the one that works
    ]);
    const started = Date.now();
    const failures = await notifyAll(list, failedReport(), log);
    expect(failures).toBe(7);
    expect(Date.now() - started).toBeLessThan(10_000); // the hanging server is cut off by the 1 s timeout
    const errors = log.lines.filter((l) => l.level === 'error').map((l) => l.msg);
    expect(errors).toHaveLength(7);
    expect(errors).toEqual(
      expect.arrayContaining([
        `notification via ntfy ${base} failed: POST ${base} answered HTTP 500: internal error; you sent Bearer ***`,
        `notification via webhook http://127.0.0.1:${refused} failed: POST http://127.0.0.1:${refused} failed: ECONNREFUSED`,
        `notification via webhook ${base} failed: POST ${base} failed: timed out`,
        `notification via pushover ${base} failed: pushover refused the message (status 0)`,
        `notification via ntfy ${base} failed: cannot read ntfy token file ${join(dir, 'no-such-token')}: ENOENT`,
        `notification via email to ops@example.org failed: ${bad.path} exited with code 75: sendmail: cannot connect to relay`,
        `notification via email to ops@example.org failed: ${join(dir, 'no-such-sendmail')} cannot run (ENOENT)`,
      ]),
    );
    expect(log.lines.filter((l) => l.level === 'info').map((l) => l.msg)).toEqual([`notified via webhook ${base}`]);
    // no secret reached the log: tokens, user keys, topic and hook paths
    const all = log.lines.map((l) => l.msg).join('\n');
    for (const s of [NTFY_TOKEN, PUSHOVER_TOKEN, PUSHOVER_USER, 'topic-secret-1', 'hook-secret-2', 'hook-secret-3']) expect(all).not.toContain(s);
  });
});
