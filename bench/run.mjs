#!/usr/bin/env node
// Hōzō benchmark (`npm run bench`, as root): one lab (src/lab), one run, every tool side by side, reported as ratios.
//
//   1. Full replication of a ~400 MB incompressible dataset to the box, three ways, N repeats each, interleaved,
//      each into a fresh target: raw `zfs send | ssh -c aes128-gcm | zfs receive -u`, `hozo run`, syncoid.
//   2. No-op runs over 200 datasets (one recursive parent): hozo vs `syncoid --recursive`, N repeats each; wall time,
//      SSH connections and sessions (from the box's sshd log), and, in one extra untimed pass with PATH shims, the
//      number of zfs commands each side ran.
//   3. The lifecycle against a sleeping box (issue 3, "Speed"): the box's sshd is stopped, a wake listener in its
//      namespace starts sshd a simulated boot delay after a real magic packet, hozo-agent is the forced command, and
//      `hozo run` wakes the box, waits until ready, sends a small incremental and shuts it down (the agent stops
//      the box's sshd). N rounds; measured on the box's side, with this machine's clock (the box is this machine):
//      sshd listening → the controller's first command, and box awake (port open → port closed) minus transfer.
//
// Writes bench/results/latest.json (gitignored). Knobs (env): BENCH_SIZE_MB (400), BENCH_DATASETS (200), BENCH_N (3),
// BENCH_SYNCOID_COMPRESS (none), BENCH_LAB_ID (bench), BENCH_BOOT_DELAY_MS (3000), BENCH_INCR_MB (4),
// BENCH_POWEROFF_DELAY_S (3). The box is this machine in a network namespace: nothing here powers anything off
// ("power off" = the agent stops the box's sshd), and all traffic (SSH, magic packets) goes to the lab's own
// 10.77.<n>.0/24 addresses.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { intEnv, median, r2 } from './stats.mjs';

// `--lab openzfs` (or BENCH_LAB=openzfs): the same comparison on the OpenZFS lab's VMs (bench/openzfs.mjs).
const labAt = process.argv.indexOf('--lab');
const LAB = labAt >= 0 ? process.argv[labAt + 1] : (process.env.BENCH_LAB ?? 'zfs-fuse');
if (LAB === 'openzfs') {
  await import('./openzfs.mjs');
  process.exit(0);
} else if (LAB !== 'zfs-fuse') {
  console.error(`--lab ${LAB}: expected zfs-fuse (default) or openzfs`);
  process.exit(2);
}

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');
const HOZO = join(ROOT, 'dist/bin/hozo/hozo.js');
const RESULTS = join(HERE, 'results');

const SIZE_MB = intEnv('BENCH_SIZE_MB', 400, 1, 4096);
const DATASETS = intEnv('BENCH_DATASETS', 200, 1, 1000);
const N = intEnv('BENCH_N', 3, 1, 10);
const SYNCOID_COMPRESS = process.env.BENCH_SYNCOID_COMPRESS ?? 'none';
const LAB_ID = process.env.BENCH_LAB_ID ?? 'bench';
// Part 3: round i's simulated boot is BOOT_DELAY_MS + i·2000/N ms, so the rounds sample sshd coming up at different
// points of hozo's ready poll (backoff 100 ms doubling to 2 s); INCR_MB of new data per round; the agent's own
// default power-off delay.
const BOOT_DELAY_MS = intEnv('BENCH_BOOT_DELAY_MS', 3000, 0, 60_000);
const INCR_MB = intEnv('BENCH_INCR_MB', 4, 1, 256);
const POWEROFF_DELAY_S = intEnv('BENCH_POWEROFF_DELAY_S', 3, 0, 60);
const CIPHER = 'aes128-gcm@openssh.com';
const TARGETS = { throughput: 0.95, noopTimeRatio: 0.1, noopSshConnections: 3, listenToFirstCommandS: 1, awakeMinusTransferS: 10 };

// ---------------------------------------------------------------------------------------------------------------
// Ctrl-C / SIGTERM: stop the running command, tear the lab down, exit. A second signal exits at once.

