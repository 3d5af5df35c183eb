import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { formatIssues } from '../../src/config/issues.js';
import type { JobReport } from '../../src/job/report.js';
import { buildEmail, sendmailArgs } from '../../src/notify/email.js';
import { redactUrl } from '../../src/notify/http.js';
import { encodeHeaderWord, formatDuration, formatMessage } from '../../src/notify/message.js';
import { describeChannel, wantsNotification } from '../../src/notify/notify.js';
import { notifySchema, type NotifyChannel } from '../../src/notify/schema.js';

/** The report without the lifecycle's `hosts` (notifications do not need them). */
type Report = Omit<JobReport, 'hosts'>;

function report(over: Partial<Report> = {}): Report {
  return {
    job: 'nightly',
    host: 'box',
    dryRun: false,
    startedAt: '2026-03-01T04:00:00.000Z',
    finishedAt: '2026-03-01T04:04:12.000Z',
    seconds: 252,
    result: 'ok',
    datasets: [
      {
        source: 'tank/home',
        target: 'backup/home',
        result: 'sent',
        snapshotsSent: ['@a'],
        bytes: 1288490189,
        seconds: 200,
        verified: true,
        plan: 'incremental',
      },
      { source: 'tank/db', target: 'backup/db', result: 'up-to-date', snapshotsSent: [], seconds: 1, verified: true, plan: 'up to date' },
      { source: 'tank/media', target: 'backup/media', result: 'sent', snapshotsSent: ['@a'], bytes: 0, seconds: 3, verified: true, plan: 'incremental' },
    ],
    targetPools: [{ name: 'backup', health: 'ONLINE' }],
    bytes: 1288490189,
    warnings: [],
    ...over,
  };
}

function failed(): Report {
  const r = report();
  r.result = 'failed';
  r.datasets[2] = {
    ...r.datasets[2]!,
    result: 'failed',
    error: { code: 'ZFS_NO_SPACE', message: 'cannot receive incremental stream:\nout of space', hint: 'free space on pool backup or prune old snapshots' },
  };
  return r;
}

const parse = (yaml: string) => notifySchema.safeParse(parseYaml(yaml));
const problems = (yaml: string) => {
  const r = parse(yaml);
  return r.success ? [] : formatIssues(r.error.issues.map((i) => ({ ...i, path: ['notify', ...i.path] })));
};

describe('notify config schema', () => {
  it('accepts each channel type with defaults filled in', () => {
    const r = parse(`
- type: ntfy
  url: https://ntfy.sh/hozo-3f9c2
  tokenFile: /run/secrets/ntfy-token
- type: pushover
  on: always
  userFile: /run/secrets/pushover-user
  tokenFile: /run/secrets/pushover-token
- type: email
  to: admin@example.org
  on: failure
- type: email
  to: [a@example.org, b@example.org]
  from: hozo@example.org
  sendmail: /run/wrappers/bin/sendmail
  timeout: 30s
- type: webhook
  url: http://127.0.0.1:9000/hooks/hozo
  on: success
`);
    expect(r.success).toBe(true);
    const channels = r.data!;
    expect(channels[0]).toEqual({ type: 'ntfy', url: 'https://ntfy.sh/hozo-3f9c2', tokenFile: '/run/secrets/ntfy-token', on: 'failure', timeout: 15 });
    expect(channels[1]).toMatchObject({ type: 'pushover', on: 'always', apiUrl: 'https://api.pushover.net/1/messages.json' });
    expect(channels[2]).toEqual({ type: 'email', to: ['admin@example.org'], sendmail: '/usr/sbin/sendmail', on: 'failure', timeout: 15 });
    expect(channels[3]).toMatchObject({
      to: ['a@example.org', 'b@example.org'],
      from: 'hozo@example.org',
      sendmail: '/run/wrappers/bin/sendmail',
      timeout: 30,
    });
    expect(channels[4]).toMatchObject({ type: 'webhook', on: 'success' });
  });

  it('defaults to no channels', () => {
    expect(notifySchema.parse(undefined)).toEqual([]);
  });

  it('names the path and what was expected', () => {
    expect(problems('- type: slack\n  url: https://x')).toEqual([expect.stringMatching(/^notify\[0\]\.type: .*ntfy.*pushover.*email.*webhook/)]);
    expect(problems('- type: ntfy\n  url: ftp://x/y')).toEqual(['notify[0].url: expected an http:// or https:// URL']);
    expect(problems('- type: ntfy\n  url: https://ntfy.sh/x\n  token: abc')).toEqual([expect.stringContaining('notify[0]: unknown field "token"')]);
    expect(problems('- type: pushover\n  userFile: relative/user\n  tokenFile: /t')).toEqual(['notify[0].userFile: expected an absolute path']);
    expect(problems('- type: email\n  to: "-oQ/tmp/x@example.org"')).not.toEqual([]);
    expect(problems('- type: email\n  to: "-t@example.org"')).toEqual(['notify[0].to: an e-mail address must not start with "-"']);
    expect(problems('- type: email\n  to: []')).toEqual(['notify[0].to: expected at least one address']);
    expect(problems('- type: webhook\n  url: https://x\n  on: sometimes')).toEqual([expect.stringMatching(/^notify\[0\]\.on: .*failure.*success.*always/)]);
    expect(problems('- type: webhook\n  url: https://x\n  timeout: soon')).toEqual([
      'notify[0].timeout: expected timeout as seconds or a duration like "10s", "1m"',
    ]);
  });
});

