// `via`: a box reachable only through a jump host, over real OpenSSH. The lab box's sshd also listens on the box's own
// loopback (127.0.0.1 inside its network namespace), which this machine cannot reach: 127.0.0.1 here is this machine.
// The host config names that address and `via` the box's sshd on the lab address, so every connection hozo makes —
// control and streams — is `ssh -W 127.0.0.1:22` through the jump. Shown: full and incremental runs succeed and the
// box's sshd logs the sessions as coming from its loopback (so through the jump); without `via` the same config fails
// as unreachable; a jump host whose key is not in its known_hosts is refused as a host-key error, nothing sent.
import { expectOutput } from '../helpers/outputs.js';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab, labPrerequisites, type Lab } from '../../src/lab/lab.js';
import { hozoJson, writeConfig } from '../helpers/hozo.js';

const missing = labPrerequisites();
if (missing.length > 0) console.warn(`SKIP: tests/integration/via.test.ts needs ${missing.join(', ')}`);

describe.skipIf(missing.length > 0)('a box behind a jump host (via), real OpenSSH into the zfs-fuse lab', () => {
  let lab: Lab;
  let src: string;
  const configFor = (host: Record<string, unknown>, name = 'config.yaml') =>
    writeConfig(
      lab.dir,
      {
        stateDirectory: join(lab.dir, 'state'),
        hosts: { box: { ...lab.box.hostConfig(), wake: undefined, readyTimeout: 4, ...host } },
        jobs: [{ name: 'nightly', host: 'box', retries: 0, datasets: [{ source: `${src}/d`, target: `${lab.box.pool.name}/via/d` }] }],
      },
      name,
    );
  let inner: Record<string, unknown>;

  beforeAll(async () => {
    lab = await createLab({ id: 'via', poolSizeMB: 256 });
    src = lab.source.name;
    await lab.hostZfs(['create', `${src}/d`]);
    writeFileSync(join(lab.source.mountpoint, 'd', 'f'), 'behind a jump\n');
    await lab.hostZfs(['snapshot', `${src}/d@v1`]);
    // The box's sshd on its own loopback as well; its host key known there under that address.
    appendFileSync(lab.box.files.sshdConfig, 'ListenAddress 127.0.0.1:22\n');
    await lab.box.stopSshd({ killSessions: false });
    await lab.box.startSshd();
    const hostKey = readFileSync(`${lab.box.files.hostKey}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ');
    const known = join(lab.dir, 'known_hosts_inner');
    writeFileSync(known, `127.0.0.1 ${hostKey}\n`);
    inner = { address: '127.0.0.1', knownHostsFile: known };
  });
  afterAll(async () => {
    await lab?.destroy();
  });

  const jump = () => ({ address: lab.box.boxIp, user: 'root', sshKeyFile: lab.box.files.clientKey, knownHostsFile: lab.box.files.knownHosts });
  const loopbackSessions = () => (readFileSync(lab.box.files.sshdLog, 'utf8').match(/Accepted publickey for root from 127\.0\.0\.1 /g) ?? []).length;

  it('full, then incremental, every connection through the jump host', async () => {
    const config = configFor({ ...inner, via: jump() });
    const before = loopbackSessions();
    const first = await hozoJson(config, 'run', 'nightly');
    expect(first.exitCode, first.stderr).toBe(0);
    expect(first.json.datasets[0]).toMatchObject({ result: 'sent', verified: true, newest: 'v1' });
    await lab.hostZfs(['snapshot', `${src}/d@v2`]);
    const second = await hozoJson(config, 'run', 'nightly');
    expect(second.exitCode, second.stderr).toBe(0);
    expect(second.json.datasets[0]).toMatchObject({ result: 'sent', verified: true, newest: 'v2' });
    expect(await lab.box.zfs(['list', '-H', '-o', 'name', '-t', 'snapshot', '-r', `${lab.box.pool.name}/via/d`])).toBe(
      `${lab.box.pool.name}/via/d@v1\n${lab.box.pool.name}/via/d@v2`,
    );
    // The box's sshd saw these sessions arrive on its loopback: they came out of the jump host's -W forward.
    expect(loopbackSessions() - before).toBeGreaterThanOrEqual(2);
  }, 120_000);

  it('without via the same address is this machine, not the box: unreachable, nothing sent', async () => {
    const direct = configFor(inner, 'direct.yaml');
    const r = await hozoJson(direct, 'plan', 'nightly');
    expect(r.exitCode).toBe(3);
    expect(r.json.error.code).toBe('HOST_UNREACHABLE');
    expectOutput('job-report', r.json);
    // An always-on host (no wake method) that does not answer is unreachable, not asleep; the last run (ok) shows.
    const st = await hozoJson(direct, 'status');
    expect(st.json.hosts[0]).toMatchObject({ name: 'box', awake: false, state: 'unreachable' });
    expectOutput('status', st.json);
    expect(st.exitCode).toBe(0);
  }, 60_000);

  it('a jump host whose key is not known: a host-key error naming it, nothing sent', async () => {
    const empty = join(lab.dir, 'known_hosts_empty');
    writeFileSync(empty, '');
    await lab.hostZfs(['snapshot', `${src}/d@v3`]);
    const r = await hozoJson(configFor({ ...inner, via: { ...jump(), knownHostsFile: empty } }, 'badjump.yaml'), 'run', 'nightly');
    expect(r.exitCode).not.toBe(0);
    expect(r.json.error).toMatchObject({ code: 'SSH_HOST_KEY' });
    expect(r.json.error.message).toContain(`${lab.box.boxIp} (jump host)`);
    expect(await lab.box.zfs(['list', '-H', '-o', 'name', '-t', 'snapshot', '-r', `${lab.box.pool.name}/via/d`])).not.toContain('@v3');
  }, 60_000);
});