const running = new Set();
let aborting = false;
let cleanupPromise;
/** Set once the lab exists; before that an abort is noticed by main() right after createLab returns. */
let cleanupFn;
const cleanupOnce = () => (cleanupFn === undefined ? Promise.resolve() : (cleanupPromise ??= cleanupFn().catch((e) => console.error(`cleanup: ${e.message}`))));

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
const min = (xs) => Math.min(...xs);
const max = (xs) => Math.max(...xs);
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
  const startedAtMs = Date.now();
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
    startedAtMs,
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
  for (const [cmd, pkg] of [
    ['zfs-fuse', 'zfs-fuse'],
    ['sshd', 'openssh-server'],
    ['mbuffer', 'mbuffer'],
    ['pv', 'pv'],
  ]) {
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
// Part 3 helpers: watching the box without touching its network. The box is this machine, so its files and this
// process share one clock (Date.now(), CLOCK_REALTIME).

function fileSize(path) {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/**
 * Follows the box's sshd from this machine, polling every `intervalMs`: new lines of its log, stamped when they
 * appear (`sshd -E` writes no timestamps; sshd writes each line at once, so the stamp is ≤ intervalMs late), and
 * its pid file. sshd writes the pid file right after it has bound its listening socket, so the file's mtime is when
 * the port opened (kernel timestamp, no polling error); sshd removes it on SIGTERM right after closing its listening
 * sockets, so its disappearance (polled) is when the port closed. No TCP probes: they would show up in the log.
 */
function watchBox(box, intervalMs = 5) {
  const logFile = box.files.sshdLog;
  const pidFile = box.files.sshdPid;
  let offset = fileSize(logFile);
  let pending = '';
  let current;
  const lines = [];
  const listens = [];
  const closes = [];
  const tick = () => {
    const now = Date.now();
    const size = fileSize(logFile);
    if (size < offset) offset = 0;
    if (size > offset) {
      const buf = Buffer.alloc(size - offset);
      const fd = openSync(logFile, 'r');
      try {
        readSync(fd, buf, 0, buf.length, offset);
      } finally {
        closeSync(fd);
      }
      offset = size;
      const parts = (pending + buf.toString('utf8')).split('\n');
      pending = parts.pop();
      for (const l of parts) if (l.trim() !== '') lines.push({ t: now, line: l.replace(/\r$/, '') });
    }
    let st;
    try {
      st = statSync(pidFile);
    } catch {
      st = undefined;
    }
    if (st !== undefined && current === undefined) {
      current = { t: st.mtimeMs, seenAt: now };
      listens.push(current);
    } else if (st !== undefined) {
      current.t = st.mtimeMs; // open(O_TRUNC) and write() may land in different polls: keep the write's time
    } else if (current !== undefined) {
      closes.push({ t: now });
      current = undefined;
    }
  };
  tick();
  const timer = setInterval(tick, intervalMs);
  return {
    lines,
    listens,
    closes,
    stop() {
      clearInterval(timer);
      tick();
    },
  };
}

/** Lines `<EPOCHREALTIME>\t<SSH_ORIGINAL_COMMAND>` written by the bench's session-stamping wrapper, from `sinceMs`. */
function readSessionStamps(file, sinceMs) {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [t, ...cmd] = l.split('\t');
      return { t: Number(t.replace(',', '.')) * 1000, command: cmd.join('\t') };
    })
    .filter((x) => Number.isFinite(x.t) && x.t >= sinceMs);
}

/** The agent's audit log: one line per finished request (`<iso> hozo-agent[pid] from ip: "verb …" → exit N (ms)`). */
function readAgentRequests(file, sinceMs) {
  if (!existsSync(file)) return [];
  const out = [];
  for (const l of readFileSync(file, 'utf8').split('\n')) {
    const m = /^(\S+) hozo-agent\[(\d+)\](?: from \S+)?: (.*) → exit (-?\d+) \((\d+) ms\)$/.exec(l);
    if (!m) continue;
    const end = Date.parse(m[1]);
    if (!(end >= sinceMs)) continue;
    let command = m[3];
    try {
      command = JSON.parse(command);
    } catch {
      // printable() quotes as JSON; keep the raw text otherwise
    }
    out.push({ end, pid: Number(m[2]), command, exitCode: Number(m[4]), dispatchMs: Number(m[5]) });
  }
  return out;
}

/**
 * `strace -f -ttt -e trace=execve` output → the programs a run started, in order: seconds since the first execve,
 * the program and a short argument summary (for ssh: the remote command or the control operation).
 */
function parseExecs(file) {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const out = [];
  // With -f, an execve interrupted by another thread's event is split: `execve(… <unfinished ...>` then
  // `<... execve resumed>) = 0`.
  const unfinished = new Map();
  for (const line of text.split('\n')) {
    let l = line;
    const u = /^(\d+)\s+(\d+\.\d+) (execve\(.*) <unfinished \.\.\.>$/.exec(l);
    if (u) {
      unfinished.set(u[1], `${u[1]} ${u[2]} ${u[3]}`);
      continue;
    }
    const res = /^(\d+)\s+\d+\.\d+ <\.\.\. execve resumed>(.*)$/.exec(l);
    if (res) {
      if (!unfinished.has(res[1])) continue;
      l = unfinished.get(res[1]) + res[2];
      unfinished.delete(res[1]);
    }
    const m = /^(\d+)\s+(\d+\.\d+) execve\("([^"]+)", \[(.*)\](?:, 0x[0-9a-f]+ \/\* \d+ vars \*\/)?\s*\) = 0/.exec(l);
    if (!m) continue;
    const t = Number(m[2]);
    let args = [];
    try {
      args = JSON.parse(`[${m[4].replace(/\.\.\.$/, '').replace(/,\s*$/, '')}]`);
    } catch {
      args = [m[4].slice(0, 120)];
    }
    const prog = m[3].split('/').pop();
    let what = args.slice(1).join(' ');
    if (prog === 'ssh') {
      const o = args.indexOf('-O');
      what = o >= 0 ? `-O ${args[o + 1]}` : args.includes('ControlMaster=yes') ? '(master connect)' : `… ${args[args.length - 1]}`;
    }
    out.push({ t, pid: Number(m[1]), prog, what: what.slice(0, 160) });
  }
  out.sort((a, b) => a.t - b.t);
  const t0 = out[0]?.t;
  return out.map((e) => ({ ...e, t: r3(e.t - t0) }));
}

