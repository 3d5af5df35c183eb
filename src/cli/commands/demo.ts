// `hozo demo`: a whole real cycle on this machine — file-backed pools, a sleeping box in a network namespace with
// its own zfs-fuse, hozo-agent as the forced command, a magic packet that wakes it, replication, verification, and
// the box going back to sleep — printed as a user would see it, then cleaned up.
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import { HozoError } from '../../errors.js';
import { printJson, type Context } from '../context.js';
import { renderReport } from '../render.js';

export function registerDemo(program: Command, ctx: Context): void {
  program
    .command('demo')
    .description('run a whole wake → replicate → verify → shutdown cycle in a self-contained lab on this machine (root)')
    .option('--keep', 'leave the lab running afterwards (remove it with `hozo demo --cleanup`)')
    .option('--cleanup', 'remove a lab left by --keep or an aborted demo, then exit')
    .option('--serve', 'after the cycle, serve the web dashboard on the demo lab until Ctrl-C (then the lab is removed, unless --keep)')
    .option('--listen <address:port>', 'with --serve: where (default 127.0.0.1:8480; loopback only)')
    .action(async (opts: { keep?: boolean; cleanup?: boolean; serve?: boolean; listen?: string }) => {
      if (opts.keep === true && opts.cleanup === true)
        throw new HozoError('USAGE', '--keep and --cleanup contradict each other (nothing was done)', { hint: 'pass one of them' });
      if (opts.listen !== undefined && opts.serve !== true) throw new HozoError('USAGE', '--listen goes with --serve (nothing was done)');
      const { DEFAULT_LISTEN } = await import('./serve.js');
      const { isLoopback, parseListen } = await import('../../web/guard.js');
      const listen = parseListen(opts.listen ?? DEFAULT_LISTEN);
      if (opts.serve === true && (listen === undefined || !isLoopback(listen.host)))
        throw new HozoError(
          'USAGE',
          `--listen: expected a loopback address and port like 127.0.0.1:8480 (the demo's dashboard has no token), got ${JSON.stringify(opts.listen)}`,
        );
      // The lab is only loaded for the demo, not on every hozo start.
      const { cleanupStaleLabs, createLab, labPrerequisites } = await import('../../lab/lab.js');
      const { execa } = await import('execa');
      if (opts.cleanup) {
        const r = await cleanupStaleLabs({ id: 'demo', force: true });
        if (ctx.json()) printJson(ctx, { version: 1, removed: r });
        else ctx.out.write(`removed: ${JSON.stringify(r)}\n`);
        return;
      }
      const missing = labPrerequisites();
      if (missing.length > 0) throw new HozoError('USAGE', `the demo needs ${missing.join(', ')}`, { hint: "run it as root after the README's setup command" });
      const log = ctx.logger();
      const say = (s: string) => ctx.out.write(`\n== ${s}\n`);

      say('building the lab: source pool on this machine, a sleeping box in network namespace hzlab-demo');
      const lab = await createLab({ id: 'demo', sshd: false, wakeListener: { startSshd: true, bootDelayMs: 1500 } });
      try {
        const src = lab.source.name;
        const mnt = lab.source.mountpoint;
        const box = lab.box;
        for (const ds of ['services', 'services/db', 'services/www', 'services/cache']) await lab.hostZfs(['create', `${src}/${ds}`]);
        writeFileSync(join(mnt, 'services/db/dump.sql'), 'INSERT INTO t VALUES (1);\n'.repeat(200_000));
        writeFileSync(join(mnt, 'services/www/index.html'), '<h1>宝蔵</h1>\n');
        await execa('sh', ['-c', `head -c 32M /dev/urandom > ${join(mnt, 'services/www/photos.bin')}`]);
        const snap = async (name: string) => {
          for (const ds of ['services', 'services/db', 'services/www', 'services/cache']) await lab.hostZfs(['snapshot', `${src}/${ds}@${name}`]);
        };
        await snap('demo-1');

        const { agentBuilt, installAgent } = await import('../../lab/agent.js');
        const agent = agentBuilt();
        const root = `${box.pool.name}/kraken`;
        if (agent) {
          installAgent(box, { roots: [root] });
          ctx.out.write(`box: ${box.boxIp} (MAC ${box.mac}), pool ${box.pool.name}, hozo-agent as the forced command, asleep (sshd stopped)\n`);
        }
        // zfs-fuse has no native encryption, so nothing could be sent raw: the demo's box is trusted (hosts.offsite.trust).
        ctx.out.write(
          'box trust: trusted, because zfs-fuse cannot encrypt: backups go in the clear here; on OpenZFS an untrusted box (the default) gets only raw encrypted sends\n',
        );
        const metricsDir = join(lab.dir, 'metrics');
        mkdirSync(metricsDir, { recursive: true });
        const { validateConfig } = await import('../../config/load.js');
        const config = validateConfig(
          {
            stateDirectory: join(lab.dir, 'state'),
            metrics: { textfileDirectory: metricsDir },
            hosts: {
              offsite: {
                ...box.hostConfig(),
                readyTimeout: 60,
                shutdown: agent ? 'agent' : 'ssh',
                ...(agent ? {} : { shutdownCommand: [...box.sleepCommand] }),
              },
            },
            jobs: [
              {
                name: 'nightly',
                host: 'offsite',
                datasets: [{ source: `${src}/services`, target: `${root}/services`, recursive: true, exclude: [`${src}/services/cache`] }],
                snapshots: 'all',
                retries: 1,
                retryDelay: 5,
              },
            ],
          },
          'demo config',
        );
        writeFileSync(join(lab.dir, 'config.json'), JSON.stringify(config, null, 2));
        const job = config.jobs[0]!;

        const [{ runJob }, { previousState, recordOutcome }] = await Promise.all([import('../../job/run.js'), import('../../job/record.js')]);
        const cycle = async (title: string) => {
          say(title);
          ctx.out.write(`box sshd listening before the run: ${await box.sshPortOpen(300)}\n`);
          const previous = previousState(config, job.name, log);
          const report = await runJob(config, job, { log, ...(previous ? { previous } : {}) });
          await recordOutcome(config, report, previous, log);
          ctx.out.write(renderReport(report));
          for (const h of report.hosts) {
            ctx.out.write(
              `box ${h.name}: ${h.woke ? `woken by magic packet, ready after ${h.wakeSeconds?.toFixed(1)}s` : 'was already awake'}; awake ${h.awakeSeconds?.toFixed(1)}s; shutdown ${h.shutdown}${h.shutdownDetail ? ` (${h.shutdownDetail})` : ''}\n`,
            );
          }
          // The box powers off a moment after the agent said yes.
          for (let i = 0; i < 50 && (await box.sshPortOpen(200)); i++) await new Promise((r) => setTimeout(r, 100));
          ctx.out.write(`box sshd listening after the run: ${await box.sshPortOpen(300)}\n`);
          if (report.result !== 'ok') ctx.exitCode = report.result === 'unreachable' ? 3 : 1;
        };

        await cycle(`run 1: wake the box, full replication of ${src}/services (its cache child excluded), verify, shut down`);
        writeFileSync(join(mnt, 'services/www/index.html'), '<h1>宝蔵 v2</h1>\n');
        await snap('demo-2');
        await snap('demo-3');
        await cycle('run 2: two new snapshots → incremental -I, only the changes travel');

        say('what the box holds now (its pool was exported at shutdown; imported here just to look)');
        await box.exec(['zpool', 'import', '-d', dirname(box.pool.image), box.pool.name]);
        const held = await box.exec(['zfs', 'list', '-H', '-t', 'snapshot', '-o', 'name,used', '-r', root]);
        ctx.out.write((held.exitCode === 0 ? held.stdout : `nothing: ${held.stderr}`).trim() + '\n');
        say(`metrics file (node-exporter textfile collector): ${metricsDir}`);
        for (const f of readdirSync(metricsDir))
          ctx.out.write(
            readFileSync(join(metricsDir, f), 'utf8')
              .split('\n')
              .filter((l) => l && !l.startsWith('#'))
              .join('\n') + '\n',
          );
        if (opts.serve === true) {
          say('the dashboard: press "Run now" to see another wake → replicate → verify → sleep cycle');
          const { startServer } = await import('../../web/server.js');
          const served = await startServer({
            config,
            configPath: join(lab.dir, 'config.json'),
            host: listen!.host,
            port: listen!.port,
            log,
            self: [process.execPath, process.argv[1]!],
          });
          ctx.out.write(`dashboard: ${served.url}/ (JSON API under /api/); Ctrl-C stops it${opts.keep ? '' : ' and removes the lab'}\n`);
          await new Promise<void>((resolve) => {
            process.once('SIGINT', () => resolve());
            process.once('SIGTERM', () => resolve());
          });
          await served.close();
        }
      } finally {
        if (opts.keep) ctx.out.write(`\nlab kept in ${lab.dir} (config: ${join(lab.dir, 'config.json')}); remove with: hozo demo --cleanup\n`);
        else {
          const { ms } = await lab.destroy();
          ctx.out.write(`\nlab removed in ${(ms / 1000).toFixed(1)}s\n`);
        }
      }
    });
}
