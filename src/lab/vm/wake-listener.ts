#!/usr/bin/env node
// The lab's "NIC firmware": runs inside the lab namespace, listens on UDP port 9 of the lab bridge, and for a real
// magic packet (6 x 0xff, then the MAC 16 times) addressed to one of the lab's VMs it presses that VM's power button:
// QMP system_wakeup when the guest suspended itself (S3), cont when it is paused, a cold boot from its vm.json when
// qemu has exited (the guest powered off). Every packet is logged to <labdir>/wake-events.jsonl for the tests.
//
//   ip netns exec <lab namespace> node dist/src/lab/vm/wake-listener.js <labdir>
import { spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { appendFileSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { qmp, qmpStatus } from './qmp.js';
import { resetBootFiles } from './vm.js';

const labDir = process.argv[2];
if (labDir === undefined) {
  process.stderr.write('usage: wake-listener.js LABDIR\n');
  process.exit(2);
}

interface VmFile {
  name: string;
  mac: string;
  dir: string;
  argv: string[];
}

function vms(): VmFile[] {
  const d = join(labDir!, 'vms');
  if (!existsSync(d)) return [];
  return readdirSync(d).flatMap((n) => {
    try {
      return [JSON.parse(readFileSync(join(d, n, 'vm.json'), 'utf8')) as VmFile];
    } catch {
      return [];
    }
  });
}

/** The MAC a magic packet wakes, or undefined when it is not one. */
export function magicMac(data: Buffer): string | undefined {
  const i = data.indexOf(Buffer.alloc(6, 0xff));
  if (i < 0 || data.length < i + 6 + 96) return undefined;
  const mac = data.subarray(i + 6, i + 12);
  for (let k = 1; k < 16; k++) if (!data.subarray(i + 6 + 6 * k, i + 12 + 6 * k).equals(mac)) return undefined;
  return [...mac].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

function alive(dir: string): boolean {
  try {
    const pid = Number(readFileSync(join(dir, 'qemu.pid'), 'utf8').trim());
    return pid > 0 && existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z');
  } catch {
    return false;
  }
}

let busy = Promise.resolve();

async function press(vm: VmFile, from: string): Promise<string> {
  if (alive(vm.dir)) {
    const st = await qmpStatus(join(vm.dir, 'qmp.sock')).catch(() => 'unknown');
    if (st === 'suspended') {
      await qmp(join(vm.dir, 'qmp.sock'), 'system_wakeup');
      return 'resume';
    }
    if (st === 'paused') {
      await qmp(join(vm.dir, 'qmp.sock'), 'cont');
      return 'cont';
    }
    return `already-${st}`;
  }
  resetBootFiles(vm.dir);
  const [file, ...args] = vm.argv;
  const r = spawnSync(file!, args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
  if (r.status !== 0) return `boot-failed: ${String(r.stderr).trim().slice(0, 300)} (from ${from})`;
  return 'boot';
}

const sock = createSocket({ type: 'udp4', reuseAddr: true });
sock.on('message', (data, rinfo) => {
  const mac = magicMac(data);
  if (mac === undefined) return;
  const t = Date.now();
  busy = busy.then(async () => {
    const vm = vms().find((v) => v.mac.toLowerCase() === mac);
    let action = 'not-a-lab-vm';
    if (vm !== undefined) action = await press(vm, rinfo.address).catch((e: Error) => `error: ${e.message}`);
    appendFileSync(join(labDir!, 'wake-events.jsonl'), JSON.stringify({ t, mac, vm: vm?.name, from: rinfo.address, action }) + '\n');
  });
});
sock.on('error', (e) => {
  process.stderr.write(`wake-listener: ${e.message}\n`);
  process.exit(1);
});
sock.bind(9, '0.0.0.0', () => {
  sock.setBroadcast(true);
  writeFileSync(join(labDir, 'wake-listener.ready'), String(process.pid));
});
process.on('SIGTERM', () => process.exit(0));
