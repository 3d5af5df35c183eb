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
//   4. Cold boot: the box VM powered off for real (qemu exits), `hozo run` wakes it with a magic packet; from the
//      box's own clock, sshd listening (its journal) → the agent starting the receive (its audit log): hozo's share
//      of "packet → first byte, minus boot-to-sshd". BENCH_N rounds.
//
// Writes bench/results/openzfs-latest.json (gitignored). Knobs (env): BENCH_SIZE_MB (100), BENCH_N (2),
// BENCH_DATASETS (500), BENCH_TEXT_MB (40), BENCH_MBIT (50), BENCH_PARTS (1,2,3,4: which parts), BENCH_REUSE=1 (use
// the running lab `oz` instead of booting one; it is then left running). All traffic stays on the lab's bridge (10.78.x.0/24) inside its namespace.
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
/** Which parts to run (BENCH_PARTS=1,4): all by default; part 0 (cipher) runs with 1. */
const PARTS = new Set((process.env.BENCH_PARTS ?? '1,2,3,4').split(',').map((x) => x.trim()));
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
    const out = await ctl.check(
      `t0=$(date +%s.%N); { ${cmd}; } >/tmp/bench.out 2>&1 || { cat /tmp/bench.out >&2; exit 1; }; t1=$(date +%s.%N); echo "$t0 $t1"`,
      { timeoutMs },
    );
    const [a, b] = out.trim().split('\n').pop().split(' ').map(Number);
    return b - a;
  };
  const boxSh = (cmd) => ctl.check(`ssh ${KEY} root@${boxIp} ${JSON.stringify(cmd)}`, { timeoutMs: 600_000 });
  const hozoConfig = async (name, jobs, hostLines = ['    shutdown: none']) => {
    const yaml = [
      'stateDirectory: /var/lib/hozo-bench',
      'hosts:',
      '  box:',
      `    address: ${boxIp}`,
      '    user: hozo',
      '    sshKeyFile: /etc/hozo/box_key',
      '    knownHostsFile: /etc/hozo/known_hosts',
      ...hostLines,
      '    agent: true',
      // Unencrypted bench data, compared with plain zfs send | ssh | zfs receive and syncoid: the box is trusted.
      '    trust: trusted',
      'jobs:',
      ...jobs.flatMap((j) => [
        `  - name: ${j.name}`,
        '    host: box',
        '    retries: 0',
        '    datasets:',
        `      - { source: ${j.source}, target: ${j.target}${j.recursive ? ', recursive: true' : ''} }`,
      ]),
      '',
    ].join('\n');
    await ctl.writeFile(`/etc/hozo/${name}.yaml`, yaml);
  };
  const hozoRun = (config, job) => `${VM_HOZO} --config /etc/hozo/${config}.yaml run ${job} --json`;

  // Clean slate: bench datasets on both sides.
  await ctl.check(
    'zfs destroy -r tank/bench 2>/dev/null; rm -rf /var/lib/hozo-bench; mkdir -p /var/lib/hozo-bench; zfs create -o mountpoint=/tank/bench -o compression=off tank/bench',
  );
  await box.check(
    `for d in backup/bench ${AGENT_ROOT}/bench; do zfs destroy -r $d 2>/dev/null; done; zfs create -o canmount=off backup/bench; zfs create -o canmount=off ${AGENT_ROOT}/bench; true`,
  );
  const results = { when: new Date().toISOString(), zfs: lab.zfsVersion, accel: lab.accel, params: { SIZE_MB, N, DATASETS, TEXT_MB, MBIT } };

  const fresh = (t) => boxSh(`zfs destroy -r ${t} 2>/dev/null; true`);
  // The raw pipe's cipher: the faster of the pair (part 0); chacha20 when part 1 is not run (no AES in TCG's CPU).
  let best = 'chacha20-poly1305@openssh.com';
  const cipherS = {};

  if (PARTS.has('1')) {
    // ----- 0 + 1: full replication -----
    log(`part 1: ${SIZE_MB} MiB incompressible`);
    await ctl.check(`zfs create tank/bench/big && head -c ${SIZE_MB}M /dev/urandom > /tank/bench/big/blob && sync && zfs snapshot tank/bench/big@s1`, {
      timeoutMs: 600_000,
    });
    const raw = (cipher, t) => `zfs send tank/bench/big@s1 | ssh -c ${cipher} ${KEY} root@${boxIp} zfs receive -u ${t}`;
    for (const c of ['aes128-gcm@openssh.com', 'chacha20-poly1305@openssh.com']) {
      await fresh('backup/bench/raw');
      cipherS[c] = await timed(raw(c, 'backup/bench/raw'));
      log(`  raw with ${c}: ${r2(cipherS[c])} s`);
    }
    best = Object.entries(cipherS).sort((a, b) => a[1] - b[1])[0][0];
    await hozoConfig('bench-big', [{ name: 'big', source: 'tank/bench/big', target: `${AGENT_ROOT}/bench/big` }]);
    const ways = {
      raw: { target: 'backup/bench/raw', cmd: raw(best, 'backup/bench/raw') },
      hozo: { target: `${AGENT_ROOT}/bench/big`, cmd: hozoRun('bench-big', 'big') },
      syncoid: {
        target: 'backup/bench/syncoid',
        cmd: `syncoid --no-sync-snap --no-privilege-elevation --compress=none ${SYNCOID_SSH} tank/bench/big root@${boxIp}:backup/bench/syncoid`,
      },
    };
    const full = { raw: [], hozo: [], syncoid: [] };
    // One untimed run of each first: a nightly run is a warm one (hozo's capability probe, config caches and the box's
    // agent have run before; syncoid and the raw pipe get the same page cache). The first run is reported apart.
    const firstRun = {};
    for (const w of Object.keys(ways)) {
      await fresh(ways[w].target);
      if (w === 'hozo')
        await ctl.check(
          'rm -rf /var/lib/hozo-bench/state* /var/lib/hozo-bench/locks; zfs release -r hozo:big tank/bench/big@s1 2>/dev/null; zfs destroy tank/bench/big#hozo:big:s1 2>/dev/null; true',
        );
      firstRun[w] = await timed(ways[w].cmd);
      log(`  warm-up ${w}: ${r2(firstRun[w])} s`);
    }
    for (let i = 0; i < N; i++) {
      const order = Object.keys(ways);
      for (let k = 0; k < i % order.length; k++) order.push(order.shift());
      for (const w of order) {
        await fresh(ways[w].target);
        if (w === 'hozo')
          await ctl.check(
            'rm -rf /var/lib/hozo-bench/state* /var/lib/hozo-bench/locks; zfs release -r hozo:big tank/bench/big@s1 2>/dev/null; zfs destroy tank/bench/big#hozo:big:s1 2>/dev/null; true',
          );
        const s = await timed(ways[w].cmd);
        full[w].push(s);
        log(`  round ${i + 1} ${w}: ${r2(s)} s`);
      }
    }
    results.part1 = {
      cipherS,
      rawCipher: best,
      warmUpS: firstRun,
      seconds: full,
      medians: Object.fromEntries(Object.entries(full).map(([k, v]) => [k, median(v)])),
    };
    results.part1.rawOverHozo = results.part1.medians.raw / results.part1.medians.hozo;
    await ctl.check('zfs release -r hozo:big tank/bench/big@s1 2>/dev/null; zfs destroy -r tank/bench/big; true');
    await boxSh('zfs destroy -r backup/bench/raw 2>/dev/null; zfs destroy -r backup/bench/syncoid 2>/dev/null; true');
    await box.check(`zfs destroy -r ${AGENT_ROOT}/bench/big 2>/dev/null; true`);
  }

  if (PARTS.has('2')) {
    // ----- 2: no-op over many datasets -----
    log(`part 2: ${DATASETS} datasets`);
    await ctl.check(
      `zfs create -o mountpoint=none tank/bench/many && for i in $(seq 1 ${DATASETS}); do zfs create tank/bench/many/d$i || exit 1; done && zfs snapshot -r tank/bench/many@s1`,
      { timeoutMs: 1_800_000 },
    );
    // The box is seeded with one replication stream (as root), so hozo's first run only holds and bookmarks.
    const seedS = await timed(
      `zfs send -R tank/bench/many@s1 | ssh -c ${best} ${KEY} root@${boxIp} zfs receive -u -o canmount=noauto ${AGENT_ROOT}/bench/many`,
    );
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
      await ctl.check(
        `ssh -o ControlPath=/tmp/bench-cm -O exit ${boxIp} 2>/dev/null; ssh -o ControlMaster=auto -o ControlPath=/tmp/bench-cm -o ControlPersist=60 ${KEY} root@${boxIp} true`,
      );
      // The floor is timed with its connection already open (the connection itself is timed in hozo's run).
      floor.push(await timed(floorCmd));
      const out = await timed(hozoRun('bench-many', 'many'));
      noop.push(out);
      log(`  round ${i + 1}: floor ${r2(floor[i])} s, hozo no-op ${r2(out)} s`);
    }
    const connS = await timed(`ssh ${KEY} root@${boxIp} true`);
    results.part2 = {
      datasets: DATASETS,
      seedS,
      firstS,
      floorS: floor,
      noopS: noop,
      sshConnectS: connS,
      noopOverFloor: median(noop) / median(floor),
      noopOverFloorPlusConnect: median(noop) / (median(floor) + connS),
    };
    await ctl.check(
      'zfs list -H -o name -t snapshot -r tank/bench/many | xargs -r -n 50 zfs release hozo:many 2>/dev/null; zfs destroy -r tank/bench/many; true',
      { timeoutMs: 1_800_000 },
    );
    await box.check(`zfs destroy -r ${AGENT_ROOT}/bench/many; true`, { timeoutMs: 1_800_000 });
  }

  if (PARTS.has('3')) {
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
            await ctl.check(
              'rm -rf /var/lib/hozo-bench/state*; zfs release hozo:logs tank/bench/logs@s1 2>/dev/null; zfs destroy tank/bench/logs#hozo:logs:s1 2>/dev/null; true',
            );
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
  }

  if (PARTS.has('4')) {
    // ----- 4: cold boot: the box powered off for real, woken by a magic packet; its boot-to-sshd is not hozo's -----
    log('part 4: cold boot (box powered off, magic packet)');
    // (Part 3 leaves no tank/bench behind.)
    await ctl.check(
      '{ zfs list -H -o name tank/bench >/dev/null 2>&1 || zfs create -o mountpoint=/tank/bench -o compression=off tank/bench; } && zfs create tank/bench/boot && echo boot > /tank/bench/boot/f && zfs snapshot tank/bench/boot@b1',
    );
    await hozoConfig(
      'bench-boot',
      [{ name: 'boot', source: 'tank/bench/boot', target: `${AGENT_ROOT}/bench/boot` }],
      [
        `    wake: { method: wol, mac: "${box.mac}", address: ${lab.broadcast} }`,
        '    readyTimeout: 240',
        // Left up afterwards, so its journal of this boot can be read.
        '    shutdown: none',
      ],
    );
    const boots = [];
    for (let i = 0; i < N; i++) {
      await box.check(`zfs destroy -r ${AGENT_ROOT}/bench/boot 2>/dev/null; true`);
      await ctl.check(
        'rm -rf /var/lib/hozo-bench/state*; zfs release -r hozo:boot tank/bench/boot@b1 2>/dev/null; zfs destroy tank/bench/boot#hozo:boot:b1 2>/dev/null; true',
      );
      await box.sh('systemctl start --no-block hozo-poweroff.service');
      if (!(await box.waitGone(180_000))) throw new Error('the box VM did not power off');
      await box.closeSsh();
      const before = lab.wakeEvents().length;
      const totalS = await timed(hozoRun('bench-boot', 'boot'), 600_000);
      const packet = lab
        .wakeEvents()
        .slice(before)
        .find((e) => e.vm === 'box' && e.action === 'boot');
      if (packet === undefined) throw new Error('no magic packet booted the box');
      await lab.ensureBoxUp();
      // The box's own clock for both ends of hozo's share: sshd listening (journal) and the agent starting the receive
      // (its audit line's time minus the duration it logs).
      const sshd = (
        await box.check(`journalctl -b -o json -u ssh.service | grep -m1 'Server listening' || journalctl -b -o json -u ssh.service | grep -m1 'Started'`)
      ).trim();
      const j = JSON.parse(sshd);
      const sshdAt = Number(j.__REALTIME_TIMESTAMP) / 1e6;
      const bootToSshdS = Number(j.__MONOTONIC_TIMESTAMP) / 1e6;
      const recv = (await box.check(`grep '"receive ' /var/lib/hozo-agent/agent.log | tail -1`)).trim();
      const m = /^(\S+) .*\(([0-9]+) ms\)$/.exec(recv);
      if (m === null) throw new Error(`no receive in the agent log: ${recv}`);
      const receiveAt = Date.parse(m[1]) / 1000 - Number(m[2]) / 1000;
      // host ↔ box clock offset, from one round trip (for the packet → first byte figure only)
      const h0 = Date.now() / 1000;
      const boxNow = Number(await box.check('date +%s.%N'));
      const h1 = Date.now() / 1000;
      const offset = boxNow - (h0 + h1) / 2;
      // When the box's pool was imported at boot (zfs-import-*.service finished), same clock.
      const imp = (await box.check(`journalctl -b -o json -u zfs-import-cache.service -u zfs-import-scan.service | grep -m1 '"Finished' || true`)).trim();
      const poolAt = imp === '' ? null : Number(JSON.parse(imp).__REALTIME_TIMESTAMP) / 1e6;
      // hozo's own account of the wait (its "ready after …" line).
      const ready = /ready after ([0-9.]+)s \(port ([0-9.]+)s, ssh ([0-9.]+)s, pool ([0-9.]+)s\)/.exec(await ctl.check('cat /tmp/bench.out'));
      const b = {
        totalS,
        bootToSshdS,
        sshdToFirstByteS: receiveAt - sshdAt,
        packetToFirstByteS: receiveAt - offset - packet.t / 1000,
        sshdToPoolImportedS: poolAt === null ? null : poolAt - sshdAt,
        clockOffsetS: offset,
        clockRttS: h1 - h0,
        hozoReady: ready === null ? null : { totalS: Number(ready[1]), portS: Number(ready[2]), sshS: Number(ready[3]), poolS: Number(ready[4]) },
      };
      boots.push(b);
      log(
        `  round ${i + 1}: run ${r2(totalS)} s; packet → first byte ≈ ${r2(b.packetToFirstByteS)} s, box boot → sshd ${r2(bootToSshdS)} s, sshd → first byte ${r2(b.sshdToFirstByteS)} s (sshd → pool imported ${b.sshdToPoolImportedS === null ? '?' : r2(b.sshdToPoolImportedS)} s; hozo's ready stages ${JSON.stringify(b.hozoReady)})`,
      );
    }
    results.part4 = { boots, sshdToFirstByteMedianS: median(boots.map((b) => b.sshdToFirstByteS)) };
    await ctl.check('zfs release -r hozo:boot tank/bench/boot@b1 2>/dev/null; zfs destroy -r tank/bench/boot; true');
    await box.check(`zfs destroy -r ${AGENT_ROOT}/bench/boot; true`);
  }

  mkdirSync(join(HERE, 'results'), { recursive: true });
  writeFileSync(join(HERE, 'results', 'openzfs-latest.json'), JSON.stringify(results, null, 2));
  const p1 = results.part1;
  console.log(`\nOpenZFS lab benchmark — ${results.zfs}, accelerator ${results.accel}, ${results.when}`);
  if (p1)
    console.log(
      `0. raw pipe cipher: aes128-gcm ${r2(cipherS['aes128-gcm@openssh.com'])} s, chacha20-poly1305 ${r2(cipherS['chacha20-poly1305@openssh.com'])} s → raw uses ${best}`,
    );
  if (p1)
    console.log(
      `1. full ${SIZE_MB} MiB incompressible (median of ${N}): raw ${r2(p1.medians.raw)} s, hozo ${r2(p1.medians.hozo)} s, syncoid ${r2(p1.medians.syncoid)} s; raw/hozo ${r2(p1.rawOverHozo)}× (target ≥ 0.97×)`,
    );
  const p2 = results.part2;
  if (p2)
    console.log(
      `2. no-op over ${DATASETS} datasets (median of ${N}): floor ${r2(median(p2.floorS))} s, hozo ${r2(median(p2.noopS))} s: ${r2(p2.noopOverFloor)}× the floor (target ≤ 1.5×); one new SSH connection ${r2(p2.sshConnectS)} s; ${r2(p2.noopOverFloorPlusConnect)}× floor + connection`,
    );
  if (results.part3)
    console.log(
      `3. ${TEXT_MB} MiB logs (compressratio ${results.part3.source[0]}) at ${MBIT} Mbit/s (median of ${N}): hozo ${r2(median(results.part3.seconds.hozo))} s, syncoid ${r2(median(results.part3.seconds.syncoid))} s: hozo ${r2(results.part3.syncoidOverHozo)}× faster (target ≥ 1.3×)`,
    );
  if (results.part4)
    console.log(
      `4. cold boot (median of ${N}): sshd listening → first byte of the stream ${r2(results.part4.sshdToFirstByteMedianS)} s (box clock; target: packet → first byte minus boot-to-sshd ≤ 1 s); boot → sshd ${r2(median(results.part4.boots.map((b) => b.bootToSshdS)))} s`,
    );
}

try {
  await main();
} finally {
  if (ownLab) await lab?.destroy().catch((e) => console.error(`teardown: ${e.message}`));
}
