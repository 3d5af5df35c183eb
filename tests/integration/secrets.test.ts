// Secrets in URLs never leave the config: a failing run with an http wake and a webhook channel, both answered by a
// real HTTP server on loopback that fails them (HTTP 500, echoing the request line back), through the built CLI.
// Every output — stdout, stderr, the log file, every file in the state directory, the metrics textfile — is searched
// for the URLs' path secrets and query tokens. A URL with user:password@ is refused by the config check, which does
// not echo the password either. Traffic goes to 127.0.0.1 only; nothing is woken.
import { expectOutput } from '../helpers/outputs.js';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(ROOT, 'dist', 'bin', 'hozo', 'hozo.js');
const skip = existsSync(CLI) ? undefined : `${CLI} is missing: run \`npm run build\` first`;
if (skip !== undefined) console.warn(`SKIP: tests/integration/secrets.test.ts: ${skip}`);

const SECRETS = ['WakePathSecret7f3', 'wakeQueryTok9c1', 'HookPathSecret2b8', 'hookQueryTok4d6', 'Passw0rdInUrl'];

let server: Server;
let base: string;
let dir: string;
const hits: string[] = [];
const bodies: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    hits.push(req.url ?? '');
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'POST' && /hooks/.test(req.url ?? '')) bodies.push(Buffer.concat(chunks).toString('utf8'));
      res.writeHead(500, { 'Content-Type': 'text/plain' });
      res.end(`cannot serve ${req.method} ${req.url}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  dir = mkdtempSync(join(tmpdir(), 'hozo-secrets-'));
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

function allFiles(d: string): string[] {
  return readdirSync(d).flatMap((n) => (statSync(join(d, n)).isDirectory() ? allFiles(join(d, n)) : [join(d, n)]));
}

describe.skipIf(skip !== undefined)('secrets in wake and notify URLs never reach an output (built CLI, loopback HTTP)', () => {
  it('a failing http wake and a failing webhook: no path secret or token in stdout, stderr, log, state or metrics', async () => {
    const config = join(dir, 'config.json');
    mkdirSync(join(dir, 'metrics'));
    writeFileSync(
      config,
      JSON.stringify({
        stateDirectory: join(dir, 'state'),
        logFile: join(dir, 'hozo.log'),
        metrics: { textfileDirectory: join(dir, 'metrics') },
        notify: [{ type: 'webhook', url: `${base}/hooks/${SECRETS[2]}?token=${SECRETS[3]}`, on: 'always' }],
        hosts: {
          // A closed loopback port: the wake is asked for, the box never answers.
          box: { address: '127.0.0.1', port: 1, readyTimeout: 2, wake: { method: 'http', url: `${base}/plug/${SECRETS[0]}?token=${SECRETS[1]}` } },
        },
        jobs: [{ name: 'nightly', host: 'box', retries: 0, datasets: [{ source: 'tank/x', target: 'backup/x' }] }],
      }),
    );
    const r = await execa(process.execPath, [CLI, '--config', config, 'run', 'nightly', '--json'], { reject: false, timeout: 60_000 });
    expect(r.exitCode).not.toBe(0);
    // Both requests reached the server, with their secrets (so the secrets were really in play).
    expect(hits.some((h) => h.includes(SECRETS[0]!) && h.includes(SECRETS[1]!))).toBe(true);
    expect(hits.some((h) => h.includes(SECRETS[2]!) && h.includes(SECRETS[3]!))).toBe(true);
    // The webhook body is the run report, in its documented output format.
    expect(bodies.length).toBeGreaterThan(0);
    for (const b of bodies) expectOutput('job-report', JSON.parse(b));
    // The failure is reported, by origin only.
    const out = `${r.stdout}\n${r.stderr}`;
    expect(out).toMatch(new RegExp(`wake URL ${base.replace(/[.:/]/g, '\\$&')}/… answered HTTP 500`));
    const outputs: [string, string][] = [
      ['stdout', String(r.stdout)],
      ['stderr', String(r.stderr)],
      ...[...allFiles(join(dir, 'state')), ...allFiles(join(dir, 'metrics')), join(dir, 'hozo.log')]
        // The validated config's cache is the config itself (where the URLs live): 0600, like a config with secrets.
        .filter((f) => !f.endsWith('/config-cache.json'))
        .map((f) => [f, readFileSync(f, 'utf8')] as [string, string]),
    ];
    expect(statSync(join(dir, 'state', 'config-cache.json')).mode & 0o777).toBe(0o600);
    expect(outputs.length).toBeGreaterThan(3);
    for (const [where, text] of outputs) for (const s of SECRETS) expect(text.includes(s), `${s} in ${where}`).toBe(false);
    // The job state is the operator's alone; the metrics file is for node-exporter.
    for (const f of allFiles(join(dir, 'state')).filter((f) => f.endsWith('.json') && f.includes('/jobs/'))) expect(statSync(f).mode & 0o777, f).toBe(0o600);
  });

  it('a URL with user:password@ is refused by config check, which does not print the password', async () => {
    const config = join(dir, 'userinfo.json');
    writeFileSync(
      config,
      JSON.stringify({
        hosts: { box: { address: '127.0.0.1', wake: { method: 'http', url: `http://admin:${SECRETS[4]}@127.0.0.1:9/on` } } },
        notify: [{ type: 'webhook', url: `https://bot:${SECRETS[4]}@hooks.example.org/x` }],
      }),
    );
    const r = await execa(process.execPath, [CLI, '--config', config, 'config', 'check'], { reject: false, timeout: 60_000 });
    expect(r.exitCode).toBe(2);
    expect(String(r.stderr)).toMatch(/hosts\.box\.wake\.url.*user:password@ is refused/);
    expect(String(r.stderr)).toMatch(/notify.*user:password@ is refused/);
    expect(`${r.stdout}${r.stderr}`).not.toContain(SECRETS[4]);
  });
});
