#!/usr/bin/env node
// One traced `hozo run` in the OpenZFS lab (`node bench/openzfs-trace.mjs`, as root, with the lab `oz` up: `node
// dist/src/lab/vm/cli.js up`): a full run of BENCH_SIZE_MB (100) MiB of incompressible data through the agent,
// BENCH_N (3) rounds, each line of HOZO_TRACE=1 (and hozo's own log) stamped with the controller VM's clock, in
// seconds after the CLI's start; then the raw pipe once for comparison. Installs the current build in both VMs
// first. What docs/bench.md's "the run's fixed cost, phase by phase" table was read from. Traffic stays on the lab's
// bridge.
import { join, resolve } from 'node:path';
import { intEnv } from './stats.mjs';

const ROOT = resolve(import.meta.dirname, '..');
const { attachVmLab, installRuntime, stageRuntime, VM_HOZO, AGENT_ROOT } = await import(join(ROOT, 'dist/src/lab/vm/lab.js'));
const MB = intEnv('BENCH_SIZE_MB', 100, 1, 400);
const N = intEnv('BENCH_N', 3, 1, 10);

const lab = attachVmLab('oz');
const { ctl, box } = lab;
await lab.ensureBoxUp();
await stageRuntime();
await Promise.all([installRuntime(ctl), installRuntime(box)]);
const yaml = [
  'stateDirectory: /var/lib/hozo-trace',
  'hosts:',
  '  box:',
  `    address: ${box.ip}`,
  '    user: hozo',
  '    sshKeyFile: /etc/hozo/box_key',
  '    knownHostsFile: /etc/hozo/known_hosts',
  '    shutdown: none',
  '    agent: true',
  '    trust: trusted',
  'jobs:',
  '  - name: big',
  '    host: box',
  '    retries: 0',
  '    datasets:',
  `      - { source: tank/trace/big, target: ${AGENT_ROOT}/trace/big }`,
  '',
].join('\n');
await ctl.writeFile('/etc/hozo/trace.yaml', yaml);
await ctl.check(
  `zfs destroy -r tank/trace 2>/dev/null; zfs create -o mountpoint=/tank/trace -o compression=off tank/trace && zfs create tank/trace/big && head -c ${MB}M /dev/urandom > /tank/trace/big/blob && sync && zfs snapshot tank/trace/big@s1`,
  { timeoutMs: 600_000 },
);
await box.check(
  `zfs destroy -r ${AGENT_ROOT}/trace 2>/dev/null; zfs create -o canmount=off ${AGENT_ROOT}/trace; zfs destroy -r backup/trace 2>/dev/null; true`,
);
try {
  for (let i = 0; i < N; i++) {
    await box.check(`zfs destroy -r ${AGENT_ROOT}/trace/big 2>/dev/null; true`);
    await ctl.check(
      'rm -rf /var/lib/hozo-trace/jobs /var/lib/hozo-trace/locks; zfs release -r hozo:big tank/trace/big@s1 2>/dev/null; zfs destroy tank/trace/big#hozo:big:s1 2>/dev/null; true',
    );
    const out = await ctl.sh(
      `t0=$(date +%s.%N); HOZO_TRACE=1 ${VM_HOZO} --config /etc/hozo/trace.yaml -v run big 2>&1 | while IFS= read -r l; do echo "$(date +%s.%N) $l"; done; echo "$(date +%s.%N) exit"; echo T0 $t0`,
      { timeoutMs: 900_000 },
    );
    const lines = out.stdout.trim().split('\n');
    const t0 = Number(lines.find((l) => l.startsWith('T0 '))?.split(' ')[1]);
    console.log(`--- round ${i + 1}`);
    for (const l of lines) {
      if (l.startsWith('T0 ')) continue;
      const sp = l.indexOf(' ');
      console.log(`${(Number(l.slice(0, sp)) - t0).toFixed(2).padStart(7)}  ${l.slice(sp + 1).slice(0, 160)}`);
    }
  }
  const r = await ctl.check(
    `t0=$(date +%s.%N); zfs send tank/trace/big@s1 | ssh -c chacha20-poly1305@openssh.com -i /etc/hozo/box_key -o UserKnownHostsFile=/etc/hozo/known_hosts -o BatchMode=yes root@${box.ip} zfs receive -u backup/trace; t1=$(date +%s.%N); echo "$t0 $t1"`,
    { timeoutMs: 900_000 },
  );
  const [a, b] = r.trim().split(' ').map(Number);
  console.log(`raw pipe (its own connection): ${(b - a).toFixed(2)} s`);
} finally {
  await ctl.sh('zfs release -r hozo:big tank/trace/big@s1 2>/dev/null; zfs destroy -r tank/trace; rm -rf /var/lib/hozo-trace /etc/hozo/trace.yaml');
  await box.sh(`zfs destroy -r ${AGENT_ROOT}/trace; zfs destroy -r backup/trace; true`);
}
process.exit(0);
