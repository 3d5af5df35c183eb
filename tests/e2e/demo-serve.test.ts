// `hozo demo --serve`, as the README has a newcomer run it: the demo's two real cycles, then the dashboard on the demo
// lab — its status says the last run was ok and the box asleep, a run started from the API is a third real wake →
// replicate → verify → sleep cycle, and Ctrl-C stops the server and removes the lab.
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { agentBuilt } from '../../src/lab/agent.js';
import { labPrerequisites } from '../../src/lab/lab.js';
import { HOZO } from '../helpers/hozo.js';
import { until } from '../helpers/serve.js';

const missing = [...labPrerequisites(), ...(agentBuilt() ? [] : ['a built agent (npm run build)'])];
if (missing.length > 0) console.warn(`SKIP: tests/e2e/demo-serve.test.ts needs ${missing.join(', ')}`);

describe.skipIf(missing.length > 0)('hozo demo --serve', () => {
  it('serves the demo lab: status ok and asleep, a run from the API is a whole cycle, Ctrl-C removes the lab', async () => {
    const demo = spawn('node', [HOZO, 'demo', '--serve', '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    demo.stdout.on('data', (d: Buffer) => (out += d.toString()));
    demo.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => demo.once('exit', (code) => resolve(code)));
    try {
      await until('the dashboard is up', async () => /dashboard: http:\/\/127\.0\.0\.1:\d+\//.test(out) || demo.exitCode !== null, 150_000);
      const url = /dashboard: (http:\/\/127\.0\.0\.1:\d+)\//.exec(out)?.[1];
      expect(url, `${out}\n${err}`).toBeDefined();
      const status = (await (await fetch(`${url}/api/status`)).json()) as {
        jobs: { job: string; state: { lastRun: { result: string } } }[];
        hosts: { name: string; state: string }[];
      };
      expect(status.jobs[0]).toMatchObject({ job: 'nightly', state: { lastRun: { result: 'ok' } } });
      expect(status.hosts[0]).toMatchObject({ name: 'offsite', state: 'asleep' });
      const { csrf } = (await (await fetch(`${url}/api/csrf`)).json()) as { csrf: string };
      const started = await fetch(`${url}/api/jobs/nightly/run`, { method: 'POST', headers: { 'x-hozo-csrf': csrf } });
      expect(started.status).toBe(202);
      let runs: { result: string; hosts: { woke: boolean; shutdown: string }[] }[] = [];
      await until(
        'the third run is in the history',
        async () => {
          runs = ((await (await fetch(`${url}/api/jobs/nightly/runs`)).json()) as { runs: typeof runs }).runs;
          return runs.length === 3;
        },
        120_000,
      );
      expect(runs[0]).toMatchObject({ result: 'ok', hosts: [{ woke: true, shutdown: 'done' }] });
    } finally {
      if (demo.exitCode === null) demo.kill('SIGINT');
    }
    expect(await exited, `${out}\n${err}`).toBe(0);
    expect(out).toMatch(/lab removed in \d+\.\ds/);
  }, 400_000);
});
