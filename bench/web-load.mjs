#!/usr/bin/env node
// The dashboard under load (issue 14), as root: does watching a run slow it, and how much memory does `hozo serve`
// take? One zfs-fuse lab (src/lab), a ~400 MB incompressible dataset, `hozo run` of it into a fresh target N times
// unobserved and N times while `hozo serve` has CLIENTS clients polling GET /api/status once a second and CLIENTS event
// streams (GET /api/events, which carry the run's progress) open, interleaved. Reported: each run's seconds (from its
// report), the observed/unobserved ratio of the medians, the server's largest RSS (VmRSS, sampled every 100 ms), the
// requests answered and failed. Writes bench/results/web-load.json (gitignored). Knobs (env): BENCH_SIZE_MB (400),
// BENCH_N (3), BENCH_CLIENTS (50), BENCH_LAB_ID (webload). All traffic stays on loopback and the lab's 10.77.n.0/24.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { intEnv, median, r2 } from './stats.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const HOZO = join(ROOT, 'dist', 'bin', 'hozo', 'hozo.js');
const SIZE_MB = intEnv('BENCH_SIZE_MB', 400, 16, 4096);
const N = intEnv('BENCH_N', 3, 1, 20);
const CLIENTS = intEnv('BENCH_CLIENTS', 50, 1, 200);
const LAB_ID = process.env.BENCH_LAB_ID ?? 'webload';
const log = (m) => process.stderr.write(`[web-load +${((Date.now() - t0) / 1000).toFixed(0)}s] ${m}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const t0 = Date.now();

if (process.getuid?.() !== 0) {
  console.error('bench/web-load.mjs needs root (the lab: zfs-fuse pools, a network namespace)');
  process.exit(2);
}

const { createLab } = await import('../dist/src/lab/lab.js');
const tmp = mkdtempSync(join(os.tmpdir(), 'hozo-webload-'));
const lab = await createLab({ id: LAB_ID, poolSizeMB: Math.max(768, SIZE_MB * 2 + 256) });
let server;
try {
  const src = lab.source.name;
  const bpool = lab.box.pool.name;
  await lab.hostZfs(['create', `${src}/big`]);
  await execa('sh', ['-c', `head -c ${SIZE_MB}M /dev/urandom > ${join(lab.source.mountpoint, 'big', 'data.bin')}`]);
  await lab.hostZfs(['snapshot', `${src}/big@load1`]);
  const host = { ...lab.box.hostConfig() };
  delete host.wake;
  const config = join(tmp, 'hozo.json');
  writeFileSync(
    config,
    JSON.stringify({
      stateDirectory: join(tmp, 'state'),
      hosts: { box: host },
      jobs: [{ name: 'big', host: 'box', retries: 0, datasets: [{ source: `${src}/big`, target: `${bpool}/webload/big` }] }],
    }),
  );
  const fresh = async () => {
    for (let i = 0; ; i++) {
      const r = await lab.box.exec(['zfs', 'destroy', '-r', `${bpool}/webload`]);
      if (r.exitCode === 0 || /does not exist/.test(r.stderr) || i >= 40) return;
      await sleep(250); // zfs-fuse: "dataset is busy" for a moment after a receive
    }
  };
  const run = async () => {
    await fresh();
    const r = await execa('node', [HOZO, '--config', config, '--json', 'run', 'big'], { reject: false });
    const report = JSON.parse(r.stdout);
    if (report.result !== 'ok') throw new Error(`hozo run: ${report.result}: ${r.stderr.slice(-2000)}`);
    return report.datasets[0].seconds;
  };

  // The server, its RSS sampled, and the clients.
  server = spawn('node', [HOZO, '--config', config, 'serve', '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  server.stderr.on('data', (d) => (err += d));
  for (let i = 0; i < 150 && !/serving http/.test(err); i++) await sleep(100);
  const url = /serving (http:\/\/127\.0\.0\.1:\d+)\//.exec(err)?.[1];
  if (url === undefined) throw new Error(`hozo serve did not start:\n${err}`);
  const rss = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${server.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
  let maxRss = rss();
  const sampler = setInterval(() => (maxRss = Math.max(maxRss, rss())), 100);
  const counts = { status: 0, failed: 0, events: 0, progressEvents: 0 };
  let watching = false;
  const pollers = [];
  const streams = [];
  const watch = () => {
    watching = true;
    for (let c = 0; c < CLIENTS; c++) {
      pollers.push(
        (async () => {
          await sleep(c * (1000 / CLIENTS)); // spread over the second
          while (watching) {
            try {
              const r = await fetch(`${url}/api/status`);
              await r.arrayBuffer();
              if (r.status === 200) counts.status++;
              else counts.failed++;
            } catch {
              counts.failed++;
            }
            await sleep(1000);
          }
        })(),
      );
      const ac = new AbortController();
      streams.push(ac);
      fetch(`${url}/api/events`, { signal: ac.signal })
        .then(async (r) => {
          counts.events++;
          const reader = r.body.getReader();
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            counts.progressEvents += (
              Buffer.from(value)
                .toString()
                .match(/event: progress/g) ?? []
            ).length;
          }
        })
        .catch(() => undefined);
    }
  };
  const unwatch = async () => {
    watching = false;
    for (const ac of streams.splice(0)) ac.abort();
    await Promise.all(pollers.splice(0));
  };

  log(`warm-up run (${SIZE_MB} MB)`);
  await run();
  const quiet = [];
  const watched = [];
  for (let i = 0; i < N; i++) {
    quiet.push(await run());
    log(`round ${i + 1}/${N}: unobserved ${quiet.at(-1).toFixed(2)} s`);
    watch();
    await sleep(1500); // the clients connected and polling
    watched.push(await run());
    await unwatch();
    log(`round ${i + 1}/${N}: observed by ${CLIENTS} pollers + ${CLIENTS} event streams ${watched.at(-1).toFixed(2)} s`);
  }
  clearInterval(sampler);
  const result = {
    startedAt: new Date(t0).toISOString(),
    sizeMB: SIZE_MB,
    rounds: N,
    clients: CLIENTS,
    unobservedSeconds: quiet.map(r2),
    observedSeconds: watched.map(r2),
    observedOverUnobserved: r2(median(watched) / median(quiet)),
    serverMaxRssMB: r2(maxRss),
    statusAnswered: counts.status,
    requestsFailed: counts.failed,
    eventStreams: counts.events,
    progressEvents: counts.progressEvents,
    cpus: os.cpus().length,
  };
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench', 'results', 'web-load.json'), `${JSON.stringify(result, null, 2)}\n`);
  console.log(JSON.stringify(result, null, 2));
} finally {
  server?.kill('SIGTERM');
  await lab.destroy().catch((e) => log(`lab teardown: ${e.message}`));
  rmSync(tmp, { recursive: true, force: true });
}
