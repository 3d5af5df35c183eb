#!/usr/bin/env node
// Manual use of the OpenZFS lab: `node dist/src/lab/vm/cli.js up [--id ID] [--series 2.3|2.1] [--subnet N] | status | ssh ctl|box
// [CMD…] | down | cleanup`. `up` leaves the VMs running (until `down`); the state is in <LAB_ROOT>/vm/<id>/lab.json.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { LAB_ROOT } from '../pools.js';
import { SSH_OPTS } from './vm.js';
import { cleanupVmLabs, createVmLab, type Series } from './lab.js';

const USAGE = `usage: node dist/src/lab/vm/cli.js up [--id ID] [--series 2.3|2.1] [--subnet N]   (10.78.N.0/24; the suite's lane n: --id ozN --subnet N)
       node dist/src/lab/vm/cli.js status [--id ID]
       node dist/src/lab/vm/cli.js ssh ctl|box [--id ID] [COMMAND...]
       node dist/src/lab/vm/cli.js down [--id ID]
       node dist/src/lab/vm/cli.js cleanup          (every VM lab on this machine)`;

export async function main(argv: readonly string[]): Promise<number> {
  const args = [...argv];
  const take = (flag: string): string | undefined => {
    const i = args.indexOf(flag);
    if (i < 0) return undefined;
    const v = args[i + 1];
    args.splice(i, 2);
    return v;
  };
  const id = take('--id') ?? 'oz';
  const series = (take('--series') ?? '2.3') as Series;
  const subnet = Number(take('--subnet') ?? '1');
  const [cmd, ...rest] = args;
  const dir = join(LAB_ROOT, 'vm', id);
  switch (cmd) {
    case 'up': {
      const lab = await createVmLab({ id, series, subnet });
      process.stdout.write(readFileSync(join(lab.dir, 'lab.json'), 'utf8') + '\n');
      process.stdout.write(`timings (ms): ${JSON.stringify(lab.timings)}\n`);
      return 0;
    }
    case 'status': {
      if (!existsSync(join(dir, 'lab.json'))) {
        process.stdout.write(`no VM lab "${id}"\n`);
        return 1;
      }
      process.stdout.write(readFileSync(join(dir, 'lab.json'), 'utf8') + '\n');
      for (const vm of ['ctl', 'box']) {
        let pid = '';
        try {
          pid = readFileSync(join(dir, 'vms', vm, 'qemu.pid'), 'utf8').trim();
        } catch {
          // off
        }
        process.stdout.write(`${vm}: ${pid !== '' && existsSync(`/proc/${pid}`) ? `running (qemu pid ${pid})` : 'off'}\n`);
      }
      return 0;
    }
    case 'ssh': {
      const vm = rest[0];
      if (vm !== 'ctl' && vm !== 'box') break;
      const spec = JSON.parse(readFileSync(join(dir, 'vms', vm, 'vm.json'), 'utf8')) as { namespace: string; ip: string; dir: string };
      const r = spawnSync(
        'ip',
        ['netns', 'exec', spec.namespace, 'ssh', '-t', ...SSH_OPTS(spec.dir, join(dir, 'root_key')), `root@${spec.ip}`, ...rest.slice(1)],
        {
          stdio: 'inherit',
        },
      );
      return r.status ?? 1;
    }
    case 'down':
      process.stdout.write((await cleanupVmLabs(id)).join('\n') + '\n');
      return 0;
    case 'cleanup':
      process.stdout.write(((await cleanupVmLabs()).join('\n') || 'nothing to clean') + '\n');
      return 0;
  }
  process.stderr.write(USAGE + '\n');
  return 2;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`lab: ${(e as Error).message}\n`);
      process.exit(1);
    },
  );
}