describe('notification text', () => {
  it('titles a success with counts, bytes and time', () => {
    const m = formatMessage(report());
    expect(m.failed).toBe(false);
    expect(m.title).toBe('hozo nightly: OK — 3 datasets, 1.2 GiB in 4m 12s');
    expect(m.body).toContain('3 of 3 datasets ok; 1.2 GiB sent in 4m 12s (host box).');
  });

  it('titles a failure as the issue shows and lists failed datasets with error and hint', () => {
    const m = formatMessage(failed());
    expect(m.failed).toBe(true);
    expect(m.title).toBe('hozo nightly: FAILED — 1 of 3 datasets failed');
    expect(m.body.split('\n')).toEqual([
      '✗ tank/media → backup/media: ZFS_NO_SPACE: cannot receive incremental stream: out of space',
      '  hint: free space on pool backup or prune old snapshots',
      '2 of 3 datasets ok; 1.2 GiB sent in 4m 12s (host box).',
    ]);
  });

  it('says when the host was unreachable or the run stopped, with the hint', () => {
    const u = formatMessage(
      report({
        result: 'unreachable',
        datasets: [],
        bytes: 0,
        error: { code: 'HOST_UNREACHABLE', message: 'box did not answer SSH within 300s', hint: 'check that Wake-on-LAN is enabled in the BIOS' },
      }),
    );
    expect(u.title).toBe('hozo nightly: FAILED — host box unreachable');
    expect(u.body).toContain('error HOST_UNREACHABLE: box did not answer SSH within 300s\n  hint: check that Wake-on-LAN is enabled in the BIOS');
    const e = formatMessage(
      report({
        result: 'error',
        datasets: [],
        error: { code: 'LOCKED', message: 'job "nightly" is already running (pid 4242, lock /var/lib/hozo/locks/nightly.lock)' },
      }),
    );
    expect(e.title).toMatch(/^hozo nightly: FAILED — job "nightly" is already running/);
    expect(e.title.length).toBeLessThanOrEqual('hozo nightly: FAILED — '.length + 100);
  });

  it('mentions unhealthy pools and warnings, and stays short for many failures', () => {
    const r = failed();
    r.targetPools = [{ name: 'backup', health: 'DEGRADED' }];
    r.warnings = ['mbuffer missing on box; sending without it'];
    const m = formatMessage(r);
    expect(m.body).toContain('pool backup on box is DEGRADED');
    expect(m.body).toContain('warning: mbuffer missing on box; sending without it');
    const many = report({ result: 'failed' });
    many.datasets = Array.from({ length: 40 }, (_, i) => ({
      source: `tank/d${i}`,
      target: `backup/d${i}`,
      result: 'failed' as const,
      snapshotsSent: [],
      seconds: 0,
      verified: false,
      plan: '',
      error: { code: 'PIPELINE_FAILED', message: 'x'.repeat(100) },
    }));
    const long = formatMessage(many);
    expect(long.title).toBe('hozo nightly: FAILED — 40 of 40 datasets failed');
    expect(long.body.length).toBeLessThanOrEqual(1000);
  });

  it('formats durations', () => {
    expect([0, 59.6, 61, 3600, 7322].map(formatDuration)).toEqual(['0s', '1m 0s', '1m 1s', '1h 0m', '2h 2m']);
  });

  it('encodes non-ASCII header text as RFC 2047 words that decode back', () => {
    expect(encodeHeaderWord('plain ascii')).toBe('plain ascii');
    const title = 'hozo nightly: FAILED — 1 of 3 datasets failed (Hōzō)';
    const encoded = encodeHeaderWord(title);
    expect(encoded).toMatch(/^[\x20-\x7e]+$/);
    const decoded = encoded
      .split(' ')
      .map((w) => /^=\?UTF-8\?B\?(.*)\?=$/.exec(w)![1]!)
      .map((b) => Buffer.from(b, 'base64'))
      .reduce((a, b) => Buffer.concat([a, b]), Buffer.alloc(0))
      .toString('utf8');
    expect(decoded).toBe(title);
    for (const w of encoded.split(' ')) expect(w.length).toBeLessThanOrEqual(75);
  });
});

