// Progress on real OpenZFS: with the sender's `zfs send -nP` estimate, a terminal sees a live line with percent and
// ETA (hozo run inside tmux in the controller VM, read with capture-pane); without a terminal (journald, a pipe) the
// output has plain lines only — no carriage returns, no escape sequences.
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { VM_HOZO, type VmLab } from '../../src/lab/vm/lab.js';
import { AGENT_ROOT, SRC, hozoJson, labOrSkip, randomFile, reset, shapeLink, skipReason, writeConfig } from './helpers.js';

const lab: VmLab | undefined = labOrSkip();
if (lab === undefined) console.warn(`SKIP: tests/openzfs/progress.test.ts: ${skipReason()}`);

describe.skipIf(lab === undefined)('progress with percent and ETA from the send -nP estimate (OpenZFS VMs)', () => {
  const L = lab!;
  const T = `${AGENT_ROOT}/src`;

  beforeEach(async () => {
    await reset(L);
    await L.ctl.check(`zfs create ${SRC}/p`);
    // 32 MiB over a link shaped to 40 Mbit/s: about 7 s of transfer to watch.
    await randomFile(L, '/tank/src/p/blob.bin', 32);
    await L.ctl.check(`zfs snapshot ${SRC}/p@p1`);
    await writeConfig(L, [{ datasets: [{ source: `${SRC}/p`, target: `${T}/p` }] }]);
  });
  afterAll(async () => {
    await L.ctl.sh('tmux kill-server 2>/dev/null');
    await reset(L).catch(() => undefined);
  });

  it('on a terminal (tmux): a live line with bytes of the estimate, percent, rate and ETA', async () => {
    const screens: string[] = [];
    await shapeLink(L, 40, async () => {
      await L.ctl.check(
        `tmux kill-server 2>/dev/null; tmux new-session -d -s p -x 160 -y 12 "${VM_HOZO} --config /etc/hozo/config.yaml run nightly; echo EXIT=\\$?; sleep 60"`,
      );
      for (let i = 0; i < 300; i++) {
        const screen = await L.ctl.check('tmux capture-pane -p -t p');
        screens.push(screen);
        if (/EXIT=\d+/.test(screen)) break;
        await new Promise((r) => setTimeout(r, 300));
      }
    });
    const last = screens[screens.length - 1]!;
    expect(last, last).toMatch(/EXIT=0/);
    const live = screens.flatMap((s) => s.split('\n')).filter((l) => /\bof [\d.]+ MiB \(\d+%\).*\/s ETA \d+:\d\d/.test(l));
    expect(live.length, `no progress line with percent and ETA in ${screens.length} screens:\n${last}`).toBeGreaterThan(0);
    const percents = [...new Set(live.map((l) => Number(/\((\d+)%\)/.exec(l)![1])))];
    expect(
      percents.some((p) => p > 0 && p < 100),
      `percents seen: ${percents.join(' ')}`,
    ).toBe(true);
  });

  it('without a terminal: plain lines only (no carriage return, no escape sequence)', async () => {
    const r = await shapeLink(L, 40, () => hozoJson(L, 'run', 'nightly'));
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/[\r\u001b]/);
    expect(r.stderr).toMatch(/tank\/src\/p: 1 snapshot\(s\), 32\.\d MiB in/);
  });
});
