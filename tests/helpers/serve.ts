// `hozo serve` for tests: started on a free loopback port, stopped with SIGTERM; and small HTTP helpers.
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { HOZO } from './hozo.js';

export interface Server {
  readonly url: string;
  readonly proc: ChildProcess;
  readonly stderr: () => string;
}

/** `hozo serve` on a free loopback port; resolves once it says where it listens. */
export function serve(config: string, args: string[] = []): Promise<Server> {
  const proc = spawn('node', [HOZO, '--config', config, 'serve', '--listen', '127.0.0.1:0', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr!.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`hozo serve did not start within 15 s:\n${err}`)), 15_000);
    proc.stderr!.on('data', (d: string) => {
      err += d;
      const m = /serving (http:\/\/127\.0\.0\.1:\d+)\//.exec(err);
      if (m !== null) {
        clearTimeout(timer);
        resolve({ url: m[1]!, proc, stderr: () => err });
      }
    });
    proc.on('exit', (code) => reject(new Error(`hozo serve exited ${code}:\n${err}`)));
  });
}

export const stop = (s: Server | undefined) =>
  new Promise<void>((resolve) => {
    if (s === undefined || s.proc.exitCode !== null) return resolve();
    s.proc.once('exit', () => resolve());
    s.proc.kill('SIGTERM');
  });

/** A GET with headers fetch will not send (Host). */
export function rawGet(url: string, headers: Record<string, string>): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve(new Response(body, { status: res.statusCode ?? 0 })));
    });
    req.on('error', reject);
    req.end();
  });
}

export async function until(what: string, ok: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (let i = 0; i < Math.ceil(ms / 100) + 10 && Date.now() < deadline; i++) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: not within ${ms} ms`);
}