describe('channel selection', () => {
  const ch = (on: NotifyChannel['on']) => ({ on });
  it('follows `on`, and never notifies for dry runs', () => {
    const ok = report();
    const bad = failed();
    expect([wantsNotification(ch('failure'), ok), wantsNotification(ch('failure'), bad)]).toEqual([false, true]);
    expect([wantsNotification(ch('success'), ok), wantsNotification(ch('success'), bad)]).toEqual([true, false]);
    expect([wantsNotification(ch('always'), ok), wantsNotification(ch('always'), bad)]).toEqual([true, true]);
    expect(wantsNotification(ch('always'), { ...ok, dryRun: true })).toBe(false);
    expect(wantsNotification(ch('failure'), { ...ok, result: 'unreachable' })).toBe(true);
  });

  it('describes channels without paths, queries or credentials', () => {
    expect(redactUrl('https://user:pw@ntfy.example.org:8443/secret-topic?auth=xyz')).toBe('https://ntfy.example.org:8443');
    expect(redactUrl('not a url')).toBe('(invalid URL)');
    const [w] = notifySchema.parse([{ type: 'webhook', url: 'https://hooks.example.org/T000/B000/XXXXSECRET' }]);
    expect(describeChannel(w!)).toBe('webhook https://hooks.example.org');
  });
});

describe('e-mail message', () => {
  it('builds headers (encoded subject) and passes recipients as separate arguments', () => {
    const channel = { to: ['a@example.org', 'b@example.org'], from: 'hozo@example.org' };
    const mail = buildEmail(channel, formatMessage(failed()), new Date('2026-03-01T04:05:00Z'));
    const [head, body] = mail.split('\n\n');
    expect(head).toMatch(/^From: hozo@example.org\nTo: a@example.org, b@example.org\nSubject: =\?UTF-8\?B\?/);
    expect(head).toContain('Date: Sun, 01 Mar 2026 04:05:00 +0000');
    expect(head).toContain('Content-Type: text/plain; charset=utf-8');
    expect(head).toContain('Auto-Submitted: auto-generated');
    expect(head).toMatch(/^[\x20-\x7e\n]+$/);
    expect(body).toContain('✗ tank/media → backup/media');
    expect(sendmailArgs(channel)).toEqual(['-i', '-f', 'hozo@example.org', 'a@example.org', 'b@example.org']);
    expect(sendmailArgs({ to: ['a@example.org'] })).toEqual(['-i', 'a@example.org']);
  });
});
