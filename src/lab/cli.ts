#!/usr/bin/env node
// Manual use of the test lab: `node dist/src/lab/cli.js up [--id ID] [--wake] | down --id ID | cleanup [--id ID]`.
import { pathToFileURL } from 'node:url';
import { cleanupStaleLabs, createLab } from './lab.js';
import { shellJoin } from '../transport/quote.js';

const USAGE = `usage: node dist/src/lab/cli.js up [--id ID] [--wake] [--pool-size MB]
       node dist/src/lab/cli.js down --id ID [--force]
       node dist/src/lab/cli.js cleanup [--id ID] [--force]
  cleanup without --id removes every stale lab on this machine; labs owned by a live process need --force`;

export async function main(argv: readonly string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  const flag = (name: string): string | undefined => {
    const i = rest.indexOf(name);
    return i >= 0 ? rest[i + 1] : undefined;
  };
  const id = flag('--id');
  switch (cmd) {
    case 'up': {
      const size = flag('--pool-size');
      const lab = await createLab({
        ...(id !== undefined ? { id } : {}),
        ...(size !== undefined ? { poolSizeMB: Number(size) } : {}),
        wakeListener: rest.includes('--wake'),
      });
      const b = lab.box;
      process.stdout.write(
        JSON.stringify(
          {
            id: lab.id,
            dir: lab.dir,
            sourcePool: lab.source.name,
            box: { namespace: b.namespace, ip: b.boxIp, hostIp: b.hostIp, broadcast: b.broadcast, mac: b.mac, pool: b.pool.name },
            ssh: shellJoin(b.sshCommand(['zpool', 'list'])),
            boxZfs: shellJoin(b.commandFor(['zfs', 'list'])),
            host: b.hostConfig(),
            createMs: lab.timings.createMs,
            down: `node dist/src/lab/cli.js down --id ${lab.id}`,
          },
          null,
          2,
        ) + '\n',
      );
      return 0;
    }
    case 'down':
    case 'cleanup': {
      if (cmd === 'down' && id === undefined) {
        process.stderr.write(`${USAGE}\n`);
        return 2;
      }
      const t = Date.now();
      const r = await cleanupStaleLabs({
        ...(id !== undefined ? { id } : {}),
        force: rest.includes('--force'),
        log: (l) => process.stderr.write(`${l}\n`),
      });
      process.stderr.write(
        `lab cleanup: ${r.ids.length ? r.ids.join(', ') : 'nothing to do'}; killed ${r.killed.length} process(es), ` +
          `pools [${r.pools.join(', ')}], namespaces [${r.namespaces.join(', ')}] in ${Date.now() - t} ms` +
          (r.inUse.length ? `; left alone (owner alive, use --force): ${r.inUse.join(', ')}` : '') +
          '\n',
      );
      for (const p of r.problems) process.stderr.write(`problem: ${p}\n`);
      return r.problems.length > 0 ? 1 : 0;
    }
    default:
      process.stderr.write(`${USAGE}\n`);
      return 2;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`lab: ${(e as Error).message}\n`);
      process.exitCode = 1;
    },
  );
}
