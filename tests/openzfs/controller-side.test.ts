// The controller-side parts of the trust boundary, in the OpenZFS lab's VMs (hozo in the ctl VM, hozo-agent as the
// forced command on the box): the agent refuses a shutdown while a receive streams (it re-checks inside its lock), one
// job runs once at a time (exit 4 for the second), wake and notification URL secrets reach no output, a config cache
// not written privately by the running user is not trusted, and sshOptions that could run commands are refused.
// The same on zfs-fuse and in unit tests: tests/integration/secrets.test.ts, tests/unit/{lock,config-cache,
// agent-serve}.test.ts. HTTP traffic stays on ctl's loopback; no magic packet is sent.
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VM_HOZO, type VmLab } from '../../src/lab/vm/lab.js';
import { AGENT_ROOT, SRC, controllerConfig, hozoJson, labOrSkip, randomFile, reset, skipReason, writeConfig } from './helpers.js';

const lab: VmLab | undefined = labOrSkip();
if (lab === undefined) console.warn(`SKIP: tests/openzfs/controller-side.test.ts: ${skipReason()}`);

const KEY = '-i /etc/hozo/box_key -o UserKnownHostsFile=/etc/hozo/known_hosts -o BatchMode=yes';

describe.skipIf(lab === undefined)('controller side of the trust boundary on real OpenZFS (ctl VM → box VM)', () => {
  const L = lab!;
  beforeAll(async () => {
    await reset(L);
    await L.ctl.check(`zfs create ${SRC}/slow`);
    await randomFile(L, '/tank/src/slow/blob.bin', 6);
    await L.ctl.check(`zfs snapshot ${SRC}/slow@s1`);
  }, 600_000);
  afterAll(async () => {
    await L.ctl.sh(
      'pkill -f "[h]ozo-secrets-http"; rm -rf /var/lib/hozo-secrets /var/lib/hozo-cc /etc/hozo/secrets.yaml /etc/hozo/cc.yaml /etc/hozo/ssh-bad.yaml /tmp/r1.* /tmp/go',
    );
    await reset(L).catch(() => undefined);
  });

  it('a shutdown asked for while a receive streams is refused by the agent (exit 3, naming the receive); the box stays up and the receive completes', async () => {
    // The stream's first MiB, then a pause until the test says go: the box's zfs receive is running (waiting for
    // data) whenever the shutdown arrives, however long the agent took to start.
    await L.ctl.check(`rm -f /tmp/r1.* /tmp/go; zfs send ${SRC}/slow@s1 > /tmp/r1.stream`);
    await L.ctl.check(
      `({ head -c 1M /tmp/r1.stream; while [ ! -e /tmp/go ]; do sleep 0.2; done; tail -c +1048577 /tmp/r1.stream; } | ssh ${KEY} hozo@${L.box.ip} 'receive -u ${AGENT_ROOT}/slow' > /tmp/r1.out 2> /tmp/r1.err; echo $? > /tmp/r1.rc) > /dev/null 2>&1 &`,
    );
    try {
      await L.box.check("for i in $(seq 1 600); do pgrep -f '^zfs receive' >/dev/null && exit 0; sleep 0.2; done; exit 1", { timeoutMs: 180_000 });
      const off = await L.ctl.sh(`ssh ${KEY} hozo@${L.box.ip} shutdown`, { timeoutMs: 120_000 });
      expect(off.exitCode, off.stderr).toBe(3);
      expect(`${off.stdout}${off.stderr}`).toMatch(new RegExp(`a receive into ${AGENT_ROOT}/slow is running`));
      expect((await L.box.sh('true')).exitCode, 'the box is still up').toBe(0);
    } finally {
      await L.ctl.check('touch /tmp/go');
    }
    await L.ctl.check('for i in $(seq 1 240); do [ -s /tmp/r1.rc ] && exit 0; sleep 0.5; done; exit 1', { timeoutMs: 180_000 });
    expect((await L.ctl.check('cat /tmp/r1.rc')).trim(), await L.ctl.check('cat /tmp/r1.err')).toBe('0');
    expect(await L.box.check(`zfs list -H -o name -t snapshot ${AGENT_ROOT}/slow@s1`)).toBe(`${AGENT_ROOT}/slow@s1`);
  }, 600_000);

  it('two runs of one job at once: one replicates, the other exits 4 (already running) and sends nothing', async () => {
    await L.box.check(`zfs destroy -r ${AGENT_ROOT}/slow`);
    await writeConfig(L, [{ datasets: [{ source: `${SRC}/slow`, target: `${AGENT_ROOT}/slow` }] }]);
    await L.ctl.check('tc qdisc replace dev ens4 root tbf rate 4mbit burst 64kb latency 500ms');
    try {
      await L.ctl.check(
        `(${VM_HOZO} --config /etc/hozo/config.yaml run nightly --json > /tmp/r1.json 2> /tmp/r1.stderr; echo $? > /tmp/r1.code) > /dev/null 2>&1 &`,
      );
      // The first run holds the job lock from its start; the stream itself lasts ~12 s at 4 Mbit/s.
      await L.box.check("for i in $(seq 1 600); do pgrep -f '^zfs receive' >/dev/null && exit 0; sleep 0.2; done; exit 1", { timeoutMs: 180_000 });
      const second = await L.hozo(['run', 'nightly', '--json'], { timeoutMs: 180_000 });
      expect(second.exitCode, second.stderr).toBe(4);
      expect(JSON.parse(second.stdout).error.code).toBe('LOCKED');
      await L.ctl.check('for i in $(seq 1 480); do [ -s /tmp/r1.code ] && exit 0; sleep 0.5; done; exit 1', { timeoutMs: 300_000 });
    } finally {
      await L.ctl.sh('tc qdisc del dev ens4 root');
    }
    expect((await L.ctl.check('cat /tmp/r1.code')).trim(), await L.ctl.check('cat /tmp/r1.stderr')).toBe('0');
    expect(JSON.parse(await L.ctl.check('cat /tmp/r1.json')).datasets[0].result).toBe('sent');
  }, 600_000);

  it("a failing http wake and webhook (a server on ctl's loopback answering 500): no URL secret in stdout, stderr, log, state or metrics", async () => {
    const secrets = ['WakePathSecret7f3', 'wakeQueryTok9c1', 'HookPathSecret2b8', 'hookQueryTok4d6'];
    // The HTTP server runs in ctl with the runtime's node; it answers every request 500 with the request line.
    await L.ctl.check(
      `(/opt/hozo-rt/node -e "require('http').createServer((q, s) => { let n = 0; q.on('data', (c) => (n += c.length)); q.on('end', () => { require('fs').appendFileSync('/tmp/hozo-secrets-hits', q.method + ' ' + q.url + ' ' + n + '\\\\n'); s.writeHead(500); s.end('cannot serve ' + q.url); }); }).listen(8099, '127.0.0.1')" hozo-secrets-http > /dev/null 2>&1 &) ; ` +
        `rm -f /tmp/hozo-secrets-hits; for i in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/8099) 2>/dev/null && exit 0; sleep 0.2; done; exit 1`,
      { timeoutMs: 60_000 },
    );
    const config = controllerConfig(
      L,
      [{ datasets: [{ source: `${SRC}/slow`, target: `${AGENT_ROOT}/nowhere` }] }],
      {
        // A closed port on ctl itself: the wake is asked for, the "box" never answers.
        address: '127.0.0.1',
        port: 1,
        readyTimeout: 3,
        wake: { method: 'http', url: `http://127.0.0.1:8099/plug/${secrets[0]}?token=${secrets[1]}` },
      },
      {
        stateDirectory: '/var/lib/hozo-secrets',
        logFile: '/var/lib/hozo-secrets/hozo.log',
        metrics: { textfileDirectory: '/var/lib/hozo-secrets/metrics' },
        notify: [{ type: 'webhook', url: `http://127.0.0.1:8099/hooks/${secrets[2]}?token=${secrets[3]}`, on: 'always' }],
      },
    );
    await L.ctl.check('mkdir -p /var/lib/hozo-secrets/metrics');
    await L.ctl.writeFile('/etc/hozo/secrets.yaml', stringify(config));
    const r = await L.hozo(['run', 'nightly', '--json'], { config: '/etc/hozo/secrets.yaml', timeoutMs: 180_000 });
    expect(r.exitCode).not.toBe(0);
    const hits = await L.ctl.check('cat /tmp/hozo-secrets-hits');
    // Both requests reached the server with their secrets (so the secrets were in play).
    expect(hits).toContain(`/plug/${secrets[0]}?token=${secrets[1]}`);
    expect(hits).toContain(`/hooks/${secrets[2]}?token=${secrets[3]}`);
    expect(`${r.stdout}${r.stderr}`).toMatch(/wake URL http:\/\/127\.0\.0\.1:8099\/… answered HTTP 500/);
    const files = await L.ctl.check('find /var/lib/hozo-secrets -type f ! -name config-cache.json -exec sh -c \'echo "== $1"; cat "$1"\' _ {} \\;');
    expect(files).toContain('== /var/lib/hozo-secrets/hozo.log');
    expect(files).toMatch(/== \/var\/lib\/hozo-secrets\/metrics\/.*\.prom/);
    for (const s of secrets) {
      expect(r.stdout.includes(s), `${s} in stdout`).toBe(false);
      expect(r.stderr.includes(s), `${s} in stderr`).toBe(false);
      expect(files.includes(s), `${s} in a state, log or metrics file`).toBe(false);
    }
    // The validated config's cache holds the URLs (it is the config): 0600 like a config with secrets.
    expect(await L.ctl.check('stat -c %a /var/lib/hozo-secrets/config-cache.json')).toBe('600');
  }, 600_000);

  it("a config cache that is not this user's private file is not trusted: the config is validated again", async () => {
    const cfg = {
      stateDirectory: '/var/lib/hozo-cc',
      hosts: {},
      jobs: [{ name: 'real', host: 'local', datasets: [{ source: `${SRC}/slow`, target: 'tank/copy' }] }],
    };
    await L.ctl.writeFile('/etc/hozo/cc.yaml', stringify(cfg));
    const names = async () =>
      (JSON.parse((await L.hozo(['jobs', 'list', '--json'], { config: '/etc/hozo/cc.yaml' })).stdout) as { jobs: { name: string }[] }).jobs.map((j) => j.name);
    expect(await names()).toEqual(['real']);
    // Tamper with the stored copy (same key, another job): a root-owned 0600 file is root's own and trusted — that is
    // what shows the tampering would be visible...
    await L.ctl.check(`f=/var/lib/hozo-cc/config-cache.json; sed -i 's/"name":"real"/"name":"planted"/' $f; grep -q planted $f`);
    expect(await names()).toEqual(['planted']);
    // ...and written by anyone else, or readable by others, it is not: validated again from the file.
    await L.ctl.check('chown hozo /var/lib/hozo-cc/config-cache.json');
    expect(await names()).toEqual(['real']);
    await L.ctl.check(`f=/var/lib/hozo-cc/config-cache.json; sed -i 's/"name":"real"/"name":"planted"/' $f; chown root $f; chmod 644 $f`);
    expect(await names()).toEqual(['real']);
  }, 600_000);

  it("the box pool's last scrub (a real one) older than the host's scrubWarnAfter is a warning and hozo_pool_scrub_overdue 1; within it, neither", async () => {
    await L.box.check('zpool scrub backup && zpool wait -t scrub backup', { timeoutMs: 300_000 });
    await L.ctl.check(`zfs create ${SRC}/sc && echo sc > /tank/src/sc/f && zfs snapshot ${SRC}/sc@c1`);
    const prom = () => L.ctl.check("grep '^hozo_pool_scrub_overdue{' /var/lib/hozo/metrics/hozo_nightly.prom");
    await new Promise((r) => setTimeout(r, 2000));
    await writeConfig(L, [{ datasets: [{ source: `${SRC}/sc`, target: `${AGENT_ROOT}/sc` }] }], { scrubWarnAfter: 1 });
    const late = await hozoJson(L, 'run', 'nightly');
    expect(late.exitCode, late.stderr).toBe(0);
    const pool = late.json.targetPools.find((p: { name: string }) => p.name === 'backup');
    expect(pool).toMatchObject({ health: 'ONLINE', errors: 0, scrubOverdue: true });
    // The agent read the scrub's end from zpool status: within the last few minutes by the box's clock.
    expect(Math.abs(Date.now() / 1000 - pool.lastScrubEnd)).toBeLessThan(600);
    expect(late.json.warnings).toContainEqual(expect.stringMatching(/^target pool backup: its last scrub finished \d+ s ago \(scrubWarnAfter: 1 s\)$/));
    expect(await prom()).toMatch(/^hozo_pool_scrub_overdue\{job="nightly",host="box",pool="backup"\} 1$/);

    await L.ctl.check(`zfs snapshot ${SRC}/sc@c2`);
    await writeConfig(L, [{ datasets: [{ source: `${SRC}/sc`, target: `${AGENT_ROOT}/sc` }] }]);
    const fresh = await hozoJson(L, 'run', 'nightly');
    expect(fresh.exitCode, fresh.stderr).toBe(0);
    expect(fresh.json.targetPools.find((p: { name: string }) => p.name === 'backup')).toMatchObject({ scrubOverdue: false });
    expect(fresh.json.warnings.filter((w: string) => w.includes('scrub'))).toEqual([]);
    expect(await prom()).toMatch(/ 0$/);
  });

  it('sshOptions that could run commands or weaken host keys are refused by config check, before anything runs', async () => {
    const bad = [
      'ProxyCommand=/tmp/x.sh',
      'KnownHostsCommand=/tmp/x.sh',
      'LocalCommand=id',
      'PermitLocalCommand=yes',
      'ControlPath=/tmp/shared',
      'StrictHostKeyChecking=accept-new',
    ];
    // One host per option, one check (each start of hozo costs seconds in these VMs): every one is named.
    const base = controllerConfig(L, [{ datasets: [{ source: `${SRC}/slow`, target: `${AGENT_ROOT}/x` }] }]) as {
      hosts: Record<string, Record<string, unknown>>;
    };
    const hosts = Object.fromEntries(bad.map((o, i) => [`box${i}`, { ...base.hosts['box'], sshOptions: [o] }]));
    await L.ctl.writeFile('/etc/hozo/ssh-bad.yaml', stringify({ ...base, hosts: { ...base.hosts, ...hosts } }));
    const r = await L.hozo(['config', 'check', '--json'], { config: '/etc/hozo/ssh-bad.yaml' });
    expect(r.exitCode, r.stderr).toBe(2);
    const problems = (JSON.parse(r.stdout) as { problems: { path: string }[] }).problems.map((p) => p.path);
    for (const i of bad.keys()) expect(problems, bad[i]).toContain(`hosts.box${i}.sshOptions[0]`);
  }, 600_000);
});
