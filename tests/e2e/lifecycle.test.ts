// The whole lifecycle against a sleeping box: a network namespace with its own zfs-fuse, a wake listener playing the
// NIC firmware (starts sshd when a real magic packet for its MAC arrives on the subnet broadcast), hozo-agent as the
// forced command, and "power off" = stopping the box's sshd (the box is this machine; nothing is ever powered off).
import { expectOutput } from '../helpers/outputs.js';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentState } from '../../agent/state.js';
import { agentBuilt, installAgent } from '../../src/lab/agent.js';
import { createLab, labPrerequisites, type Lab } from '../../src/lab/lab.js';
import { hozo, hozoJson, startHozo, writeConfig } from '../helpers/hozo.js';

const missing = [...labPrerequisites(), ...(agentBuilt() ? [] : ['a built agent (npm run build)'])];
if (missing.length > 0) console.warn(`SKIP: tests/e2e/lifecycle.test.ts needs ${missing.join(', ')}`);

const promtool = (await execa('promtool', ['--version'], { reject: false })).exitCode === 0;
if (!promtool) console.warn('SKIP: promtool checks in tests/e2e/lifecycle.test.ts (install Debian package prometheus)');

describe.skipIf(missing.length > 0)('wake → ready → replicate → verify → shutdown against a sleeping box', () => {
  let lab: Lab;
  let src: string;
  let metricsDir: string;
  let n = 0;
  const root = () => `${lab.box.pool.name}/kraken`;

  async function snapshot(...datasets: string[]): Promise<string> {
    const name = `e${++n}`;
    for (const ds of datasets) await lab.hostZfs(['snapshot', `${src}/${ds}@${name}`]);
    return name;
  }
  function config(name: string, patch: { host?: Record<string, unknown>; jobs?: Record<string, unknown>[] } = {}): string {
    return writeConfig(
      lab.dir,
      {
        stateDirectory: join(lab.dir, `state-${name}`),
        metrics: { textfileDirectory: metricsDir },
        hosts: { offsite: { ...lab.box.hostConfig(), readyTimeout: 30, shutdown: 'agent', ...patch.host } },
        jobs: patch.jobs ?? [{ name, host: 'offsite', retries: 0, datasets: [{ source: `${src}/home`, target: `${root()}/home` }] }],
      },
      `${name}.yaml`,
    );
  }
  const asleep = async () => !(await lab.box.sshPortOpen(300));
  async function waitAsleep(): Promise<boolean> {
    for (let i = 0; i < 60; i++) {
      if (await asleep()) return true;
      await new Promise((r) => setTimeout(r, 100));
    }
    return false;
  }
  const metric = (job: string, name: string) => {
    const text = readFileSync(join(metricsDir, `hozo_${job}.prom`), 'utf8');
    const line = text.split('\n').find((l) => l.startsWith(name + '{'));
    return line === undefined ? undefined : Number(line.split(' ').pop());
  };

  beforeAll(async () => {
    lab = await createLab({ id: 'e2e', poolSizeMB: 768, sshd: false, wakeListener: { startSshd: true, bootDelayMs: 800 } });
    src = lab.source.name;
    metricsDir = join(lab.dir, 'metrics');
    mkdirSync(metricsDir, { recursive: true });
    for (const ds of ['home', 'media', 'archive']) await lab.hostZfs(['create', `${src}/${ds}`]);
    writeFileSync(join(lab.source.mountpoint, 'home/notes.txt'), 'hello\n');
    await execa('sh', ['-c', `head -c 96M /dev/urandom > ${join(lab.source.mountpoint, 'media/video.bin')}`]);
    await execa('sh', ['-c', `head -c 192M /dev/urandom > ${join(lab.source.mountpoint, 'archive/old.bin')}`]);
    installAgent(lab.box, { roots: [root()] });
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  it('wakes the sleeping box with a real magic packet, replicates, verifies and puts it back to sleep', async () => {
    expect(await asleep()).toBe(true);
    await snapshot('home');
    const cfg = config('nightly');
    const events = lab.box.wakeEvents().length;
    const agentLog = join(lab.box.dir, 'agent', 'agent.log');
    const logBefore = existsSync(agentLog) ? readFileSync(agentLog, 'utf8').length : 0;
    const { exitCode, json } = await hozoJson(cfg, 'run', 'nightly');
    expect(exitCode).toBe(0);
    expectOutput('job-report', json);
    // One agent process answered the run's control requests (one `session` call); the stream had its own call.
    const calls = readFileSync(agentLog, 'utf8').slice(logBefore).split('\n').filter(Boolean);
    const pids = (re: RegExp) => new Set(calls.filter((l) => re.test(l)).map((l) => /hozo-agent\[(\d+)\]/.exec(l)?.[1]));
    expect(calls.filter((l) => /: session started$/.test(l))).toHaveLength(1);
    const control = pids(/: "(prepare|capabilities|hold \S+ \d+|list [^"]*|status|release \S+|shutdown)" → exit/);
    expect(control.size).toBe(1);
    expect([...pids(/session started/)]).toEqual([...control]);
    expect(pids(/: "receive [^"]*" → exit 0/).size).toBe(1);
    expect(calls.some((l) => /: "shutdown" → exit 0/.test(l))).toBe(true);
    expect(json.result).toBe('ok');
    expect(lab.box.wakeEvents().length).toBeGreaterThan(events);
    expect(json.hosts[0]).toMatchObject({ name: 'offsite', woke: true, awakeBefore: false, shutdown: 'done' });
    expect(json.hosts[0].wakeSeconds).toBeGreaterThan(0.5);
    expect(json.datasets[0]).toMatchObject({ result: 'sent', verified: true, plan: 'create parent backup/kraken, then full @e1' });
    expect(await waitAsleep()).toBe(true);
    expect(metric('nightly', 'hozo_job_last_run_success')).toBe(1);
    expect(metric('nightly', 'hozo_host_wake_seconds')).toBeCloseTo(json.hosts[0].wakeSeconds, 2);
    if (promtool)
      expect((await execa('promtool', ['check', 'metrics'], { input: readFileSync(join(metricsDir, 'hozo_nightly.prom')), reject: false })).exitCode).toBe(0);
  });

  it('wakes it again for an incremental run (the box re-imports its exported pool)', async () => {
    writeFileSync(join(lab.source.mountpoint, 'home/notes.txt'), 'hello again\n');
    await snapshot('home');
    const { exitCode, json } = await hozoJson(config('nightly'), 'run', 'nightly');
    expect(exitCode).toBe(0);
    expect(json.datasets[0]).toMatchObject({ result: 'sent', plan: '-I @e1 → @e2', snapshotsSent: ['e2'] });
    expect(json.hosts[0].shutdown).toBe('done');
    expect(await waitAsleep()).toBe(true);
  });

  it('restore through the agent wakes the box, receives its send, and puts it back to sleep', async () => {
    expect(await asleep()).toBe(true);
    const r = await hozoJson(config('nightly'), 'restore', 'nightly', '--dataset', `${src}/home`, '--to', `${src}/restored/home`, '--mount');
    expect(r.exitCode).toBe(0);
    expect(r.json.datasets[0]).toMatchObject({ result: 'sent', verified: true });
    expect(r.json.hosts[0]).toMatchObject({ woke: true, shutdown: 'done' });
    expect(readFileSync(join(lab.source.mountpoint, 'restored/home/notes.txt'), 'utf8')).toBe('hello again\n');
    expect(await lab.hostZfs(['get', '-H', '-p', '-o', 'value', 'guid', `${src}/restored/home@e2`])).toBe(
      await lab.hostZfs(['get', '-H', '-p', '-o', 'value', 'guid', `${src}/home@e2`]),
    );
    expect(await waitAsleep()).toBe(true);
  });

  it('status does not wake a sleeping box; wake --wait and shutdown do what they say', async () => {
    const cfg = config('nightly');
    const st = await hozoJson(cfg, 'status');
    expect(st.exitCode).toBe(0);
    expectOutput('status', st.json);
    expect(st.json.hosts[0]).toMatchObject({ name: 'offsite', awake: false, state: 'asleep' });
    expect(st.json.jobs[0].state.lastRun.result).toBe('ok');
    expect(await asleep()).toBe(true);
    // run --dry-run changes nothing, a sleeping box included: it says so instead of waking it (like plan).
    const dry = await hozoJson(cfg, 'run', 'nightly', '--dry-run');
    expect(dry.exitCode).toBe(3);
    expect(dry.json).toMatchObject({ mode: 'dry-run', dryRun: true });
    expect(dry.json.error.message).toMatch(/asleep/);
    expect(dry.json.error.hint).toMatch(/--wake/);
    expectOutput('job-report', dry.json);
    expect(await asleep()).toBe(true);
    const w = await hozo(cfg, 'wake', 'offsite', '--wait');
    expect(w.exitCode).toBe(0);
    expect(w.stdout).toMatch(/ready after/);
    expect(await lab.box.sshPortOpen(1000)).toBe(true);
    const awake = await hozoJson(cfg, 'status');
    expectOutput('status', awake.json);
    expect(awake.json.hosts[0].awake).toBe(true);
    expect(awake.json.hosts[0].pools[0]).toMatchObject({ name: lab.box.pool.name, health: 'ONLINE' });
    const s = await hozo(cfg, 'shutdown', 'offsite');
    expect(s.exitCode).toBe(0);
    expect(await waitAsleep()).toBe(true);
  });

  it('a box that is already awake is used and left awake', async () => {
    await lab.box.startSshd();
    await snapshot('home');
    const { exitCode, json } = await hozoJson(config('nightly'), 'run', 'nightly');
    expect(exitCode).toBe(0);
    expect(json.hosts[0]).toMatchObject({ awakeBefore: true, woke: false, shutdown: 'skipped' });
    expect(await lab.box.sshPortOpen(1000)).toBe(true);
    await lab.box.stopSshd();
  });

  it('the controller key cannot destroy backups: the agent refuses zfs destroy and it changes nothing', async () => {
    await lab.box.startSshd();
    try {
      const before = await lab.box.zfs(['list', '-H', '-t', 'snapshot', '-o', 'name', '-r', root()]);
      for (const cmd of [
        ['zfs', 'destroy', '-r', `${root()}/home`],
        ['sh', '-c', 'id'],
        ['receive', '-u', 'otherpool/x'],
      ]) {
        const r = await lab.box.ssh(cmd);
        expect(r.exitCode).toBe(2);
        expect(r.stderr).toContain('refused');
      }
      expect(await lab.box.zfs(['list', '-H', '-t', 'snapshot', '-o', 'name', '-r', root()])).toBe(before);
    } finally {
      await lab.box.stopSshd();
    }
  });

  it('a box that never wakes: exit 3 within readyTimeout, a clear message, and metrics still written', async () => {
    await lab.box.stopWakeListener();
    try {
      const cfg = config('nightly', { host: { readyTimeout: 3 } });
      const t0 = Date.now();
      const r = await hozo(cfg, 'run', 'nightly');
      const seconds = (Date.now() - t0) / 1000;
      expect(r.exitCode).toBe(3);
      expect(seconds).toBeLessThan(10);
      expect(r.stderr + r.stdout).toContain('did not become ready within 3s: its SSH port never opened (did the magic packet reach it?');
      expect(metric('nightly', 'hozo_job_last_run_success')).toBe(0);
      expect(metric('nightly', 'hozo_job_last_success_timestamp_seconds')).toBeGreaterThan(0);
      // status now says so with its exit code (like systemctl status): the last run of nightly failed.
      const st = await hozo(cfg, 'status', 'offsite');
      expect(st.exitCode).toBe(1);
      expect(st.stdout).toMatch(/job nightly \(offsite\): last run .* unreachable/);
      if (promtool)
        expect((await execa('promtool', ['check', 'metrics'], { input: readFileSync(join(metricsDir, 'hozo_nightly.prom')), reject: false })).exitCode).toBe(0);
    } finally {
      await lab.box.startWakeListener({ startSshd: true, bootDelayMs: 800 });
    }
  });

  it('SIGTERM during a transfer: the stream stops, the run is recorded as interrupted, lock and lease released, the box back to sleep, exit 143', async () => {
    expect(await asleep()).toBe(true);
    await snapshot('archive');
    const cfg = config('stopme', {
      jobs: [{ name: 'stopme', host: 'offsite', retries: 2, retryDelay: 30, datasets: [{ source: `${src}/archive`, target: `${root()}/archive` }] }],
    });
    // The link to the box at 40 Mbit/s: the 192 MiB stream lasts about 40 s, time enough to interrupt it.
    await execa('tc', ['qdisc', 'replace', 'dev', lab.box.hostIf, 'root', 'tbf', 'rate', '40mbit', 'burst', '64kb', 'latency', '400ms']);
    try {
      const run = startHozo(cfg, ['run', 'stopme']);
      let receiving = false;
      for (let i = 0; i < 300 && !receiving; i++) {
        await new Promise((r) => setTimeout(r, 100));
        receiving = (await execa('pgrep', ['-f', `zfs receive .*${root()}/archive`], { reject: false })).exitCode === 0;
      }
      expect(receiving, 'the box began receiving').toBe(true);
      await new Promise((r) => setTimeout(r, 1000));
      const t0 = Date.now();
      process.kill(run.pid!, 'SIGTERM');
      const r = await run;
      expect(r.exitCode, String(r.stderr)).toBe(143);
      expect((Date.now() - t0) / 1000).toBeLessThan(60);
      expect(String(r.stderr)).toContain('interrupted by SIGTERM');
      // Recorded as a failed run, said once on stderr; metrics too.
      expect(String(r.stderr).match(/error: interrupted by SIGTERM/g)).toHaveLength(1);
      const st = await hozoJson(cfg, 'status', 'offsite');
      expect(st.json.jobs[0].state.lastRun).toMatchObject({ result: 'error' });
      expect(JSON.stringify(st.json.jobs[0].state.lastRun)).toContain('INTERRUPTED');
      expect(metric('stopme', 'hozo_job_last_run_success')).toBe(0);
      // Lock gone, no lease left on the box, nothing still sending or receiving, the box asleep again.
      expect(existsSync(join(lab.dir, 'state-stopme', 'locks', 'stopme.lock'))).toBe(false);
      const leases = join(lab.box.dir, 'agent', 'leases');
      expect(existsSync(leases) ? readdirSync(leases).filter((f) => f.endsWith('.lease')) : []).toEqual([]);
      expect((await execa('pgrep', ['-f', `zfs (send|receive) .*archive`], { reject: false })).exitCode).toBe(1);
      expect(await waitAsleep()).toBe(true);
    } finally {
      await execa('tc', ['qdisc', 'del', 'dev', lab.box.hostIf, 'root'], { reject: false });
    }
    // The next run sends it whole.
    const again = await hozoJson(cfg, 'run', 'stopme');
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.json.datasets[0]).toMatchObject({ result: 'sent', verified: true });
    expect(await waitAsleep()).toBe(true);
  }, 180_000);

  it('a box it woke whose pool never appears: exit 3 naming the pool, and the box is put back to sleep', async () => {
    installAgent(lab.box, { roots: [root()], extra: { pools: [lab.box.pool.name, 'nopool'], prepareTimeoutSeconds: 1 } });
    try {
      expect(await asleep(), 'the box sleeps before the run').toBe(true);
      const cfg = config('nopool', { host: { readyTimeout: 8, pools: [lab.box.pool.name, 'nopool'] } });
      const r = await hozo(cfg, 'run', 'nopool', '--json');
      expect(r.exitCode, r.stderr).toBe(3);
      const report = JSON.parse(r.stdout);
      expect(report.error.message).toContain('nopool');
      expect(report.hosts[0]).toMatchObject({ name: 'offsite', woke: true, shutdown: 'done' });
      expect(await waitAsleep(), 'the box it woke went back to sleep').toBe(true);
    } finally {
      installAgent(lab.box, { roots: [root()] });
    }
  });

  it('two controllers sharing the box: it powers off only after both have finished', async () => {
    await snapshot('media', 'archive');
    // a wakes the box for a 96 MiB transfer; b joins once a holds its lease, with twice as much to send, so a
    // finishes first while b still holds its lease. A third controller's lease (taken through the agent's own state
    // code while the box sleeps, released through the agent once b holds its lease) makes the order certain: without
    // it, a fast a could finish and power the box off before b's lease arrives.
    const a = config('ctl-a', { jobs: [{ name: 'ctl-a', host: 'offsite', retries: 0, datasets: [{ source: `${src}/media`, target: `${root()}/a/media` }] }] });
    const b = config('ctl-b', {
      jobs: [{ name: 'ctl-b', host: 'offsite', retries: 0, datasets: [{ source: `${src}/archive`, target: `${root()}/b/archive` }] }],
    });
    const leases = join(lab.box.dir, 'agent', 'leases');
    const names = () => (existsSync(leases) ? readdirSync(leases).filter((f) => f.endsWith('.lease')) : []);
    const held = () => names().length;
    new AgentState({ leaseDirectory: leases, stateDirectory: join(lab.box.dir, 'agent') }).hold('ctl-c.gate', 600);
    const pa = startHozo(a, ['run', 'ctl-a', '--json']);
    for (let i = 0; i < 300 && !names().some((n) => n.endsWith('.ctl-a.lease')); i++) await new Promise((r) => setTimeout(r, 50));
    expect(names().some((n) => n.endsWith('.ctl-a.lease'))).toBe(true);
    const pb = startHozo(b, ['run', 'ctl-b', '--json']);
    for (let i = 0; i < 600 && !names().some((n) => n.endsWith('.ctl-b.lease')); i++) await new Promise((r) => setTimeout(r, 50));
    expect(names().some((n) => n.endsWith('.ctl-b.lease'))).toBe(true);
    expect((await lab.box.ssh(['release', 'ctl-c.gate'])).exitCode).toBe(0);
    const [ra, rb] = await Promise.all([pa, pb]);
    const ja = JSON.parse(String(ra.stdout));
    const jb = JSON.parse(String(rb.stdout));
    expect([ra.exitCode, rb.exitCode]).toEqual([0, 0]);
    expect(ja.hosts[0].woke).toBe(true);
    expect(jb.hosts[0].awakeBefore, `b: ${String(rb.stderr)}\na: ${String(ra.stderr)}`).toBe(true);
    // a finished first: the agent deferred its shutdown because of b's lease …
    expect(ja.hosts[0].shutdown).toBe('deferred');
    expect(ja.hosts[0].shutdownDetail).toMatch(/lease/);
    // … and carried it out when b released the last lease (b found the box awake and would not have shut it down).
    expect(jb.hosts[0].shutdown).toBe('done');
    expect(jb.hosts[0].shutdownDetail).toContain('last lease');
    expect(await waitAsleep()).toBe(true);
    expect(held()).toBe(0);
  });

  it('a run that finds the box powering down for another controller lets it go down, then wakes it again', async () => {
    await snapshot('home');
    await lab.box.startSshd();
    expect((await lab.box.ssh(['prepare'])).exitCode).toBe(0);
    // Another controller's accepted shutdown: the power-off follows in poweroffDelaySeconds (1 s).
    expect((await lab.box.ssh(['shutdown'])).exitCode).toBe(0);
    const r = await hozoJson(config('nightly'), 'run', 'nightly');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain('shutting down for another controller');
    expect(r.json.hosts[0]).toMatchObject({ woke: true, awakeBefore: false, shutdown: 'done' });
    expect(r.json.datasets[0]).toMatchObject({ result: 'sent', verified: true });
    expect(await waitAsleep()).toBe(true);
  });

  it('wake method http: a smart-plug style URL on loopback is called, the box comes up, the run completes', async () => {
    await snapshot('home');
    let calls = 0;
    // Plays the smart plug: power on = start the box's sshd (after a short "boot").
    const server = createServer((req, res) => {
      calls++;
      expect(req.method).toBe('POST');
      setTimeout(() => void lab.box.startSshd(), 300);
      res.end('ok');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      const cfg = config('nightly', { host: { wake: { method: 'http', url: `http://127.0.0.1:${port}/api/webhook/secret-token` } } });
      const r = await hozoJson(cfg, 'run', 'nightly');
      expect(r.exitCode).toBe(0);
      expect(calls).toBe(1);
      expect(r.json.hosts[0]).toMatchObject({ woke: true, shutdown: 'done' });
      expect(r.stderr).not.toContain('secret-token');
      expect(await waitAsleep()).toBe(true);
    } finally {
      server.close();
    }
  });

  it('wake method command, and shutdown: ssh without the agent (plain zfs over SSH, a configured power-off command)', async () => {
    await snapshot('home');
    // The plain setup: the key is not confined to the agent; "power off" is the box's harmless sleep command.
    lab.box.setAuthorizedKeys([lab.box.clientKeyLine()]);
    // Without the agent nobody imports the pool on wake: a real box imports it at boot. The agent exported it.
    await lab.box.exec(['zpool', 'import', '-d', dirname(lab.box.pool.image), lab.box.pool.name]);
    try {
      const magic = `const s=require('dgram').createSocket('udp4');const m=Buffer.concat([Buffer.alloc(6,255),...Array(16).fill(Buffer.from('${lab.box.mac.replace(/:/g, '')}','hex'))]);s.bind(()=>{s.setBroadcast(true);let n=0;const go=()=>s.send(m,9,'${lab.box.broadcast}',()=>{if(++n<3)go();else s.close()});go()})`;
      const cfg = config('plain', {
        host: {
          shutdown: 'ssh',
          agent: false,
          shutdownCommand: [...lab.box.sleepCommand],
          wake: { method: 'command', command: [process.execPath, '-e', magic] },
        },
        jobs: [{ name: 'plain', host: 'offsite', retries: 0, datasets: [{ source: `${src}/home`, target: `${root()}/plain/home` }] }],
      });
      const events = lab.box.wakeEvents().length;
      const r = await hozoJson(cfg, 'run', 'plain');
      expect(r.exitCode).toBe(0);
      expect(lab.box.wakeEvents().length).toBeGreaterThan(events);
      expect(r.json.datasets[0]).toMatchObject({ result: 'sent', verified: true });
      expect(r.json.hosts[0]).toMatchObject({ woke: true, shutdown: 'done' });
      expect(await waitAsleep()).toBe(true);
      expect(await lab.box.zfs(['get', '-H', '-o', 'value', 'canmount', `${root()}/plain/home`])).toBe('noauto');
    } finally {
      installAgent(lab.box, { roots: [root()] });
    }
  });

  it('wake method ssh-relay: an always-on relay at the box site runs the wake command over real SSH', async () => {
    await snapshot('home');
    // The relay is a second lab host with its own namespace and sshd. Its wake command leaves a request file; this
    // test plays the relay's wakeonlan by starting the sleeping box's sshd when the file appears.
    const relay = await createLab({ id: 'e2erelay' });
    const request = join(relay.dir, 'wake-request');
    try {
      const cfg = writeConfig(
        lab.dir,
        {
          stateDirectory: join(lab.dir, 'state-relay'),
          hosts: {
            offsite: {
              ...lab.box.hostConfig(),
              readyTimeout: 30,
              shutdown: 'agent',
              wake: { method: 'ssh-relay', relayHost: 'relay', command: ['touch', request] },
            },
            relay: { ...relay.box.hostConfig(), wake: undefined },
          },
          jobs: [{ name: 'relayed', host: 'offsite', retries: 0, datasets: [{ source: `${src}/home`, target: `${root()}/relayed/home` }] }],
        },
        'relayed.yaml',
      );
      const run = startHozo(cfg, ['run', 'relayed', '--json']);
      let woke = false;
      for (let i = 0; i < 200 && !woke; i++) {
        await new Promise((r) => setTimeout(r, 50));
        if (existsSync(request)) {
          await lab.box.startSshd();
          woke = true;
        }
      }
      const r = await run;
      expect(woke).toBe(true);
      expect(r.exitCode).toBe(0);
      const json = JSON.parse(String(r.stdout));
      expect(json.hosts[0]).toMatchObject({ woke: true, shutdown: 'done' });
      expect(json.datasets[0]).toMatchObject({ result: 'sent', verified: true });
      expect(await waitAsleep()).toBe(true);
    } finally {
      await relay.destroy();
    }
  });
});