// ---------------------------------------------------------------------------------------------------------------
// Main

async function main() {
  await preflight();
  const { createLab } = await import('../dist/src/lab/lab.js');
  const { agentBuilt, installAgent } = await import('../dist/src/lab/agent.js');
  if (!agentBuilt()) throw new Error('dist/bin/agent/hozo-agent.js is missing: run `npm run build` (npm run bench does)');
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
          // The same transfer without hozo's default receive-side buffer: the same pipeline as `raw`, so the
          // difference is hozo's own overhead.
          { name: 'bignobuf', host: 'box', retries: 0, buffer: 'none', datasets: [{ source: `${src}/big`, target: `${bpool}/bench-hozo-nobuf/big` }] },
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
  const rawCommand = (snap, target) => `zfs send ${snap} | ssh -c ${CIPHER} ${sq(box.sshArgs())} ${box.boxIp} zfs receive -u ${target}`;
  // The raw pipe with the buffer hozo puts in front of the box's zfs receive by default (buffer: auto, 128M).
  const rawBufferedCommand = (snap, target) =>
    `zfs send ${snap} | ssh -c ${CIPHER} ${sq(box.sshArgs())} ${box.boxIp} ${sq([`mbuffer -q -s 128k -m 128M | zfs receive -u ${target}`])}`;

  // ----- Part 1: full replication of one big incompressible dataset -----
  checkAbort();
  log(`part 1: writing ${SIZE_MB} MB of /dev/urandom into ${src}/big`);
  await lab.hostZfs(['create', '-o', 'compression=off', `${src}/big`]);
  await sh(`head -c ${SIZE_MB}M /dev/urandom > '${join(lab.source.mountpoint, 'big', 'data.bin')}' && sync`);
  await lab.hostZfs(['snapshot', `${src}/big@s1`]);
  const bigSnap = `${src}/big@s1`;
  const bigGuid = await guidOn((a) => lab.hostZfs(a), bigSnap);
  for (const parent of ['bench-raw', 'bench-raw-buffered', 'bench-hozo', 'bench-hozo-nobuf', 'bench-syncoid']) {
    await box.zfs(['create', '-o', 'mountpoint=none', `${bpool}/${parent}`]);
  }

  // Untimed-for-the-ratio reference: the local send alone (also warms the caches for the first timed run).
  const sendOnly = await measure(['sh', '-c', `zfs send ${bigSnap} | cat > /dev/null`]);
  const streamBytes = Number(await sh(`zfs send ${bigSnap} | wc -c`));
  log(`local send → /dev/null: ${sendOnly.wall.toFixed(2)} s (stream ${(streamBytes / 2 ** 20).toFixed(0)} MiB)`);

  const ways = {
    raw: { target: `${bpool}/bench-raw/big`, argv: () => ['sh', '-c', rawCommand(bigSnap, `${bpool}/bench-raw/big`)] },
    'raw-buffered': { target: `${bpool}/bench-raw-buffered/big`, argv: () => ['sh', '-c', rawBufferedCommand(bigSnap, `${bpool}/bench-raw-buffered/big`)] },
    hozo: { target: `${bpool}/bench-hozo/big`, argv: () => hozoArgv('big') },
    'hozo-unbuffered': { target: `${bpool}/bench-hozo-nobuf/big`, argv: () => hozoArgv('bignobuf') },
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
      if (way.startsWith('hozo')) {
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
  const bare = [];
  const startup = [];
  const fixed = [];
  await measure(hozoArgv('big')); // target in place again
  for (let i = 0; i < N; i++) {
    const z = await measure(['node', '-e', '0']);
    if (z.exitCode === 0) bare.push(z.wall);
    const a = await measure(['node', HOZO, '--version']);
    if (a.exitCode === 0) startup.push(a.wall);
    const b = await measure(hozoArgv('big'));
    if (b.exitCode === 0) fixed.push(b.wall);
  }
  const verboseNoop = await measure(['node', HOZO, '--config', config, '--verbose', 'run', 'big'], { stderrTimeline: true });
  // Untimed: every program the no-op run starts, with its time (strace, execve only; seccomp-bpf keeps it cheap).
  let noopExecs;
  if (which('strace') !== undefined) {
    const traceFile = join(tmp, 'noop-execs.txt');
    const t = await measure([
      'strace',
      '-f',
      '--seccomp-bpf',
      '-ttt',
      '-s',
      '400',
      '-e',
      'trace=execve',
      '-e',
      'signal=none',
      '-o',
      traceFile,
      ...hozoArgv('big'),
    ]);
    noopExecs = t.exitCode === 0 ? { wallS: r3(t.wall), execs: parseExecs(traceFile) } : { problem: `strace run: exit ${t.exitCode}: ${t.stderr.slice(-300)}` };
  }
  await destroyOnBox(ways.hozo.target);
  const hozoFixed = {
    nodeBareMedianS: bare.length ? r3(median(bare)) : null,
    startupMedianS: startup.length ? r3(median(startup)) : null,
    noopOneDatasetMedianS: fixed.length ? r3(median(fixed)) : null,
    noopOneDatasetTimeline: verboseNoop.timeline,
    ...(noopExecs ? { noopOneDatasetExecs: noopExecs } : {}),
  };
  log(`  node -e 0 ${hozoFixed.nodeBareMedianS} s, start-up ${hozoFixed.startupMedianS} s, 1-dataset no-op run ${hozoFixed.noopOneDatasetMedianS} s`);

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
  for (const [way, w] of [
    ['hozo', hozoMany],
    ['syncoid', syncoidMany],
  ]) {
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
      log(
        `part 2 no-op round ${i + 1} ${way.padEnd(7)} ${m.wall.toFixed(2)} s, ${ssh.connections} SSH connection(s), ${ssh.sessions} session(s)${ok ? '' : `  FAILED: ${problem}`}`,
      );
    }
  }

  // One extra, untimed pass of each with PATH shims (local zfs) and a logging forced command + shims on the box.
  checkAbort();
  log('part 2: counting zfs commands (one extra no-op run each, with logging shims; not timed)');
  const counts = {};
  const originalKeys = readFileSync(box.files.authorizedKeys, 'utf8').split('\n').filter(Boolean);
  try {
    for (const [way, w] of [
      ['hozo', hozoMany],
      ['syncoid', syncoidMany],
    ]) {
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

  // ----- Part 3: the lifecycle against a sleeping box -----
  checkAbort();
  const part3 = await lifecyclePart({ lab, installAgent, destroyOnBox });

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
      ...(rs.some((r) => r.hozoReport?.transferS !== undefined) ? { hozoDatasetSMedian: r3(median(rs.map((r) => r.hozoReport?.transferS ?? NaN))) } : {}),
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
    // The same pipelines side by side: hozo's own overhead, without the buffer's gain.
    hozoVsRawBufferedThroughputMedian: ratio(p1['raw-buffered'].medianS, p1.hozo.medianS),
    hozoUnbufferedVsRawThroughputMedian: ratio(p1.raw.medianS, p1['hozo-unbuffered'].medianS),
    // Informative: raw's whole wall time over hozo's own per-dataset step (its stream phase, connection already up).
    hozoStreamPhaseVsRawMedian: ratio(p1.raw.medianS, p1.hozo.hozoDatasetSMedian),
    syncoidVsRawThroughputMedian: ratio(p1.raw.medianS, p1.syncoid.medianS),
    hozoVsSyncoidSpeedupMedian: ratio(p1.syncoid.medianS, p1.hozo.medianS),
    noopHozoOverSyncoidTimeMedian: ratio(p2.hozo.medianS, p2.syncoid.medianS),
    noopHozoOverSyncoidTimeMin: ratio(p2.hozo.minS, p2.syncoid.minS),
    noopHozoSshConnectionsMax: p2.hozo.sshConnections ?? null,
    lifecycleListenToFirstCommandMedianS: part3.summary.listenToFirstCommandMedianS,
    lifecycleAwakeMinusTransferMedianS: part3.summary.awakeMinusTransferMedianS,
  };
  const verdict = {
    throughput: ratios.hozoVsRawThroughputMedian !== null && ratios.hozoVsRawThroughputMedian >= TARGETS.throughput,
    noopTime: ratios.noopHozoOverSyncoidTimeMedian !== null && ratios.noopHozoOverSyncoidTimeMedian <= TARGETS.noopTimeRatio,
    noopSsh: ratios.noopHozoSshConnectionsMax !== null && ratios.noopHozoSshConnectionsMax <= TARGETS.noopSshConnections,
    listenToFirstCommand: ratios.lifecycleListenToFirstCommandMedianS !== null && ratios.lifecycleListenToFirstCommandMedianS <= TARGETS.listenToFirstCommandS,
    awakeMinusTransfer: ratios.lifecycleAwakeMinusTransferMedianS !== null && ratios.lifecycleAwakeMinusTransferMedianS <= TARGETS.awakeMinusTransferS,
  };
  machine.loadavgEnd = os.loadavg().map(r2);

  const commands = {
    bench: `npm run bench   # = npm run build && node bench/run.mjs (BENCH_SIZE_MB=${SIZE_MB} BENCH_DATASETS=${DATASETS} BENCH_N=${N})`,
    raw: rawCommand(bigSnap, `${bpool}/bench-raw/big`),
    rawBuffered: rawBufferedCommand(bigSnap, `${bpool}/bench-raw-buffered/big`),
    hozo: sq(hozoArgv('big')),
    hozoUnbuffered: sq(hozoArgv('bignobuf')),
    hozoNoop: sq(hozoArgv('many')),
    syncoid: sq(syncoidArgv(`${src}/big`, `${bpool}/bench-syncoid/big`, false)),
    syncoidNoop: sq(syncoidArgv(`${src}/many`, `${bpool}/bench-syncoid-many`, true)),
    lifecycle: part3.command,
    syncoidPatch: 'private copy of /usr/sbin/syncoid with getsnaps() calling getsnapsfallback($type,$_[1],…) (sanoid #749)',
    timing: '/usr/bin/time -f "%e %M %U %S" <command>; wall = hrtime around it (process start-up included)',
  };
  const results = {
    startedAt,
    durationS: r2((Date.now() - t0) / 1000),
    params: {
      sizeMB: SIZE_MB,
      streamBytes,
      datasets: DATASETS,
      n: N,
      cipher: CIPHER,
      syncoidCompress: SYNCOID_COMPRESS,
      labId: LAB_ID,
      bootDelayMs: BOOT_DELAY_MS,
      incrementMB: INCR_MB,
      poweroffDelayS: POWEROFF_DELAY_S,
    },
    machine,
    commands,
    hozoConfig: JSON.parse(readFileSync(config, 'utf8')),
    part1: { sendOnlyS: r3(sendOnly.wall), summary: p1, hozoFixed, runs: part1Runs },
    part2: { initial, summary: p2, runs: noopRuns, commandCounts: counts },
    part3,
    targets: TARGETS,
    ratios,
    verdict,
  };
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(join(RESULTS, 'latest.json'), JSON.stringify(results, null, 2) + '\n');
  printReport(results);
  log(`wrote ${join(RESULTS, 'latest.json')}`);
  return Object.values(verdict).every(Boolean) && Object.values(p1).every((s) => s.ok) && Object.values(p2).every((s) => s.ok) && part3.summary.ok ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------------------------
// Part 3: wake → ready → replicate → shut down, against a sleeping box

/**
 * The box sleeps (sshd stopped); its wake listener starts sshd `bootDelayMs` after a real magic packet; hozo-agent
 * is the forced command (power-off = the agent stops the box's sshd after POWEROFF_DELAY_S). One untimed full run,
 * then N incremental runs of INCR_MB each. Everything on the box's side is timed from this machine (same clock).
 */
async function lifecyclePart({ lab, installAgent, destroyOnBox }) {
  const box = lab.box;
  const src = lab.source.name;
  const bpool = box.pool.name;
  // Parts 1–2 left ~400 received datasets on the box pool, and the agent exports the pool at every shutdown and
  // imports it at every wake: drop them, so this part measures a box that holds this one backup.
  log('part 3: clearing the box pool of the part 2 targets');
  for (const ds of [`${bpool}/bench-hozo-many`, `${bpool}/bench-syncoid-many`]) await destroyOnBox(ds);

  await box.stopSshd(); // asleep from now on, until a magic packet
  const root = `${bpool}/bench-life`;
  const agent = installAgent(box, { roots: [root], poweroffDelaySeconds: POWEROFF_DELAY_S });
  // A wrapper in front of the agent stamps each session's start with this machine's clock (bash's EPOCHREALTIME,
  // no fork), then runs the forced command exactly as installAgent wrote it.
  const keyLine = readFileSync(box.files.authorizedKeys, 'utf8').split('\n').find(Boolean) ?? '';
  const forced = /^command="([^"]+)",restrict /.exec(keyLine)?.[1];
  if (forced === undefined) throw new Error(`part 3: unexpected authorized_keys line from installAgent: ${keyLine.slice(0, 200)}`);
  const sessionsLog = join(tmp, 'life-sessions.log');
  const wrapper = join(tmp, 'life-forced.sh');
  writeFileSync(
    wrapper,
    `#!/bin/bash
# hozo bench: stamps each SSH session's start, then runs the agent as installAgent set it up.
c=\${SSH_ORIGINAL_COMMAND//[$'\\t\\r\\n']/ }
printf '%s\\t%s\\n' "$EPOCHREALTIME" "\${c:0:200}" >> '${sessionsLog}'
exec ${forced}
`,
    { mode: 0o755 },
  );
  box.setAuthorizedKeys([box.clientKeyLine(`command="/bin/bash ${wrapper}",restrict`)]);
  const agentLog = join(agent.dir, 'agent.log');

  const config = join(tmp, 'hozo-life.json');
  const target = `${root}/home`;
  const hostConfig = { ...box.hostConfig(), shutdown: 'agent', readyTimeout: 30 };
  writeFileSync(
    config,
    JSON.stringify(
      {
        stateDirectory: join(tmp, 'state-life'),
        hosts: { box: hostConfig },
        jobs: [{ name: 'life', host: 'box', retries: 0, datasets: [{ source: `${src}/life`, target }] }],
      },
      null,
      2,
    ),
  );
  const argv = ['node', HOZO, '--config', config, '--verbose', 'run', 'life', '--json'];

  await lab.hostZfs(['create', '-o', 'compression=off', `${src}/life`]);
  let snaps = 0;
  const addData = async (mb) => {
    await sh(`head -c ${mb}M /dev/urandom > '${join(lab.source.mountpoint, 'life', `f${snaps}.bin`)}' && sync`);
    await lab.hostZfs(['snapshot', `${src}/life@l${++snaps}`]);
  };

  const oneRun = async (label, bootDelayMs) => {
    checkAbort();
    await box.stopWakeListener();
    await box.startWakeListener({ startSshd: true, bootDelayMs });
    if (box.sshdPid() !== undefined) throw new Error('part 3: the box is awake before the run');
    const w = watchBox(box);
    const sinceMs = Date.now();
    let m;
    try {
      m = await measure(argv, { stderrTimeline: true, timeoutMs: 120_000 });
      // hozo exits once the agent has accepted the shutdown; the port closes POWEROFF_DELAY_S later.
      const deadline = Date.now() + (POWEROFF_DELAY_S + 15) * 1000;
      while (w.closes.length === 0 && Date.now() < deadline) await sleep(20);
    } finally {
      w.stop();
    }
    await sleep(600); // the sleep script drops the box's sessions 0.3 s after stopping sshd

    let report;
    try {
      report = JSON.parse(m.stdout);
    } catch {
      // recorded below
    }
    const problems = [];
    if (m.exitCode !== 0) problems.push(`exit ${m.exitCode}: ${(m.stderr || m.stdout).trim().slice(-600)}`);
    if (report === undefined) problems.push('no JSON report');
    const host = report?.hosts?.[0];
    const datasets = report?.datasets ?? [];
    if (report !== undefined && (report.result !== 'ok' || !datasets.every((d) => d.result === 'sent' && d.verified))) {
      problems.push(`result ${report.result}; datasets ${datasets.map((d) => `${d.result}${d.verified ? '' : ' (unverified)'}`).join(', ')}`);
    }
    if (host !== undefined && (host.woke !== true || host.shutdown !== 'done'))
      problems.push(`box: woke ${host.woke}, shutdown ${host.shutdown} ${host.shutdownDetail ?? ''}`);

    const magic = box.wakeEvents().find((e) => e.t >= sinceMs && e.action === 'boot');
    const listenAt = w.listens[0]?.t;
    const closedAt = w.closes[0]?.t;
    const lineAt = (re) => w.lines.find((l) => re.test(l.line))?.t;
    const countLines = (re) => w.lines.filter((l) => re.test(l.line)).length;
    const probeAt = lineAt(/^Connection from /);
    const authAt = lineAt(/^Accepted publickey for /);
    const sessions = readSessionStamps(sessionsLog, sinceMs);
    const requests = readAgentRequests(agentLog, sinceMs);
    const first = sessions[0];
    const shutdownAt = sessions.find((x) => /^shutdown\b/.test(x.command))?.t;
    const transferS = datasets.reduce((a, d) => a + (d.seconds ?? 0), 0);
    if (listenAt === undefined || closedAt === undefined || first === undefined) {
      problems.push(`box side incomplete: listening ${listenAt ?? '?'}, first command ${first?.t ?? '?'}, closed ${closedAt ?? '?'}`);
    }
    const dt = (a, b) => (a !== undefined && b !== undefined ? r3((b - a) / 1000) : null);
    // Per session: its start (wrapper) and, from the agent's audit log, its end and the verb's own time; the rest
    // of the session is the agent's start-up (node, modules, config) plus the SSH channel.
    const paired = requests.length === sessions.length;
    const verbs = sessions.map((x, i) => {
      const q = paired ? requests[i] : undefined;
      return {
        command: x.command,
        atS: dt(listenAt, x.t),
        ...(q !== undefined
          ? { sessionS: dt(x.t, q.end), verbS: r3(q.dispatchMs / 1000), agentStartupS: r3((q.end - q.dispatchMs - x.t) / 1000), exitCode: q.exitCode }
          : {}),
      };
    });
    const sum = (k) => (paired ? r3(verbs.reduce((a, v) => a + (v[k] ?? 0), 0)) : null);
    return {
      label,
      bootDelayMs,
      ok: problems.length === 0,
      ...(problems.length > 0 ? { problem: problems.join('; ') } : {}),
      wallS: r3(m.wall),
      bytes: report?.bytes ?? null,
      transferS: r3(transferS),
      hozoReport: host !== undefined ? { wakeSeconds: host.wakeSeconds, awakeSeconds: host.awakeSeconds, shutdown: host.shutdown } : null,
      magicToListenS: dt(magic?.t, listenAt),
      listenToFirstCommandS: dt(listenAt, first?.t),
      listenToProbeS: dt(listenAt, probeAt),
      probeToAuthS: dt(probeAt, authAt),
      authToFirstCommandS: dt(authAt, first?.t),
      firstCommand: first?.command ?? null,
      awakeS: dt(listenAt, closedAt),
      awakeMinusTransferS: listenAt !== undefined && closedAt !== undefined ? r3((closedAt - listenAt) / 1000 - transferS) : null,
      reportAwakeMinusTransferS: typeof host?.awakeSeconds === 'number' ? r3(host.awakeSeconds - transferS) : null,
      firstCommandToShutdownS: dt(first?.t, shutdownAt),
      shutdownToClosedS: dt(shutdownAt, closedAt),
      hozoStartToMagicS: dt(m.startedAtMs, magic?.t),
      hozoExitToClosedS: dt(m.startedAtMs + m.wall * 1000, closedAt),
      tcpConnections: countLines(/^Connection from /),
      sshConnections: countLines(/^Accepted publickey for /),
      sshSessions: sessions.length,
      agentStartupS: sum('agentStartupS'),
      agentVerbS: sum('verbS'),
      // How far the other clocks/stamps are from the primary ones (the log lines are stamped ≤ 5 ms late).
      crossCheck: {
        listeningLineVsPidFileS: dt(listenAt, lineAt(/^Server listening on /)),
        startingSessionLineVsWrapperS: dt(first?.t, lineAt(/^Starting session: /)),
        terminatingLineVsPidFileGoneS: dt(closedAt, lineAt(/^Received signal 15; terminating/)),
      },
      verbs,
      controllerLog: (m.timeline ?? []).map((x) => ({ atS: listenAt !== undefined ? r3((m.startedAtMs + x.t * 1000 - listenAt) / 1000) : null, line: x.line })),
    };
  };

  log(`part 3: sleeping box (boot delay ${BOOT_DELAY_MS}+ ms, agent power-off delay ${POWEROFF_DELAY_S} s), ${INCR_MB} MiB increments`);
  await addData(INCR_MB * 2);
  const initial = await oneRun('initial full run (not in the medians)', BOOT_DELAY_MS);
  log(
    `part 3 initial full run: listen → first command ${initial.listenToFirstCommandS} s, awake ${initial.awakeS} s${initial.ok ? '' : `  FAILED: ${initial.problem}`}`,
  );
  const runs = [];
  for (let i = 0; i < N; i++) {
    await addData(INCR_MB);
    const bootDelayMs = BOOT_DELAY_MS + Math.round((i * 2000) / N);
    const r = { round: i + 1, ...(await oneRun(`round ${i + 1}`, bootDelayMs)) };
    runs.push(r);
    log(
      `part 3 round ${i + 1} (boot ${bootDelayMs} ms): listen → first command ${r.listenToFirstCommandS} s; awake ${r.awakeS} s − transfer ${r.transferS} s = ${r.awakeMinusTransferS} s${r.ok ? '' : `  FAILED: ${r.problem}`}`,
    );
  }
  const good = runs.filter((r) => r.ok);
  const med = (k) => {
    const v = good.map((r) => r[k]).filter((x) => typeof x === 'number');
    return v.length > 0 ? r3(median(v)) : null;
  };
  const hi = (k) => {
    const v = good.map((r) => r[k]).filter((x) => typeof x === 'number');
    return v.length > 0 ? r3(max(v)) : null;
  };
  const summary = {
    ok: good.length === runs.length && runs.length > 0,
    runs: good.length,
    listenToFirstCommandMedianS: med('listenToFirstCommandS'),
    listenToFirstCommandMaxS: hi('listenToFirstCommandS'),
    listenToProbeMedianS: med('listenToProbeS'),
    probeToAuthMedianS: med('probeToAuthS'),
    authToFirstCommandMedianS: med('authToFirstCommandS'),
    awakeMedianS: med('awakeS'),
    transferMedianS: med('transferS'),
    awakeMinusTransferMedianS: med('awakeMinusTransferS'),
    awakeMinusTransferMaxS: hi('awakeMinusTransferS'),
    reportAwakeMinusTransferMedianS: med('reportAwakeMinusTransferS'),
    firstCommandToShutdownMedianS: med('firstCommandToShutdownS'),
    shutdownToClosedMedianS: med('shutdownToClosedS'),
    magicToListenMedianS: med('magicToListenS'),
    wallMedianS: med('wallS'),
    agentStartupMedianS: med('agentStartupS'),
    agentVerbMedianS: med('agentVerbS'),
    sshConnectionsMax: hi('sshConnections'),
    sshSessionsMax: hi('sshSessions'),
  };
  return {
    params: { bootDelaysMs: runs.map((r) => r.bootDelayMs), incrementMB: INCR_MB, poweroffDelayS: POWEROFF_DELAY_S, readyTimeout: hostConfig.readyTimeout },
    command: `${sq(argv)}   # host = lab.box.hostConfig() + shutdown: 'agent', readyTimeout: 30 (WoL to ${box.broadcast}:${box.wakePort})`,
    initial,
    runs,
    summary,
  };
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
  out.push(
    '',
    `1. full replication, ${(r.params.streamBytes / 2 ** 20).toFixed(0)} MiB incompressible stream, N=${r.params.n} (local send → /dev/null alone: ${r.part1.sendOnlyS} s)`,
  );
  out.push(
    table(
      ['way', 'median s', 'min s', 'MiB/s (median)', 'controller RSS MB', 'tree max RSS MB', 'CPU s', 'SSH conn', 'ok'],
      Object.values(p1).map((s) => [
        s.way,
        s.medianS,
        s.minS,
        s.mbPerSMedian,
        s.controllerRssMB,
        s.treeMaxRssMB,
        s.cpuSMedian,
        s.sshConnections,
        s.ok ? 'yes' : 'NO',
      ]),
    ),
  );
  const hf = r.part1.hozoFixed;
  out.push(
    `   hozo: dataset step (create parent + send|recv, from its JSON report) ${p1.hozo.hozoDatasetSMedian} s of ${p1.hozo.medianS} s wall;` +
      ` CLI start-up alone (--version) ${hf.startupMedianS} s (bare node -e 0: ${hf.nodeBareMedianS} s); a 1-dataset run with nothing to send ${hf.noopOneDatasetMedianS} s`,
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
  const p3 = r.part3;
  const s3 = p3.summary;
  out.push(
    '',
    `3. lifecycle against a sleeping box (WoL → boot delay → sshd → hozo-agent), ${p3.params.incrementMB} MiB incremental per round, N=${r.params.n};` +
      ` boot delays ${p3.params.bootDelaysMs.join('/')} ms, agent power-off delay ${p3.params.poweroffDelayS} s`,
  );
  out.push(
    table(
      [
        'run',
        'boot ms',
        'listen→1st cmd s',
        'poll gap s',
        'TCP→auth s',
        'auth→cmd s',
        'awake s',
        'transfer s',
        'awake−transfer s',
        'cmd→shutdown s',
        'shutdown→closed s',
        'report wake/awake s',
        'SSH conn/sess',
        'ok',
      ],
      [p3.initial, ...p3.runs].map((x) => [
        x.round !== undefined ? `round ${x.round}` : 'initial (full)',
        x.bootDelayMs,
        x.listenToFirstCommandS,
        x.listenToProbeS,
        x.probeToAuthS,
        x.authToFirstCommandS,
        x.awakeS,
        x.transferS,
        x.awakeMinusTransferS,
        x.firstCommandToShutdownS,
        x.shutdownToClosedS,
        x.hozoReport ? `${r3(x.hozoReport.wakeSeconds)}/${r3(x.hozoReport.awakeSeconds)}` : null,
        `${x.sshConnections}/${x.sshSessions}`,
        x.ok ? 'yes' : 'NO',
      ]),
    ),
  );
  out.push(
    `   medians: listen → first command ${s3.listenToFirstCommandMedianS} s (poll gap ${s3.listenToProbeMedianS}, TCP → authenticated ${s3.probeToAuthMedianS}, → first command ${s3.authToFirstCommandMedianS});` +
      ` awake ${s3.awakeMedianS} s − transfer ${s3.transferMedianS} s = ${s3.awakeMinusTransferMedianS} s; hozo-agent start-up ${s3.agentStartupMedianS} s and verbs ${s3.agentVerbMedianS} s per run`,
  );
  const verbLine = (x) => x.verbs.map((v) => `${v.command.split(' ')[0]} ${v.atS}${v.sessionS !== undefined ? `+${v.sessionS}` : ''}`).join(', ');
  for (const x of p3.runs) out.push(`   round ${x.round} sessions (s after listening + duration): ${verbLine(x)}`);
  const ra = r.ratios;
  const mark = (ok) => (ok ? 'MET' : 'MISSED');
  out.push('', 'ratios:');
  out.push(
    `  throughput hozo vs raw (raw_time / hozo_time): median ${ra.hozoVsRawThroughputMedian}, min ${ra.hozoVsRawThroughputMin}  target ≥ ${r.targets.throughput}: ${mark(r.verdict.throughput)}`,
  );
  out.push(
    `  (informative) same pipeline on both sides: raw-buffered / hozo ${ra.hozoVsRawBufferedThroughputMedian}; raw / hozo-unbuffered ${ra.hozoUnbufferedVsRawThroughputMedian}`,
  );
  out.push(`  (informative) raw wall / hozo's dataset step alone (stream phase): median ${ra.hozoStreamPhaseVsRawMedian}`);
  out.push(`  throughput syncoid vs raw: median ${ra.syncoidVsRawThroughputMedian}; hozo is ${ra.hozoVsSyncoidSpeedupMedian}× syncoid`);
  out.push(
    `  no-op time hozo / syncoid: median ${ra.noopHozoOverSyncoidTimeMedian}, min ${ra.noopHozoOverSyncoidTimeMin}  target ≤ ${r.targets.noopTimeRatio}: ${mark(r.verdict.noopTime)}`,
  );
  out.push(
    `  no-op SSH connections (hozo, max over runs): ${ra.noopHozoSshConnectionsMax}  target ≤ ${r.targets.noopSshConnections}: ${mark(r.verdict.noopSsh)}`,
  );
  out.push(
    `  sshd listening → first command (median): ${ra.lifecycleListenToFirstCommandMedianS} s  target ≤ ${r.targets.listenToFirstCommandS} s: ${mark(r.verdict.listenToFirstCommand)}`,
  );
  out.push(
    `  box awake − transfer, small incremental (median): ${ra.lifecycleAwakeMinusTransferMedianS} s  target ≤ ${r.targets.awakeMinusTransferS} s: ${mark(r.verdict.awakeMinusTransfer)}`,
  );
  const failed = [
    ...r.part1.runs,
    ...r.part2.runs,
    ...r.part3.runs.map((x) => ({ ...x, way: 'lifecycle' })),
    ...(r.part3.initial.ok ? [] : [{ ...r.part3.initial, way: 'lifecycle', round: 'initial' }]),
  ].filter((x) => !x.ok);
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
