#!/usr/bin/env node
// Hōzō benchmark on the OpenZFS lab (`npm run bench -- --lab openzfs`, or `node bench/openzfs.mjs`, as root): the two
// QEMU VMs of src/lab/vm (OpenZFS 2.3, Debian 12), hozo in the controller VM, the box with hozo-agent as the forced
// command of the controller's key. Every command runs inside the ctl VM and is timed there (date +%s.%N around it),
// so the host→VM SSH hop is not in the figures. Under software emulation (TCG) only ratios measured in the same VM
// pair mean anything; the accelerator is printed.
//
//   0. Cipher: the raw pipe with aes128-gcm and with chacha20-poly1305; the faster is the raw pipe below.
//   1. Full replication of an incompressible dataset (BENCH_SIZE_MB, 100): raw `zfs send | ssh -c <faster> | zfs
//      receive -u` as root, `hozo run` (agent box, hozo's own cipher choice), syncoid (Debian's sanoid package,
//      root to root, --compress=none), BENCH_N rounds interleaved, each into a fresh target.
//   2. No-op over BENCH_DATASETS (500) datasets: the two-listing floor (the `zfs get -r` hozo's inventory runs, on
//      ctl and on the box over one existing connection, one after the other) vs a hozo no-op run.
//   3. Compressible data (logs, BENCH_TEXT_MB of text, compression=lz4 on the source) over ctl's NIC shaped with
//      tc to BENCH_MBIT (50) Mbit/s: hozo (send -c) vs syncoid's defaults.
//
// Writes bench/results/openzfs-latest.json (gitignored). Knobs (env): BENCH_SIZE_MB (100), BENCH_N (2),
// BENCH_DATASETS (500), BENCH_TEXT_MB (40), BENCH_MBIT (50), BENCH_REUSE=1 (use the running lab `oz` instead of
// booting one; it is then left running). All traffic stays on the lab's bridge (10.78.x.0/24) inside its namespace.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { intEnv, median, r2 } from './stats.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');
const { attachVmLab, createVmLab, VM_HOZO, AGENT_ROOT } = await import(join(ROOT, 'dist/src/lab/vm/lab.js'));

const SIZE_MB = intEnv('BENCH_SIZE_MB', 100, 1, 400);
const N = intEnv('BENCH_N', 2, 1, 10);
const DATASETS = intEnv('BENCH_DATASETS', 500, 1, 2000);
const TEXT_MB = intEnv('BENCH_TEXT_MB', 40, 1, 200);
const MBIT = intEnv('BENCH_MBIT', 50, 1, 1000);
const REUSE = process.env.BENCH_REUSE === '1';
const KEY = '-i /etc/hozo/box_key -o UserKnownHostsFile=/etc/hozo/known_hosts -o BatchMode=yes';
const SYNCOID_SSH = '--sshkey=/etc/hozo/box_key --sshoption=UserKnownHostsFile=/etc/hozo/known_hosts --sshoption=BatchMode=yes';

const log = (m) => console.error(`[bench-openzfs ${new Date().toISOString().slice(11, 19)}] ${m}`);

