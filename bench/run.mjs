#!/usr/bin/env node
// Hōzō benchmark (`npm run bench`, as root): one lab (src/lab), one run, every tool side by side, reported as ratios.
//
//   1. Full replication of a ~400 MB incompressible dataset to the box, three ways, N repeats each, interleaved,
//      each into a fresh target: raw `zfs send | ssh -c aes128-gcm | zfs receive -u`, `hozo run`, syncoid.
//   2. No-op runs over 200 datasets (one recursive parent): hozo vs `syncoid --recursive`, N repeats each; wall time,
//      SSH connections and sessions (from the box's sshd log), and, in one extra untimed pass with PATH shims, the
//      number of zfs commands each side ran.
//
// Writes bench/results/latest.json (gitignored). Knobs (env): BENCH_SIZE_MB (400), BENCH_DATASETS (200), BENCH_N (3),
// BENCH_SYNCOID_COMPRESS (none), BENCH_LAB_ID (bench). The box is this machine in a network namespace: nothing here
// powers anything off, and all SSH traffic goes to the lab's own 10.77.<n>.0/24 address.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');
const HOZO = join(ROOT, 'dist/src/cli/main.js');
const RESULTS = join(HERE, 'results');

const SIZE_MB = intEnv('BENCH_SIZE_MB', 400, 1, 4096);
const DATASETS = intEnv('BENCH_DATASETS', 200, 1, 1000);
const N = intEnv('BENCH_N', 3, 1, 10);
const SYNCOID_COMPRESS = process.env.BENCH_SYNCOID_COMPRESS ?? 'none';
const LAB_ID = process.env.BENCH_LAB_ID ?? 'bench';
const CIPHER = 'aes128-gcm@openssh.com';
const TARGETS = { throughput: 0.95, noopTimeRatio: 0.1, noopSshConnections: 3 };

function intEnv(name, dflt, min, max) {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name}=${v}: expected an integer ${min}..${max}`);
  return n;
}

// ---------------------------------------------------------------------------------------------------------------
// Ctrl-C / SIGTERM: stop the running command, tear the lab down, exit. A second signal exits at once.

const running = new Set();
let aborting = false;
let cleanupPromise;
/** Set once the lab exists; before that an abort is noticed by main() right after createLab returns. */
let cleanupFn;
const cleanupOnce = () =>
  cleanupFn === undefined ? Promise.resolve() : (cleanupPromise ??= cleanupFn().catch((e) => console.error(`cleanup: ${e.message}`)));

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    if (aborting) {
      console.error(`\n${sig} again: exiting without waiting for cleanup (run: node dist/src/lab/cli.js cleanup --id ${LAB_ID})`);
      process.exit(130);
    }
    aborting = true;
    console.error(`\n${sig}: stopping, tearing the lab down…`);
    for (const c of running) c.kill('SIGTERM');
    if (cleanupFn !== undefined) void cleanupOnce().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  });
}

function checkAbort() {
  if (aborting) throw new Error('aborted');
}

// ---------------------------------------------------------------------------------------------------------------
// Small helpers

const log = (m) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${m}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const min = (xs) => Math.min(...xs);
const max = (xs) => Math.max(...xs);
const r2 = (x) => (x === undefined || x === null || Number.isNaN(x) ? null : Math.round(x * 100) / 100);
const r3 = (x) => (x === undefined || x === null || Number.isNaN(x) ? null : Math.round(x * 1000) / 1000);

/** Quotes argv for a POSIX shell (only for printing and for the raw pipeline's sh -c string). */
function sq(argv) {
  return argv.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

async function sh(cmd, opts = {}) {
  const r = await execa('sh', ['-c', cmd], { reject: false, ...opts });
  if (r.exitCode !== 0) throw new Error(`\`${cmd}\` failed (exit ${r.exitCode}): ${String(r.stderr).trim()}`);
  return String(r.stdout).trim();
}

/** stdout, or stderr when stdout is empty (`ssh -V` prints to stderr). */
function tryText(argv) {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return (r.stdout?.trim() || r.stderr?.trim() || r.error?.message || '').trim();
}

function which(cmd) {
  for (const d of (process.env.PATH ?? '').split(':')) if (d && existsSync(join(d, cmd))) return join(d, cmd);
  return undefined;
}

