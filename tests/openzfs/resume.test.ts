// Resumable receives on real OpenZFS: a stream cut off part-way leaves a receive_resume_token on the box; the next run
// resumes it with `zfs send -t` and moves fewer bytes than a restart; holds do not leak. Both ways of dying: the
// stream's ssh killed, and the whole hozo process group killed; ten kills in a row; stale tokens discarded. On agent
// boxes and on plain-SSH boxes (root over SSH).
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { VM_HOZO, type VmLab } from '../../src/lab/vm/lab.js';
import { AGENT_ROOT, SRC, guids, hozoJson, labOrSkip, randomFile, reset, shapeLink, skipReason, writeConfig } from './helpers.js';

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

  /** Starts `hozo run nightly` in the background on ctl, in its own process group (/tmp/run.pgid). */
  async function startRun(): Promise<void> {
    await L.ctl.check(
      'rm -f /tmp/run.json; setsid nohup sh -c "echo \\$\\$ > /tmp/run.pgid; exec ' +
        `${VM_HOZO} --config /etc/hozo/config.yaml run nightly --json > /tmp/run.json 2>/tmp/run.err" </dev/null >/dev/null 2>&1 &`,
    );
  }

  /** Starts the run; once the box's `zfs receive` has read at least `minBytes` of the stream, runs `kill` on ctl.
   *  The link is shaped to 40 Mbit/s meanwhile: the agent puts mbuffer (bufferSize, larger than the stream) in front
   *  of the box's zfs receive, and on an unshaped link a receive slowed by a loaded host had the whole stream
   *  buffered before it had read 16 MiB, so the kill cut nothing and left no token (a clean-clone CI run,
   *  2026-12-03). At 5 MB/s the buffer holds only what the receive has not yet caught up with. */
  async function interrupt(kill: string, minBytes: number): Promise<void> {
    await shapeLink(L, 40, () => interruptShaped(kill, minBytes));
  }

  async function interruptShaped(kill: string, minBytes: number): Promise<void> {
    await startRun();
    // Progress on the box: what its `zfs receive` has read of the stream (/proc/<pid>/io).
    const deadline = Date.now() + 180_000;
    let seen = 0;
    while (Date.now() < deadline) {
      const out = await L.box.sh(`for p in $(pgrep -x zfs); do grep -qa receive /proc/$p/cmdline && awk '/^rchar/ {print $2}' /proc/$p/io; done`);
      seen = Number(out.stdout.trim().split('\n')[0] || 0);
      if (seen >= minBytes) break;
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(seen, 'the stream reached the box before the kill').toBeGreaterThanOrEqual(minBytes);
    await L.ctl.check(kill);
    await afterKill();
  }

  /** Starts the run; `seconds` after the box's `zfs receive` has read its first MiB, runs `kill` on ctl. Used on
   *  plain-SSH boxes over a link shaped with shapeLink, where a large byte threshold let the kill land after the
   *  stream had ended (the kernel's buffers still deliver ~10 MB), and a bare delay after the receive started could
   *  land before any byte arrived (a clean-clone CI run: no partial state, no token). */
  async function interruptAfter(kill: string, seconds: number): Promise<'killed' | 'finished'> {
    await startRun();
    await L.box.check("for i in $(seq 1 600); do pgrep -f '^zfs receive' >/dev/null && exit 0; sleep 0.2; done; exit 1", { timeoutMs: 180_000 });
    await L.box.check(
      `for i in $(seq 1 300); do for p in $(pgrep -x zfs); do grep -qa receive /proc/$p/cmdline && [ "$(awk '/^rchar/ {print $2}' /proc/$p/io)" -ge ${1024 * 1024} ] && exit 0; done; sleep 0.2; done; exit 1`,
      { timeoutMs: 180_000 },
    );
    await new Promise((r) => setTimeout(r, seconds * 1000));
    // Retried for a few seconds: the kill may fall between two steps of the run (no ssh receive for a moment). A run
    // that has already ended (its process group gone, its report written) is 'finished': on a loaded host the wait
    // and the ssh round trips before the kill took longer than the stream (a clean-clone CI run, 2026-12-07).
    const landed = await L.ctl.sh(
      `for i in $(seq 1 100); do { ${kill}; } 2>/dev/null && exit 0; ` +
        '[ -s /tmp/run.json ] && ! pgrep -g "$(cat /tmp/run.pgid)" >/dev/null && exit 3; sleep 0.1; done; exit 1',
    );
    if (landed.exitCode === 3) return 'finished';
    if (landed.exitCode !== 0) throw new Error(`the kill (${kill}) found nothing to kill for 10 s and the run had not ended: ${landed.stderr}`);
    await afterKill();
    return 'killed';
  }

  async function afterKill(): Promise<void> {
    // The run ends (failed) by itself; wait for its process to go.
    await L.ctl.check('for i in $(seq 1 120); do pgrep -g "$(cat /tmp/run.pgid)" >/dev/null || exit 0; sleep 0.5; done; exit 1');
    // … and the box's receive, which saves the partial state (the token) only once it has seen the stream end.
    await L.box.check("for i in $(seq 1 240); do pgrep -f '^zfs receive' >/dev/null || exit 0; sleep 0.5; done; exit 1");
  }

  /** Plain SSH: the stream's ssh is a ControlMaster client that handed its pipe to the master, so killing it does not
   *  cut the stream; killing the master (the connection) does. */
  const DROP_CONNECTION = "pkill -KILL -f '^ssh .*ControlMaster=yes'";
  /** The box as a plain-SSH target: root's key, plain zfs, no agent. */
  const PLAIN_SSH = { agent: false, user: 'root' };

  const token = () => L.box.check(`zfs get -H -o value receive_resume_token ${T}/big`);

  for (const [what, kill] of [
    ["the stream's ssh is killed", "pkill -KILL -f '^ssh .* receive'"],
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

  it('ten kills in a row on a plain-SSH box (its ssh connection, or the whole run, in turn): nothing lost, the target consistent after each', async () => {
    const K = `${T}/k`;
    await L.ctl.check(`zfs create ${SRC}/k`);
    await writeConfig(L, [{ datasets: [{ source: `${SRC}/k`, target: K }] }], PLAIN_SSH);
    const kills = [DROP_CONNECTION, 'kill -KILL -- -"$(cat /tmp/run.pgid)"'];
    const tokens: boolean[] = [];
    const finished: number[] = [];
    for (let trial = 1; trial <= 10; trial++) {
      // 24 MiB at 24 Mbit/s: the stream lasts ~8 s; the kill comes 1 s after the box's receive read its first MiB.
      await randomFile(L, `/tank/src/k/f${trial}.bin`, 24);
      await L.ctl.check(`zfs snapshot ${SRC}/k@k${trial}`);
      if ((await shapeLink(L, 24, () => interruptAfter(kills[trial % 2]!, 1))) === 'finished') finished.push(trial);
      // Consistent: every snapshot on the box is the source's (same guid), in order.
      const [src, dst] = await Promise.all([guids(L.ctl, `${SRC}/k`), guids(L.box, K)]);
      expect([...src.keys()].slice(0, dst.size), `trial ${trial}`).toEqual([...dst.keys()]);
      for (const [name, guid] of dst) expect(src.get(name), `trial ${trial} ${name}`).toBe(guid);
      // Many cuts leave a token (counted below), not all: a kill between two steps of the run, before the next receive
      // had begun, leaves none, and in a loaded CI run (2026-12-02) every whole-run kill left one while no dropped
      // connection did (in an earlier run some did; why they differ under load is not established). The target is
      // consistent either way (asserted above), and the next run completes it (below).
      tokens.push(!/^(-|none)$/.test(await L.box.check(`zfs get -H -o value receive_resume_token ${K} 2>/dev/null || echo none`)));
      expect(
        await L.ctl.check(`zfs list -H -o name -t snapshot -r ${SRC}/k | xargs -n1 zfs holds -H | grep -vc hozo:nightly || true`),
        `trial ${trial}: no stray hold`,
      ).toBe('0');
    }
    // A run that ended before its kill landed is still checked for consistency above; at most two of ten may.
    expect(finished.length, `trials whose run ended before the kill: ${finished.join(' ')}`).toBeLessThanOrEqual(2);
    expect(tokens.filter(Boolean).length, `resume tokens left by trials 1-10: ${tokens.join(' ')}`).toBeGreaterThanOrEqual(4);
    const r = await hozoJson(L, 'run', 'nightly');
    expect(r.exitCode, `${r.stderr}\n${JSON.stringify(r.json.datasets)}`).toBe(0);
    if (tokens[9]) expect(r.json.datasets[0].plan).toMatch(/resume/);
    const [src, dst] = await Promise.all([guids(L.ctl, `${SRC}/k`), guids(L.box, K)]);
    expect(dst).toEqual(src);
    expect(await L.box.check(`zfs get -H -o value receive_resume_token ${K}`)).toBe('-');
    expect(await L.ctl.check(`zfs holds -H ${SRC}/k@k10 | cut -f2`)).toBe('hozo:nightly');
  });

  it('a stale token on a plain-SSH box is discarded with zfs receive -A and the dataset is planned normally', async () => {
    await L.ctl.check(`zfs create ${SRC}/big`);
    // Bigger than what the kernel's socket buffers still deliver after the connection's process is killed (~10 MB).
    await randomFile(L, '/tank/src/big/blob.bin', 48);
    await L.ctl.check(`zfs snapshot ${SRC}/big@r1`);
    await writeConfig(L, [{ datasets: [{ source: `${SRC}/big`, target: `${T}/big` }] }], PLAIN_SSH);
    // This test is about the stale token, not the cut (the tests above are): where the kill landed too late (the
    // stream whole) or too early (nothing of it saved) — it happened once in a full run of this file — the target
    // is removed and the cut tried again, at most three times.
    let tok = '-';
    for (let i = 0; i < 3 && tok === '-'; i++) {
      if (i > 0) await L.box.check(`zfs destroy -r ${T}/big 2>/dev/null; true`);
      await shapeLink(L, 40, () => interruptAfter(DROP_CONNECTION, 1.5));
      tok = await L.box.check(`zfs get -H -o value receive_resume_token ${T}/big 2>/dev/null || echo -`);
    }
    expect(tok).not.toBe('-');
    await L.ctl.check(`zfs destroy ${SRC}/big@r1 && zfs snapshot ${SRC}/big@r2`);
    await writeConfig(L, [{ datasets: [{ source: `${SRC}/big`, target: `${T}/big` }], retries: 1, retryDelay: 1 }], PLAIN_SSH);
    const r = await hozoJson(L, 'run', 'nightly');
    expect(r.exitCode, `${r.stderr}\n${JSON.stringify(r.json)}`).toBe(0);
    expect(r.json.datasets[0]).toMatchObject({ result: 'sent', newest: 'r2' });
    expect((await guids(L.box, `${T}/big`)).get('@r2')).toBe((await guids(L.ctl, `${SRC}/big`)).get('@r2'));
  });
});