let lab;
let ownLab = false;
async function main() {
  if (REUSE) lab = attachVmLab('oz');
  else {
    log('booting the OpenZFS lab (two VMs)…');
    lab = await createVmLab({ id: 'oz' });
    ownLab = true;
  }
  const { ctl, box } = lab;
  await lab.ensureBoxUp();
  log(`lab ${lab.zfsVersion}, accelerator ${lab.accel}`);
  const boxIp = box.ip;
  /** Seconds `cmd` took in the ctl VM (fails loudly). */
  const timed = async (cmd, timeoutMs = 1_800_000) => {
    const out = await ctl.check(`t0=$(date +%s.%N); { ${cmd}; } >/tmp/bench.out 2>&1 || { cat /tmp/bench.out >&2; exit 1; }; t1=$(date +%s.%N); echo "$t0 $t1"`, { timeoutMs });
    const [a, b] = out.trim().split('\n').pop().split(' ').map(Number);
    return b - a;
  };
  const boxSh = (cmd) => ctl.check(`ssh ${KEY} root@${boxIp} ${JSON.stringify(cmd)}`, { timeoutMs: 600_000 });
  const hozoConfig = async (name, jobs) => {
    const yaml = [
      'stateDirectory: /var/lib/hozo-bench',
      'hosts:',
      '  box:',
      `    address: ${boxIp}`,
      '    user: hozo',
      '    sshKeyFile: /etc/hozo/box_key',
      '    knownHostsFile: /etc/hozo/known_hosts',
      '    shutdown: none',
      '    agent: true',
      'jobs:',
      ...jobs.flatMap((j) => [`  - name: ${j.name}`, '    host: box', '    retries: 0', '    datasets:', `      - { source: ${j.source}, target: ${j.target}${j.recursive ? ', recursive: true' : ''} }`]),
      '',
    ].join('\n');
    await ctl.writeFile(`/etc/hozo/${name}.yaml`, yaml);
  };
  const hozoRun = (config, job) => `${VM_HOZO} --config /etc/hozo/${config}.yaml run ${job} --json`;

  // Clean slate: bench datasets on both sides.
  await ctl.check('zfs destroy -r tank/bench 2>/dev/null; rm -rf /var/lib/hozo-bench; mkdir -p /var/lib/hozo-bench; zfs create -o mountpoint=/tank/bench -o compression=off tank/bench');
  await box.check(`for d in backup/bench ${AGENT_ROOT}/bench; do zfs destroy -r $d 2>/dev/null; done; zfs create -o canmount=off backup/bench; zfs create -o canmount=off ${AGENT_ROOT}/bench; true`);
  const results = { when: new Date().toISOString(), zfs: lab.zfsVersion, accel: lab.accel, params: { SIZE_MB, N, DATASETS, TEXT_MB, MBIT } };

  // ----- 0 + 1: full replication -----
  log(`part 1: ${SIZE_MB} MiB incompressible`);
  await ctl.check(`zfs create tank/bench/big && head -c ${SIZE_MB}M /dev/urandom > /tank/bench/big/blob && sync && zfs snapshot tank/bench/big@s1`, { timeoutMs: 600_000 });
  const fresh = (t) => boxSh(`zfs destroy -r ${t} 2>/dev/null; true`);
  const raw = (cipher, t) => `zfs send tank/bench/big@s1 | ssh -c ${cipher} ${KEY} root@${boxIp} zfs receive -u ${t}`;
  const cipherS = {};
  for (const c of ['aes128-gcm@openssh.com', 'chacha20-poly1305@openssh.com']) {
    await fresh('backup/bench/raw');
    cipherS[c] = await timed(raw(c, 'backup/bench/raw'));
    log(`  raw with ${c}: ${r2(cipherS[c])} s`);
  }
  const best = Object.entries(cipherS).sort((a, b) => a[1] - b[1])[0][0];
  await hozoConfig('bench-big', [{ name: 'big', source: 'tank/bench/big', target: `${AGENT_ROOT}/bench/big` }]);
  const ways = {
    raw: { target: 'backup/bench/raw', cmd: raw(best, 'backup/bench/raw') },
    hozo: { target: `${AGENT_ROOT}/bench/big`, cmd: hozoRun('bench-big', 'big') },
    syncoid: { target: 'backup/bench/syncoid', cmd: `syncoid --no-sync-snap --no-privilege-elevation --compress=none ${SYNCOID_SSH} tank/bench/big root@${boxIp}:backup/bench/syncoid` },
  };
  const full = { raw: [], hozo: [], syncoid: [] };
  for (let i = 0; i < N; i++) {
    const order = Object.keys(ways);
    for (let k = 0; k < i % order.length; k++) order.push(order.shift());
    for (const w of order) {
      await fresh(ways[w].target);
      if (w === 'hozo') await ctl.check('rm -rf /var/lib/hozo-bench/state* /var/lib/hozo-bench/locks; zfs release -r hozo:big tank/bench/big@s1 2>/dev/null; zfs destroy tank/bench/big#hozo:big:s1 2>/dev/null; true');
      const s = await timed(ways[w].cmd);
      full[w].push(s);
      log(`  round ${i + 1} ${w}: ${r2(s)} s`);
    }
  }
  results.part1 = { cipherS, rawCipher: best, seconds: full, medians: Object.fromEntries(Object.entries(full).map(([k, v]) => [k, median(v)])) };
  results.part1.rawOverHozo = results.part1.medians.raw / results.part1.medians.hozo;
  await ctl.check('zfs release -r hozo:big tank/bench/big@s1 2>/dev/null; zfs destroy -r tank/bench/big; true');
  await boxSh('zfs destroy -r backup/bench/raw 2>/dev/null; zfs destroy -r backup/bench/syncoid 2>/dev/null; true');
  await box.check(`zfs destroy -r ${AGENT_ROOT}/bench/big 2>/dev/null; true`);

  // ----- 2: no-op over many datasets -----
  log(`part 2: ${DATASETS} datasets`);
  await ctl.check(
    `zfs create -o mountpoint=none tank/bench/many && for i in $(seq 1 ${DATASETS}); do zfs create tank/bench/many/d$i || exit 1; done && zfs snapshot -r tank/bench/many@s1`,
    { timeoutMs: 1_800_000 },
  );
  // The box is seeded with one replication stream (as root), so hozo's first run only holds and bookmarks.
  const seedS = await timed(`zfs send -R tank/bench/many@s1 | ssh -c ${best} ${KEY} root@${boxIp} zfs receive -u -o canmount=noauto ${AGENT_ROOT}/bench/many`);
  await hozoConfig('bench-many', [{ name: 'many', source: 'tank/bench/many', target: `${AGENT_ROOT}/bench/many`, recursive: true }]);
  const firstS = await timed(hozoRun('bench-many', 'many'));
  log(`  seed ${r2(seedS)} s, hozo's first run (holds, bookmarks) ${r2(firstS)} s`);
  // hozo's inventory listing (src/zfs/argv.ts inventoryArgv with userrefs, resume tokens and bookmarks), on each side.
  const props = 'type,guid,createtxg,creation,userrefs,receive_resume_token';
  const floorCmd =
    `zfs get -H -p -r -t filesystem,volume,snapshot,bookmark -o name,property,value ${props} tank/bench/many >/dev/null && ` +
    `ssh -o ControlPath=/tmp/bench-cm ${KEY} root@${boxIp} zfs get -H -p -r -t filesystem,volume,snapshot,bookmark -o name,property,value ${props} ${AGENT_ROOT}/bench/many >/dev/null`;
  const floor = [];
  const noop = [];
  for (let i = 0; i < N; i++) {
    await ctl.check(`ssh -o ControlPath=/tmp/bench-cm -O exit ${boxIp} 2>/dev/null; ssh -o ControlMaster=auto -o ControlPath=/tmp/bench-cm -o ControlPersist=60 ${KEY} root@${boxIp} true`);
    // The floor is timed with its connection already open (the connection itself is timed in hozo's run).
    floor.push(await timed(floorCmd));
    const out = await timed(hozoRun('bench-many', 'many'));
    noop.push(out);
    log(`  round ${i + 1}: floor ${r2(floor[i])} s, hozo no-op ${r2(out)} s`);
  }
  const connS = await timed(`ssh ${KEY} root@${boxIp} true`);
  results.part2 = { datasets: DATASETS, seedS, firstS, floorS: floor, noopS: noop, sshConnectS: connS, noopOverFloor: median(noop) / median(floor), noopOverFloorPlusConnect: median(noop) / (median(floor) + connS) };
  await ctl.check('zfs list -H -o name -t snapshot -r tank/bench/many | xargs -r -n 50 zfs release hozo:many 2>/dev/null; zfs destroy -r tank/bench/many; true', { timeoutMs: 1_800_000 });
  await box.check(`zfs destroy -r ${AGENT_ROOT}/bench/many; true`, { timeoutMs: 1_800_000 });

  // ----- 3: compressible data over a shaped link -----
  log(`part 3: ${TEXT_MB} MiB of logs, lz4 on the source, link shaped to ${MBIT} Mbit/s`);
  await ctl.check(
    `zfs create -o compression=lz4 tank/bench/logs && ` +
      // Log-like lines that vary (lz4 makes ~3-5x of them, as of real syslogs), not one line repeated.
      `{ awk 'BEGIN { srand(7); for (i = 0; ; i++) printf "2026-12-02T%02d:%02d:%02d.%06d+00:00 host%d sshd[%d]: Accepted publickey for user%d from 192.0.2.%d port %d ssh2: ED25519 SHA256:%08x\\n", i / 3600000 % 24, i / 60000 % 60, i / 1000 % 60, int(rand() * 1000000), i % 7, 1000 + int(rand() * 30000), int(rand() * 40), int(rand() * 250), 1024 + int(rand() * 60000), int(rand() * 2147483647) }' || true; } | head -c ${TEXT_MB}M > /tank/bench/logs/syslog && sync && zfs snapshot tank/bench/logs@s1`,
    { timeoutMs: 600_000 },
  );
  const ratio = await ctl.check('zfs get -H -o value compressratio,logicalreferenced,referenced tank/bench/logs');
  await hozoConfig('bench-logs', [{ name: 'logs', source: 'tank/bench/logs', target: `${AGENT_ROOT}/bench/logs` }]);
  const shaped = { hozo: [], syncoid: [] };
  await ctl.check(`tc qdisc replace dev ens4 root tbf rate ${MBIT}mbit burst 64kb latency 500ms`);
  try {
    for (let i = 0; i < N; i++) {
      for (const w of i % 2 ? ['syncoid', 'hozo'] : ['hozo', 'syncoid']) {
        if (w === 'hozo') {
          await box.check(`zfs destroy -r ${AGENT_ROOT}/bench/logs 2>/dev/null; true`);
          await ctl.check('rm -rf /var/lib/hozo-bench/state*; zfs release hozo:logs tank/bench/logs@s1 2>/dev/null; zfs destroy tank/bench/logs#hozo:logs:s1 2>/dev/null; true');
          shaped.hozo.push(await timed(hozoRun('bench-logs', 'logs')));
        } else {
          await fresh('backup/bench/logs');
          shaped.syncoid.push(await timed(`syncoid --no-sync-snap --no-privilege-elevation ${SYNCOID_SSH} tank/bench/logs root@${boxIp}:backup/bench/logs`));
        }
        log(`  round ${i + 1} ${w}: ${r2(shaped[w][shaped[w].length - 1])} s`);
      }
    }
  } finally {
    await ctl.sh('tc qdisc del dev ens4 root');
  }
  results.part3 = { textMB: TEXT_MB, mbit: MBIT, source: ratio.split('\n'), seconds: shaped, syncoidOverHozo: median(shaped.syncoid) / median(shaped.hozo) };
  await ctl.check('zfs release hozo:logs tank/bench/logs@s1 2>/dev/null; zfs destroy -r tank/bench; true');
  await box.check(`zfs destroy -r ${AGENT_ROOT}/bench; zfs destroy -r backup/bench; true`);

  mkdirSync(join(HERE, 'results'), { recursive: true });
  writeFileSync(join(HERE, 'results', 'openzfs-latest.json'), JSON.stringify(results, null, 2));
  const p1 = results.part1;
  console.log(`\nOpenZFS lab benchmark — ${results.zfs}, accelerator ${results.accel}, ${results.when}`);
  console.log(`0. raw pipe cipher: aes128-gcm ${r2(cipherS['aes128-gcm@openssh.com'])} s, chacha20-poly1305 ${r2(cipherS['chacha20-poly1305@openssh.com'])} s → raw uses ${best}`);
  console.log(`1. full ${SIZE_MB} MiB incompressible (median of ${N}): raw ${r2(p1.medians.raw)} s, hozo ${r2(p1.medians.hozo)} s, syncoid ${r2(p1.medians.syncoid)} s; raw/hozo ${r2(p1.rawOverHozo)}× (target ≥ 0.97×)`);
  const p2 = results.part2;
  console.log(`2. no-op over ${DATASETS} datasets (median of ${N}): floor ${r2(median(p2.floorS))} s, hozo ${r2(median(p2.noopS))} s: ${r2(p2.noopOverFloor)}× the floor (target ≤ 1.5×); one new SSH connection ${r2(connS)} s; ${r2(p2.noopOverFloorPlusConnect)}× floor + connection`);
  console.log(`3. ${TEXT_MB} MiB logs (compressratio ${ratio.split('\n')[0]}) at ${MBIT} Mbit/s (median of ${N}): hozo ${r2(median(shaped.hozo))} s, syncoid ${r2(median(shaped.syncoid))} s: hozo ${r2(results.part3.syncoidOverHozo)}× faster (target ≥ 1.3×)`);
}

try {
  await main();
} finally {
  if (ownLab) await lab?.destroy().catch((e) => console.error(`teardown: ${e.message}`));
}
