// The wake window against a sleeping box (zfs-fuse lab: a network namespace, a wake listener answering real magic
// packets, hozo-agent as the forced command, "power off" = the box's sshd stopped): a window that fits only part of
// the job sends what fits, defers the rest as backlog (report, metrics) and puts the box back to sleep within the
// window; the next run sends the deferred datasets first and completes the job.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentBuilt, installAgent } from '../../src/lab/agent.js';
import { createLab, labPrerequisites, type Lab } from '../../src/lab/lab.js';
import { hozoJson, writeConfig } from '../helpers/hozo.js';
import { expectOutput } from '../helpers/outputs.js';

const missing = [...labPrerequisites(), ...(agentBuilt() ? [] : ['a built agent (npm run build)'])];
if (missing.length > 0) console.warn(`SKIP: tests/e2e/window.test.ts needs ${missing.join(', ')}`);

describe.skipIf(missing.length > 0)('wake window: part of a job per wake, the backlog first at the next', () => {
  let lab: Lab;
  let src: string;
  let metricsDir: string;
  const root = () => `${lab.box.pool.name}/win`;
  const MAX_AWAKE = 14;
  const names = ['a', 'b', 'c', 'd'];

  beforeAll(async () => {
    lab = await createLab({ id: 'win', poolSizeMB: 512, sshd: false, wakeListener: { startSshd: true, bootDelayMs: 800 } });
    src = lab.source.name;
    metricsDir = join(lab.dir, 'metrics');
    mkdirSync(metricsDir, { recursive: true });
    for (const n of names) {
      await lab.hostZfs(['create', `${src}/${n}`]);
      writeFileSync(join(lab.source.mountpoint, n, 'blob'), randomBytes(12 << 20));
      await lab.hostZfs(['snapshot', `${src}/${n}@w1`]);
    }
    installAgent(lab.box, { roots: [root()] });
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  const cfg = () =>
    writeConfig(
      lab.dir,
      {
        stateDirectory: join(lab.dir, 'state'),
        metrics: { textfileDirectory: metricsDir },
        // 4 MiB/s: each 12 MiB dataset takes ~3 s; the window leaves time for about two of the four.
        hosts: { offsite: { ...lab.box.hostConfig(), readyTimeout: 30, shutdown: 'agent', bandwidthLimit: '4M' } },
        jobs: [
          {
            name: 'win',
            host: 'offsite',
            retries: 0,
            window: { maxAwake: MAX_AWAKE },
            datasets: names.map((n) => ({ source: `${src}/${n}`, target: `${root()}/${n}` })),
          },
        ],
      },
      'win.yaml',
    );
  const metric = (name: string) =>
    Number(
      readFileSync(join(metricsDir, 'hozo_win.prom'), 'utf8')
        .split('\n')
        .find((l) => l.startsWith(name + '{'))
        ?.split(' ')
        .pop(),
    );
  async function waitAsleep(): Promise<boolean> {
    for (let i = 0; i < 60; i++) {
      if (!(await lab.box.sshPortOpen(300))) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  }

  let deferredFirst: string[] = [];

  it('sends what fits, defers the rest (backlog in the report and the metrics), and sleeps within the window', async () => {
    const r = await hozoJson(cfg(), 'run', 'win');
    expect(r.exitCode, r.stderr).toBe(0);
    expectOutput('job-report', r.json);
    const sent = r.json.datasets.filter((d: any) => d.result === 'sent');
    const deferred = r.json.datasets.filter((d: any) => d.result === 'deferred');
    expect(sent.length, r.stderr).toBeGreaterThanOrEqual(1);
    expect(deferred.length, r.stderr).toBeGreaterThanOrEqual(1);
    expect(sent.length + deferred.length).toBe(4);
    for (const d of r.json.datasets) expect(d.estimatedBytes).toBeGreaterThan(12 << 20);
    expect(r.json.window).toMatchObject({ maxAwake: MAX_AWAKE, backlogDatasets: deferred.length, unknownSize: 0 });
    expect(r.json.window.backlogBytes).toBe(deferred.reduce((n: number, d: any) => n + d.estimatedBytes, 0));
    expect(r.json.hosts[0]).toMatchObject({ woke: true, shutdown: 'done' });
    expect(r.json.hosts[0].awakeSeconds).toBeLessThanOrEqual(MAX_AWAKE);
    expect(r.json.warnings.join('\n')).toContain(`${deferred.length} dataset(s)`);
    expect(metric('hozo_job_backlog_datasets')).toBe(deferred.length);
    expect(metric('hozo_job_backlog_bytes')).toBe(r.json.window.backlogBytes);
    expect(metric('hozo_job_last_run_success')).toBe(1);
    expect(await waitAsleep()).toBe(true);
    deferredFirst = deferred.map((d: any) => d.source);
  });

  it('the next wake sends the deferred datasets first and completes the job; backlog 0; asleep again', async () => {
    const r = await hozoJson(cfg(), 'run', 'win');
    expect(r.exitCode, r.stderr).toBe(0);
    const sent = r.json.datasets.filter((d: any) => d.result === 'sent').map((d: any) => d.source);
    const upToDate = r.json.datasets.filter((d: any) => d.result === 'up-to-date').map((d: any) => d.source);
    // What waited (most lagging) went now; if the window was again too short it is still whole, never half.
    expect(sent.length).toBeGreaterThanOrEqual(1);
    expect(deferredFirst).toContain(sent[0]);
    const left = r.json.datasets.filter((d: any) => d.result === 'deferred').length;
    if (left > 0) {
      const third = await hozoJson(cfg(), 'run', 'win');
      expect(third.exitCode, third.stderr).toBe(0);
      expect(third.json.datasets.filter((d: any) => d.result === 'deferred')).toHaveLength(0);
    } else {
      expect(upToDate.length + sent.length).toBe(4);
      expect(r.json.window.backlogDatasets).toBe(0);
      expect(metric('hozo_job_backlog_bytes')).toBe(0);
    }
    expect(r.json.hosts[0].awakeSeconds).toBeLessThanOrEqual(MAX_AWAKE);
    expect(await waitAsleep()).toBe(true);
    // The box exports its pool when it powers off: what it holds is what the runs verified there (by guid).
    const last = left > 0 ? (await hozoJson(cfg(), 'run', 'win')).json : r.json;
    expect(last.datasets.map((d: any) => [['sent', 'up-to-date'].includes(d.result), d.verified, d.newest])).toEqual(names.map(() => [true, true, 'w1']));
    expect(await waitAsleep()).toBe(true);
  });
});