/** Peak RSS (VmHWM, KiB) of a process, or undefined once it is gone. */
function vmHwm(pid) {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

function childPids(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

let seq = 0;
let tmp;

/**
 * Runs argv under GNU time. Wall time is measured here (hrtime around the whole process, startup included).
 * controllerRssKB: peak RSS of the controller process itself (the direct child of time: sh, node or perl), sampled
 * from /proc/<pid>/status VmHWM every 20 ms; treeMaxRssKB: GNU time's %M (largest single process in the tree).
 * cpuS: user+sys of the whole tree (every process the controller waited for).
 */
async function measure(argv, { env = {}, timeoutMs = 300_000, stderrTimeline = false } = {}) {
  checkAbort();
  const timeFile = join(tmp, `time-${++seq}.txt`);
  const started = process.hrtime.bigint();
  const child = execa('/usr/bin/time', ['-f', '%e %M %U %S', '-o', timeFile, ...argv], {
    reject: false,
    env,
    stdin: 'ignore',
    timeout: timeoutMs,
  });
  running.add(child);
  // Optional: each stderr line with the seconds since start (phases of a --verbose hozo run).
  const timeline = [];
  if (stderrTimeline) {
    let pending = '';
    child.stderr.on('data', (chunk) => {
      const at = Number(process.hrtime.bigint() - started) / 1e9;
      const lines = (pending + chunk.toString()).split('\n');
      pending = lines.pop();
      for (const l of lines) if (l.trim() !== '') timeline.push({ t: r3(at), line: l.slice(0, 240) });
    });
  }
  let controller;
  let hwm;
  const poll = setInterval(() => {
    if (controller === undefined && child.pid !== undefined) controller = childPids(child.pid)[0];
    if (controller !== undefined) {
      const v = vmHwm(controller);
      if (v !== undefined) hwm = Math.max(hwm ?? 0, v);
    }
  }, 20);
  let r;
  try {
    r = await child;
  } finally {
    clearInterval(poll);
    running.delete(child);
  }
  const wall = Number(process.hrtime.bigint() - started) / 1e9;
  let treeMaxRssKB;
  let cpuS;
  try {
    const last = readFileSync(timeFile, 'utf8').trim().split('\n').pop();
    const [, m, u, s] = last.split(' ').map(Number);
    treeMaxRssKB = m;
    cpuS = u + s;
  } catch {
    // killed before time wrote its file
  }
  return {
    wall,
    exitCode: r.exitCode,
    timedOut: r.timedOut === true,
    stdout: String(r.stdout ?? ''),
    stderr: String(r.stderr ?? ''),
    controllerRssKB: hwm,
    treeMaxRssKB,
    cpuS,
    ...(stderrTimeline ? { timeline: [...timeline, { t: r3(wall), line: `(exit ${r.exitCode})` }] } : {}),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Preflight and machine info

async function preflight() {
  if (process.getuid?.() !== 0) throw new Error('the benchmark needs root (zfs-fuse, network namespaces)');
  if (!existsSync(HOZO)) throw new Error(`${HOZO} is missing: run \`npm run build\` (npm run bench does)`);
  const need = [];
  if (!existsSync('/usr/bin/time')) need.push('time');
  if (!existsSync('/usr/sbin/syncoid')) need.push('sanoid');
  for (const [cmd, pkg] of [['zfs-fuse', 'zfs-fuse'], ['sshd', 'openssh-server'], ['mbuffer', 'mbuffer'], ['pv', 'pv']]) {
    if (which(cmd) === undefined && !existsSync(`/usr/sbin/${cmd}`)) need.push(pkg);
  }
  if (need.length > 0) {
    log(`installing ${need.join(' ')} (apt-get)`);
    const r = await execa('apt-get', ['install', '-y', '--no-install-recommends', ...need], {
      reject: false,
      env: { DEBIAN_FRONTEND: 'noninteractive' },
      timeout: 300_000,
    });
    if (r.exitCode !== 0) throw new Error(`apt-get install ${need.join(' ')} failed:\n${String(r.stderr).slice(-2000)}`);
  }
}

function machineInfo() {
  const cpu = os.cpus();
  const dpkgVersion = (p) => tryText(['dpkg-query', '-W', '-f=${Version}', p]);
  let git = '';
  try {
    git = execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    git = 'unknown';
  }
  return {
    nproc: Number(tryText(['nproc'])),
    cpu: cpu[0]?.model ?? 'unknown',
    memGiB: r2(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    os: existsSync('/etc/debian_version') ? `Debian ${readFileSync('/etc/debian_version', 'utf8').trim()}` : os.platform(),
    node: process.version,
    zfsFuse: dpkgVersion('zfs-fuse'),
    openssh: tryText(['ssh', '-V']),
    syncoid: `${tryText(['/usr/sbin/syncoid', '--version']).split('\n')[0]} (sanoid ${dpkgVersion('sanoid')})`,
    mbuffer: dpkgVersion('mbuffer'),
    pv: dpkgVersion('pv'),
    hozoCommit: git,
    loadavgStart: os.loadavg().map(r2),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// syncoid: a private, patched copy (Debian's 2.1.0 fails every run after the first against zfs-fuse, sanoid #749:
// getsnaps() prefixes "ssh … host" to $rhost and then hands that to getsnapsfallback(), which prefixes it again).

function patchedSyncoid(dir) {
  const src = readFileSync('/usr/sbin/syncoid', 'utf8');
  const bad = 'return getsnapsfallback($type,$rhost,$fs,$isroot,%snaps);';
  const count = src.split(bad).length - 1;
  if (count !== 1) throw new Error(`/usr/sbin/syncoid: expected the sanoid #749 line once, found it ${count} times (not 2.1.0?)`);
  // $_[1] is getsnaps()' original $rhost argument, before "$sshcmd " was prepended to the local copy.
  const fixed = src.replace(bad, 'return getsnapsfallback($type,$_[1],$fs,$isroot,%snaps); # hozo bench: sanoid #749');
  const path = join(dir, 'syncoid');
  writeFileSync(path, fixed, { mode: 0o755 });
  return path;
}

// ---------------------------------------------------------------------------------------------------------------
// Counting: SSH connections/sessions from the box's sshd log (LogLevel VERBOSE), zfs commands via PATH shims.

function sshdCounts(logFile) {
  let text = '';
  try {
    text = readFileSync(logFile, 'utf8');
  } catch {
    // not written yet
  }
  return {
    connections: (text.match(/Accepted publickey for /g) ?? []).length,
    sessions: (text.match(/Starting session: /g) ?? []).length,
  };
}

const diffCounts = (a, b) => ({ connections: b.connections - a.connections, sessions: b.sessions - a.sessions });

/** A directory with zfs and zpool wrappers that log each call (with its duration) and run the real binary. */
function makeShim(dir, logFile) {
  mkdirSync(dir, { recursive: true });
  for (const cmd of ['zfs', 'zpool']) {
    const real = existsSync(`/usr/sbin/${cmd}`) ? `/usr/sbin/${cmd}` : `/sbin/${cmd}`;
    writeFileSync(
      join(dir, cmd),
      `#!/bin/sh
s=$(date +%s%N)
${real} "$@"
rc=$?
e=$(date +%s%N)
printf '%s\\t%s\\t%s\\n' "$(( (e - s) / 1000 ))" "$rc" "${cmd} $*" | tr -d '\\r' >> '${logFile}'
exit $rc
`,
    );
    chmodSync(join(dir, cmd), 0o755);
  }
}

/** zfs/zpool calls logged by a shim: count, total µs, and the commands grouped by subcommand. */
function readShimLog(logFile) {
  let lines = [];
  try {
    lines = readFileSync(logFile, 'utf8').split('\n').filter(Boolean);
  } catch {
    return { commands: 0, seconds: 0, bySubcommand: {} };
  }
  const by = {};
  let us = 0;
  for (const l of lines) {
    const [t, , cmd] = l.split('\t');
    us += Number(t);
    const key = cmd.split(' ').slice(0, 2).join(' ');
    by[key] ??= { count: 0, seconds: 0 };
    by[key].count++;
    by[key].seconds += Number(t) / 1e6;
  }
  for (const v of Object.values(by)) v.seconds = r3(v.seconds);
  return { commands: lines.length, seconds: r3(us / 1e6), bySubcommand: by };
}

// ---------------------------------------------------------------------------------------------------------------
// Main

async function main() {
  await preflight();
  const { createLab } = await import('../dist/src/lab/lab.js');
  tmp = mkdtempSync(join(os.tmpdir(), 'hozo-bench-'));
  const machine = machineInfo();
  const startedAt = new Date().toISOString();
  const t0 = Date.now();

  log(`creating lab "${LAB_ID}" (pools ${Math.max(768, SIZE_MB * 2 + 256)} MB, sparse)`);
  const lab = await createLab({ id: LAB_ID, poolSizeMB: Math.max(768, SIZE_MB * 2 + 256) });
  cleanupFn = async () => {
    for (const c of running) c.kill('SIGKILL');
    const { ms } = await lab.destroy();
    log(`lab destroyed in ${ms} ms`);
    rmSync(tmp, { recursive: true, force: true });
  };
  checkAbort();
  const box = lab.box;
  const src = lab.source.name;
  const bpool = box.pool.name;
  const syncoid = patchedSyncoid(tmp);
  const boxZfsRetry = async (argv, what) => {
    // zfs-fuse: destroy of a just-used dataset fails transiently with "dataset is busy".
    for (let i = 0; ; i++) {
      try {
        return await box.zfs(argv);
      } catch (e) {
        if (i >= 40 || !/busy/.test(e.message)) throw new Error(`${what}: ${e.message}`);
        await sleep(250);
      }
    }
  };
  const destroyOnBox = async (ds) => {
    const exists = (await box.exec(['zfs', 'list', '-H', '-o', 'name', ds])).exitCode === 0;
    if (exists) await boxZfsRetry(['destroy', '-r', ds], `destroy ${ds} on the box`);
  };
  const guidOn = async (z, snap) => (await z(['get', '-H', '-p', '-o', 'value', 'guid', snap])).trim();

  // Hozo config: the lab box as host "box", no wake (awake already), no shutdown.
  const host = { ...box.hostConfig() };
  delete host.wake;
  const config = join(tmp, 'hozo.json');
  writeFileSync(
    config,
    JSON.stringify(
      {
        stateDirectory: join(tmp, 'state'),
        hosts: { box: host },
        jobs: [
          { name: 'big', host: 'box', retries: 0, datasets: [{ source: `${src}/big`, target: `${bpool}/bench-hozo/big` }] },
          {
            name: 'many',
            host: 'box',
            retries: 0,
            datasets: [{ source: `${src}/many`, target: `${bpool}/bench-hozo-many`, recursive: true }],
          },
        ],
      },
      null,
      2,
    ),
  );
  const hozoArgv = (job) => ['node', HOZO, '--config', config, 'run', job, '--json'];
  const sshOpts = [
    `--sshkey=${host.sshKeyFile}`,
    `--sshport=${host.port}`,
    `--sshoption=UserKnownHostsFile=${host.knownHostsFile}`,
    '--sshoption=GlobalKnownHostsFile=/dev/null',
    '--sshoption=StrictHostKeyChecking=yes',
    '--sshoption=IdentitiesOnly=yes',
    '--sshoption=BatchMode=yes',
    '--sshoption=LogLevel=ERROR',
  ];
  const syncoidArgv = (source, target, recursive) => [
    syncoid,
    '--no-sync-snap',
    '--no-privilege-elevation',
    `--compress=${SYNCOID_COMPRESS}`,
    `--sshcipher=${CIPHER}`,
    ...sshOpts,
    '--recvoptions=u',
    ...(recursive ? ['--recursive'] : []),
    source,
    `root@${box.boxIp}:${target}`,
  ];
  const rawCommand = (snap, target) =>
    `zfs send ${snap} | ssh -c ${CIPHER} ${sq(box.sshArgs())} ${box.boxIp} zfs receive -u ${target}`;

  // ----- Part 1: full replication of one big incompressible dataset -----
  checkAbort();
  log(`part 1: writing ${SIZE_MB} MB of /dev/urandom into ${src}/big`);
  await lab.hostZfs(['create', '-o', 'compression=off', `${src}/big`]);
  await sh(`head -c ${SIZE_MB}M /dev/urandom > '${join(lab.source.mountpoint, 'big', 'data.bin')}' && sync`);
  await lab.hostZfs(['snapshot', `${src}/big@s1`]);
  const bigSnap = `${src}/big@s1`;
  const bigGuid = await guidOn((a) => lab.hostZfs(a), bigSnap);
  for (const parent of ['bench-raw', 'bench-hozo', 'bench-syncoid']) await box.zfs(['create', '-o', 'mountpoint=none', `${bpool}/${parent}`]);

  // Untimed-for-the-ratio reference: the local send alone (also warms the caches for the first timed run).
  const sendOnly = await measure(['sh', '-c', `zfs send ${bigSnap} | cat > /dev/null`]);
  const streamBytes = Number(await sh(`zfs send ${bigSnap} | wc -c`));
  log(`local send → /dev/null: ${sendOnly.wall.toFixed(2)} s (stream ${(streamBytes / 2 ** 20).toFixed(0)} MiB)`);

  const ways = {
    raw: { target: `${bpool}/bench-raw/big`, argv: () => ['sh', '-c', rawCommand(bigSnap, `${bpool}/bench-raw/big`)] },
    hozo: { target: `${bpool}/bench-hozo/big`, argv: () => hozoArgv('big') },
    syncoid: { target: `${bpool}/bench-syncoid/big`, argv: () => syncoidArgv(`${src}/big`, `${bpool}/bench-syncoid/big`, false) },
  };
  const order = Object.keys(ways);
  const part1Runs = [];
  for (let i = 0; i < N; i++) {
    // Rotate the order every round so no tool always runs first (or right after the same neighbour).
    const round = order.map((_, k) => order[(k + i) % order.length]);
    for (const way of round) {
      checkAbort();
      const w = ways[way];
      await destroyOnBox(w.target);
      const before = sshdCounts(box.files.sshdLog);
      const m = await measure(w.argv());
      const ssh = diffCounts(before, sshdCounts(box.files.sshdLog));
      let ok = m.exitCode === 0;
      let problem = ok ? undefined : `exit ${m.exitCode}${m.timedOut ? ' (timed out)' : ''}: ${(m.stderr || m.stdout).trim().slice(-600)}`;
      if (ok) {
        const got = await guidOn((a) => box.zfs(a), `${w.target}@s1`).catch((e) => `missing (${e.message})`);
        if (got !== bigGuid) {
          ok = false;
          problem = `target snapshot guid ${got} ≠ source ${bigGuid}`;
        }
      }
      // Every way starts from the same box pool state (and the pool never holds two copies).
      await destroyOnBox(w.target);
      let hozoReport;
      if (way === 'hozo') {
        try {
          const j = JSON.parse(m.stdout);
          hozoReport = { bytes: j.bytes, seconds: j.seconds, result: j.result, transferS: j.datasets?.[0]?.seconds };
        } catch {
          // problem already recorded through the exit code
        }
      }
      part1Runs.push({
        way,
        round: i + 1,
        ok,
        ...(problem ? { problem } : {}),
        seconds: r3(m.wall),
        mbPerS: r2(streamBytes / 2 ** 20 / m.wall),
        controllerRssMB: r2(m.controllerRssKB / 1024),
        treeMaxRssMB: r2(m.treeMaxRssKB / 1024),
        cpuS: r2(m.cpuS),
        sshConnections: ssh.connections,
        sshSessions: ssh.sessions,
        ...(hozoReport ? { hozoReport } : {}),
      });
      log(`part 1 round ${i + 1} ${way.padEnd(7)} ${m.wall.toFixed(2)} s${ok ? '' : `  FAILED: ${problem}`}`);
    }
  }
  for (const w of Object.values(ways)) await destroyOnBox(w.target);

  // Where hozo's time goes besides the stream: CLI start-up alone, and a run with nothing to send (same job, the
  // target already there), which is the fixed cost of the lifecycle (connect, probe, inventory, verify, hold, close).
  log('part 1: hozo fixed costs (start-up, 1-dataset no-op run)');
  const startup = [];
  const fixed = [];
  await measure(hozoArgv('big')); // target in place again
  for (let i = 0; i < N; i++) {
    const a = await measure(['node', HOZO, '--version']);
    if (a.exitCode === 0) startup.push(a.wall);
    const b = await measure(hozoArgv('big'));
    if (b.exitCode === 0) fixed.push(b.wall);
  }
  const verboseNoop = await measure(['node', HOZO, '--config', config, '--verbose', 'run', 'big'], { stderrTimeline: true });
  await destroyOnBox(ways.hozo.target);
  const hozoFixed = {
    startupMedianS: startup.length ? r3(median(startup)) : null,
    noopOneDatasetMedianS: fixed.length ? r3(median(fixed)) : null,
    noopOneDatasetTimeline: verboseNoop.timeline,
  };
  log(`  start-up ${hozoFixed.startupMedianS} s, 1-dataset no-op run ${hozoFixed.noopOneDatasetMedianS} s`);

  // ----- Part 2: no-op runs over many datasets -----
  checkAbort();
  log(`part 2: creating ${DATASETS} datasets under ${src}/many`);
  await lab.hostZfs(['create', '-o', 'mountpoint=none', `${src}/many`]);
  const names = Array.from({ length: DATASETS }, (_, i) => `${src}/many/d${String(i).padStart(3, '0')}`);
  // Four at a time: zfs-fuse serialises most work anyway, this only hides process start-up.
  await sh(`printf '%s\\n' ${names.join(' ')} | xargs -P 4 -n 1 zfs create`, { timeout: 300_000 });
  await lab.hostZfs(['snapshot', '-r', `${src}/many@s1`]);

  const hozoMany = { argv: hozoArgv('many'), target: `${bpool}/bench-hozo-many` };
  const syncoidMany = { argv: syncoidArgv(`${src}/many`, `${bpool}/bench-syncoid-many`, true), target: `${bpool}/bench-syncoid-many` };
  const initial = {};
  for (const [way, w] of [['hozo', hozoMany], ['syncoid', syncoidMany]]) {
    checkAbort();
    const before = sshdCounts(box.files.sshdLog);
    const m = await measure(w.argv, { timeoutMs: 600_000 });
    const ssh = diffCounts(before, sshdCounts(box.files.sshdLog));
    const received = (await box.zfs(['list', '-H', '-o', 'name', '-t', 'snapshot', '-r', w.target])).split('\n').filter(Boolean).length;
    initial[way] = {
      ok: m.exitCode === 0 && received === DATASETS + 1,
      seconds: r3(m.wall),
      snapshotsOnTarget: received,
      sshConnections: ssh.connections,
      sshSessions: ssh.sessions,
      ...(m.exitCode !== 0 ? { problem: `exit ${m.exitCode}: ${(m.stderr || m.stdout).trim().slice(-600)}` } : {}),
    };
    log(`part 2 initial ${way}: ${m.wall.toFixed(2)} s, ${received} snapshots on the target${m.exitCode === 0 ? '' : ` FAILED (exit ${m.exitCode})`}`);
    if (m.exitCode !== 0) log((m.stderr || m.stdout).trim().slice(-1500));
  }

  const noopRuns = [];
  for (let i = 0; i < N; i++) {
    const round = i % 2 === 0 ? ['hozo', 'syncoid'] : ['syncoid', 'hozo'];
    for (const way of round) {
      checkAbort();
      const w = way === 'hozo' ? hozoMany : syncoidMany;
      const before = sshdCounts(box.files.sshdLog);
      const m = await measure(w.argv, { timeoutMs: 600_000 });
      const ssh = diffCounts(before, sshdCounts(box.files.sshdLog));
      let ok = m.exitCode === 0;
      let problem = ok ? undefined : `exit ${m.exitCode}: ${(m.stderr || m.stdout).trim().slice(-600)}`;
      if (ok && way === 'hozo') {
        try {
          const j = JSON.parse(m.stdout);
          if (j.bytes !== 0 || !j.datasets.every((d) => d.result === 'up-to-date')) {
            ok = false;
            problem = `not a no-op: bytes ${j.bytes}, results ${[...new Set(j.datasets.map((d) => d.result))].join(',')}`;
          }
        } catch {
          ok = false;
          problem = 'no JSON report';
        }
      }
      if (ok && way === 'syncoid' && /Sending|Updating/.test(m.stdout)) {
        ok = false;
        problem = 'syncoid sent something on a no-op run';
      }
      noopRuns.push({
        way,
        round: i + 1,
        ok,
        ...(problem ? { problem } : {}),
        seconds: r3(m.wall),
        controllerRssMB: r2(m.controllerRssKB / 1024),
        treeMaxRssMB: r2(m.treeMaxRssKB / 1024),
        cpuS: r2(m.cpuS),
        sshConnections: ssh.connections,
        sshSessions: ssh.sessions,
      });
      log(`part 2 no-op round ${i + 1} ${way.padEnd(7)} ${m.wall.toFixed(2)} s, ${ssh.connections} SSH connection(s), ${ssh.sessions} session(s)${ok ? '' : `  FAILED: ${problem}`}`);
    }
  }

  // One extra, untimed pass of each with PATH shims (local zfs) and a logging forced command + shims on the box.
  checkAbort();
  log('part 2: counting zfs commands (one extra no-op run each, with logging shims; not timed)');
  const counts = {};
  const originalKeys = readFileSync(box.files.authorizedKeys, 'utf8').split('\n').filter(Boolean);
  try {
    for (const [way, w] of [['hozo', hozoMany], ['syncoid', syncoidMany]]) {
      const d = join(tmp, `count-${way}`);
      const localLog = join(d, 'local.log');
      const remoteLog = join(d, 'remote.log');
      const sessionsLog = join(d, 'sessions.log');
      makeShim(join(d, 'local-shim'), localLog);
      makeShim(join(d, 'remote-shim'), remoteLog);
      const forced = join(d, 'forced.sh');
      writeFileSync(
        forced,
        `#!/bin/sh
# Logs each SSH session's command, then runs it with the counting shims first on PATH (box side of the benchmark).
printf '%s\\n' "$(printf '%s' "$SSH_ORIGINAL_COMMAND" | tr '\\n' ' ' | cut -c1-400)" >> '${sessionsLog}'
PATH='${join(d, 'remote-shim')}':$PATH; export PATH
exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"
`,
        { mode: 0o755 },
      );
      box.setAuthorizedKeys([box.clientKeyLine(`command="${forced}"`)]);
      const argv = way === 'hozo' ? ['node', HOZO, '--config', config, '--verbose', 'run', 'many'] : w.argv;
      const m = await measure(argv, { env: { PATH: `${join(d, 'local-shim')}:${process.env.PATH}` }, timeoutMs: 600_000, stderrTimeline: way === 'hozo' });
      box.setAuthorizedKeys(originalKeys);
      const sessions = existsSync(sessionsLog) ? readFileSync(sessionsLog, 'utf8').split('\n').filter(Boolean) : [];
      counts[way] = {
        ok: m.exitCode === 0,
        secondsWithShims: r3(m.wall),
        localZfs: readShimLog(localLog),
        remoteZfs: readShimLog(remoteLog),
        remoteSessions: sessions.length,
        ...(m.timeline ? { verboseTimeline: m.timeline.filter((x) => !/→ .*: up to date|up-to-date/.test(x.line)).slice(0, 80) } : {}),
        remoteSessionKinds: Object.fromEntries(
          Object.entries(
            sessions.reduce((acc, s) => {
              const k = s.trim().split(/\s+/).slice(0, 2).join(' ') || '(none)';
              acc[k] = (acc[k] ?? 0) + 1;
              return acc;
            }, {}),
          ).sort((a, b) => b[1] - a[1]),
        ),
      };
      log(`  ${way}: ${counts[way].localZfs.commands} local + ${counts[way].remoteZfs.commands} remote zfs/zpool commands, ${sessions.length} SSH sessions`);
    }
  } finally {
    box.setAuthorizedKeys(originalKeys);
  }

  // ----- Summary -----
  const summarize = (runs, way) => {
    const rs = runs.filter((r) => r.way === way && r.ok);
    if (rs.length === 0) return { way, ok: false, runs: 0 };
    const secs = rs.map((r) => r.seconds);
    const rss = rs.map((r) => r.controllerRssMB).filter((x) => x !== null);
    const tree = rs.map((r) => r.treeMaxRssMB).filter((x) => x !== null);
    return {
      way,
      ok: rs.length === runs.filter((r) => r.way === way).length,
      runs: rs.length,
      medianS: r3(median(secs)),
      minS: r3(min(secs)),
      maxS: r3(max(secs)),
      mbPerSMedian: rs[0].mbPerS !== undefined ? r2(streamBytes / 2 ** 20 / median(secs)) : undefined,
      controllerRssMB: rss.length ? r2(max(rss)) : null,
      treeMaxRssMB: tree.length ? r2(max(tree)) : null,
      cpuSMedian: r2(median(rs.map((r) => r.cpuS))),
      ...(rs.some((r) => r.hozoReport?.transferS !== undefined)
        ? { hozoDatasetSMedian: r3(median(rs.map((r) => r.hozoReport?.transferS ?? NaN))) }
        : {}),
      sshConnections: max(rs.map((r) => r.sshConnections)),
      sshSessions: max(rs.map((r) => r.sshSessions)),
    };
  };
  const p1 = Object.fromEntries(order.map((w) => [w, summarize(part1Runs, w)]));
  const p2 = Object.fromEntries(['hozo', 'syncoid'].map((w) => [w, summarize(noopRuns, w)]));
  const ratio = (a, b) => (a && b ? r3(a / b) : null);
  const ratios = {
    hozoVsRawThroughputMedian: ratio(p1.raw.medianS, p1.hozo.medianS),
    hozoVsRawThroughputMin: ratio(p1.raw.minS, p1.hozo.minS),
    // Informative: raw's whole wall time over hozo's own per-dataset step (its stream phase, connection already up).
    hozoStreamPhaseVsRawMedian: ratio(p1.raw.medianS, p1.hozo.hozoDatasetSMedian),
    syncoidVsRawThroughputMedian: ratio(p1.raw.medianS, p1.syncoid.medianS),
    hozoVsSyncoidSpeedupMedian: ratio(p1.syncoid.medianS, p1.hozo.medianS),
    noopHozoOverSyncoidTimeMedian: ratio(p2.hozo.medianS, p2.syncoid.medianS),
    noopHozoOverSyncoidTimeMin: ratio(p2.hozo.minS, p2.syncoid.minS),
    noopHozoSshConnectionsMax: p2.hozo.sshConnections ?? null,
  };
  const verdict = {
    throughput: ratios.hozoVsRawThroughputMedian !== null && ratios.hozoVsRawThroughputMedian >= TARGETS.throughput,
    noopTime: ratios.noopHozoOverSyncoidTimeMedian !== null && ratios.noopHozoOverSyncoidTimeMedian <= TARGETS.noopTimeRatio,
    noopSsh: ratios.noopHozoSshConnectionsMax !== null && ratios.noopHozoSshConnectionsMax <= TARGETS.noopSshConnections,
  };
  machine.loadavgEnd = os.loadavg().map(r2);

  const commands = {
    bench: `npm run bench   # = npm run build && node bench/run.mjs (BENCH_SIZE_MB=${SIZE_MB} BENCH_DATASETS=${DATASETS} BENCH_N=${N})`,
    raw: rawCommand(bigSnap, `${bpool}/bench-raw/big`),
    hozo: sq(hozoArgv('big')),
    hozoNoop: sq(hozoArgv('many')),
    syncoid: sq(syncoidArgv(`${src}/big`, `${bpool}/bench-syncoid/big`, false)),
    syncoidNoop: sq(syncoidArgv(`${src}/many`, `${bpool}/bench-syncoid-many`, true)),
    syncoidPatch: 'private copy of /usr/sbin/syncoid with getsnaps() calling getsnapsfallback($type,$_[1],…) (sanoid #749)',
    timing: '/usr/bin/time -f "%e %M %U %S" <command>; wall = hrtime around it (process start-up included)',
  };
  const results = {
    startedAt,
    durationS: r2((Date.now() - t0) / 1000),
    params: { sizeMB: SIZE_MB, streamBytes, datasets: DATASETS, n: N, cipher: CIPHER, syncoidCompress: SYNCOID_COMPRESS, labId: LAB_ID },
    machine,
    commands,
    hozoConfig: JSON.parse(readFileSync(config, 'utf8')),
    part1: { sendOnlyS: r3(sendOnly.wall), summary: p1, hozoFixed, runs: part1Runs },
    part2: { initial, summary: p2, runs: noopRuns, commandCounts: counts },
    targets: TARGETS,
    ratios,
    verdict,
  };
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(join(RESULTS, 'latest.json'), JSON.stringify(results, null, 2) + '\n');
  printReport(results);
  log(`wrote ${join(RESULTS, 'latest.json')}`);
  return Object.values(verdict).every(Boolean) && Object.values(p1).every((s) => s.ok) && Object.values(p2).every((s) => s.ok) ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------------------------
// Report

function table(headers, rows) {
  const cells = [headers, ...rows].map((r) => r.map((c) => (c === null || c === undefined ? '–' : String(c))));
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(cells[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

function printReport(r) {
  const m = r.machine;
  const out = [];
  out.push('', `Hōzō benchmark — ${r.startedAt} (${r.durationS} s)`);
  out.push(`machine: ${m.nproc} CPU (${m.cpu}), ${m.memGiB} GiB, ${m.os}, kernel ${m.kernel}, node ${m.node}`);
  out.push(`zfs-fuse ${m.zfsFuse}; ${m.openssh}; ${m.syncoid}; hozo ${m.hozoCommit}; load ${m.loadavgStart.join(' ')} → ${m.loadavgEnd.join(' ')}`);
  out.push('', 'commands:');
  for (const [k, v] of Object.entries(r.commands)) out.push(`  ${k}: ${v}`);
  const p1 = r.part1.summary;
  out.push('', `1. full replication, ${(r.params.streamBytes / 2 ** 20).toFixed(0)} MiB incompressible stream, N=${r.params.n} (local send → /dev/null alone: ${r.part1.sendOnlyS} s)`);
  out.push(
    table(
      ['way', 'median s', 'min s', 'MiB/s (median)', 'controller RSS MB', 'tree max RSS MB', 'CPU s', 'SSH conn', 'ok'],
      Object.values(p1).map((s) => [s.way, s.medianS, s.minS, s.mbPerSMedian, s.controllerRssMB, s.treeMaxRssMB, s.cpuSMedian, s.sshConnections, s.ok ? 'yes' : 'NO']),
    ),
  );
  const hf = r.part1.hozoFixed;
  out.push(
    `   hozo: dataset step (create parent + send|recv, from its JSON report) ${p1.hozo.hozoDatasetSMedian} s of ${p1.hozo.medianS} s wall;` +
      ` CLI start-up alone (--version) ${hf.startupMedianS} s; a 1-dataset run with nothing to send ${hf.noopOneDatasetMedianS} s`,
  );
  const p2 = r.part2.summary;
  const c = r.part2.commandCounts;
  out.push('', `2. no-op run over ${r.params.datasets} datasets (+ parent), N=${r.params.n}`);
  out.push(
    table(
      ['way', 'median s', 'min s', 'SSH conn', 'SSH sessions', 'zfs local', 'zfs remote', 'controller RSS MB', 'CPU s', 'initial s', 'ok'],
      Object.values(p2).map((s) => [
        s.way,
        s.medianS,
        s.minS,
        s.sshConnections,
        s.sshSessions,
        c[s.way]?.localZfs.commands,
        c[s.way]?.remoteZfs.commands,
        s.controllerRssMB,
        s.cpuSMedian,
        r.part2.initial[s.way]?.seconds,
        s.ok ? 'yes' : 'NO',
      ]),
    ),
  );
  const ra = r.ratios;
  const mark = (ok) => (ok ? 'MET' : 'MISSED');
  out.push('', 'ratios:');
  out.push(`  throughput hozo vs raw (raw_time / hozo_time): median ${ra.hozoVsRawThroughputMedian}, min ${ra.hozoVsRawThroughputMin}  target ≥ ${r.targets.throughput}: ${mark(r.verdict.throughput)}`);
  out.push(`  (informative) raw wall / hozo's dataset step alone (stream phase): median ${ra.hozoStreamPhaseVsRawMedian}`);
  out.push(`  throughput syncoid vs raw: median ${ra.syncoidVsRawThroughputMedian}; hozo is ${ra.hozoVsSyncoidSpeedupMedian}× syncoid`);
  out.push(`  no-op time hozo / syncoid: median ${ra.noopHozoOverSyncoidTimeMedian}, min ${ra.noopHozoOverSyncoidTimeMin}  target ≤ ${r.targets.noopTimeRatio}: ${mark(r.verdict.noopTime)}`);
  out.push(`  no-op SSH connections (hozo, max over runs): ${ra.noopHozoSshConnectionsMax}  target ≤ ${r.targets.noopSshConnections}: ${mark(r.verdict.noopSsh)}`);
  const failed = [...r.part1.runs, ...r.part2.runs].filter((x) => !x.ok);
  if (failed.length > 0) {
    out.push('', 'FAILED runs:');
    for (const f of failed) out.push(`  ${f.way} round ${f.round}: ${f.problem}`);
  }
  console.log(out.join('\n'));
}

let code = 1;
try {
  code = await main();
} catch (e) {
  if (!aborting) console.error(`bench failed: ${e.stack ?? e.message}`);
} finally {
  await cleanupOnce();
  if (cleanupFn === undefined && tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
}
process.exit(aborting ? 130 : code);
