// Resumable receives on real OpenZFS: a stream cut off part-way leaves a receive_resume_token on the box; the next run
// resumes it with `zfs send -t` and moves fewer bytes than a restart; holds do not leak. Both ways of dying: the
// stream's ssh killed, and the whole hozo process group killed.
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { VM_HOZO, type VmLab } from '../../src/lab/vm/lab.js';
import { AGENT_ROOT, SRC, guids, hozoJson, labOrSkip, randomFile, reset, skipReason, writeConfig } from './helpers.js';

const lab: VmLab | undefined = labOrSkip();
if (lab === undefined) console.warn(`SKIP: tests/openzfs/resume.test.ts: ${skipReason()}`);

const MB = 1024 * 1024;

describe.skipIf(lab === undefined)('resumable receives on real OpenZFS (VMs)', () => {
  const L = lab!;
  const T = `${AGENT_ROOT}/src`;

  beforeEach(async () => {
    await reset(L);
  });
  afterAll(async () => {
    await reset(L).catch(() => undefined);
  });

  /** Starts `hozo run nightly` in the background on ctl (its own process group); waits until the box has received
   *  at least `minBytes` of the stream, then runs `kill` on ctl. */
  async function interrupt(kill: string, minBytes: number): Promise<void> {
    await L.ctl.check('rm -f /tmp/run.json; setsid nohup sh -c "echo \\$\\$ > /tmp/run.pgid; exec ' +
      `${VM_HOZO} --config /etc/hozo/config.yaml run nightly --json > /tmp/run.json 2>/tmp/run.err" </dev/null >/dev/null 2>&1 &`);
    // Progress on the box: what its `zfs receive` has read of the stream (/proc/<pid>/io).
    const deadline = Date.now() + 180_000;
    let seen = 0;
    while (Date.now() < deadline) {
      const out = await L.box.sh(
        `for p in $(pgrep -x zfs); do grep -qa receive /proc/$p/cmdline && awk '/^rchar/ {print $2}' /proc/$p/io; done`,
      );
      seen = Number(out.stdout.trim().split('\n')[0] || 0);
      if (seen >= minBytes) break;
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(seen, 'the stream reached the box before the kill').toBeGreaterThanOrEqual(minBytes);
    await L.ctl.check(kill);
    // The run ends (failed) by itself; wait for its process to go.
    await L.ctl.check('for i in $(seq 1 120); do pgrep -g "$(cat /tmp/run.pgid)" >/dev/null || exit 0; sleep 0.5; done; exit 1');
  }

  const token = () => L.box.check(`zfs get -H -o value receive_resume_token ${T}/big`);

  for (const [what, kill] of [
    ['the stream\'s ssh is killed', "pkill -KILL -f '^ssh .* receive'"],
    ['the whole hozo process group is killed', 'kill -KILL -- -"$(cat /tmp/run.pgid)"'],
  ] as const) {
    it(`${what}: the box keeps a resume token, the next run resumes with send -t and moves fewer bytes`, async () => {
      await L.ctl.check(`zfs create ${SRC}/big`);
      await randomFile(L, '/tank/src/big/blob.bin', 64);
      await L.ctl.check(`zfs snapshot ${SRC}/big@r1`);
      await writeConfig(L, [{ datasets: [{ source: `${SRC}/big`, target: `${T}/big` }] }]);

      await interrupt(kill, 16 * MB);
      const tok = await token();
      expect(tok).not.toBe('-');
      expect(tok.length).toBeGreaterThan(20);
      // A killed run leaks no hold on the source (libzfs's cleanup fd releases its own).
      expect(await L.ctl.check(`zfs holds -H ${SRC}/big@r1 | wc -l`)).toBe('0');

      const r = await hozoJson(L, 'run', 'nightly');
      expect(r.exitCode, `${r.stderr}\n${JSON.stringify(r.json.datasets)}`).toBe(0);
      const d = r.json.datasets[0];
      expect(d.result).toBe('sent');
      expect(d.plan).toMatch(/resume/);
      const full = Number(await L.ctl.check(`zfs send -nP ${SRC}/big@r1 | awk '/^size/ {print $2}'`));
      expect(d.bytes).toBeLessThan(full - 12 * MB);
      expect(await token()).toBe('-');
      expect((await guids(L.box, `${T}/big`)).get('@r1')).toBe((await guids(L.ctl, `${SRC}/big`)).get('@r1'));
      expect(await L.ctl.check(`zfs holds -H ${SRC}/big@r1 | cut -f2`)).toBe('hozo:nightly');
    });
  }

  it('a stale token (its snapshot gone on the source) is discarded and the dataset is planned normally', async () => {
    await L.ctl.check(`zfs create ${SRC}/big`);
    await randomFile(L, '/tank/src/big/blob.bin', 64);
    await L.ctl.check(`zfs snapshot ${SRC}/big@r1`);
    await writeConfig(L, [{ datasets: [{ source: `${SRC}/big`, target: `${T}/big` }] }]);
    await interrupt("pkill -KILL -f '^ssh .* receive'", 16 * MB);
    expect(await token()).not.toBe('-');
    // The snapshot the token points at is destroyed; a new one is taken.
    await L.ctl.check(`zfs destroy ${SRC}/big@r1 && zfs snapshot ${SRC}/big@r2`);
    await writeConfig(L, [{ datasets: [{ source: `${SRC}/big`, target: `${T}/big` }], retries: 1, retryDelay: 1 }]);
    const r = await hozoJson(L, 'run', 'nightly');
    expect(r.exitCode, `${r.stderr}\n${JSON.stringify(r.json)}`).toBe(0);
    expect(r.json.datasets[0]).toMatchObject({ result: 'sent', newest: 'r2' });
    expect((await guids(L.box, `${T}/big`)).get('@r2')).toBe((await guids(L.ctl, `${SRC}/big`)).get('@r2'));
  });
});
