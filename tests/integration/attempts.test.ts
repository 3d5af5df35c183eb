// `hozo run --attempts N --attempt-delay D` (what the NixOS unit runs instead of systemd restarts): a failed run is
// run again after the delay, up to N runs; config errors are not retried; an interrupt ends the wait at once.
// The "box" is a closed port on loopback (nothing is woken or sent anywhere).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hozo, startHozo, writeConfig } from '../helpers/hozo.js';

const dir = mkdtempSync(join(tmpdir(), 'hozo-attempts-'));
const config = writeConfig(dir, {
  stateDirectory: join(dir, 'state'),
  hosts: { box: { address: '127.0.0.1', port: 1, wake: { method: 'none' }, readyTimeout: 1, trust: 'trusted' } },
  jobs: [{ name: 'j', host: 'box', retries: 0, datasets: [{ source: 'tank/a', target: 'backup/a' }] }],
});

describe('hozo run --attempts', () => {
  it("runs an unreachable job again after the delay, up to N runs, and exits with the last run's code (3)", async () => {
    const t0 = Date.now();
    const r = await hozo(config, 'run', 'j', '--attempts', '3', '--attempt-delay', '1s');
    const took = (Date.now() - t0) / 1000;
    expect(r.exitCode, r.stderr).toBe(3);
    expect(r.stderr).toContain('run 1 of 3 failed (exit 3); the next in 1 s (--attempt-delay)');
    expect(r.stderr).toContain('run 2 of 3 failed (exit 3); the next in 1 s (--attempt-delay)');
    expect(r.stderr).not.toContain('run 3 of 3 failed');
    expect(took).toBeGreaterThanOrEqual(2);
  });

  it('a SIGTERM during the wait ends it at once: exit 143, no further run', async () => {
    const p = startHozo(config, ['run', 'j', '--attempts', '5', '--attempt-delay', '10m']);
    let err = '';
    p.stderr?.on('data', (b: Buffer) => (err += b.toString()));
    for (let i = 0; i < 200 && !err.includes('run 1 of 5 failed'); i++) await new Promise((r) => setTimeout(r, 100));
    expect(err).toContain('run 1 of 5 failed');
    const t0 = Date.now();
    p.kill('SIGTERM');
    const r = await p;
    expect(r.exitCode).toBe(143);
    expect((Date.now() - t0) / 1000).toBeLessThan(10);
    expect(String(r.stderr)).not.toContain('run 2 of 5 failed');
  });

  it('refuses bad values (exit 2) and does not retry a dry run', async () => {
    for (const args of [
      ['--attempts', '0'],
      ['--attempts', '101'],
      ['--attempts', 'x'],
      ['--attempt-delay', 'soon'],
      ['--attempt-delay', '2d'],
      ['--attempts', '2', '--dry-run'],
    ]) {
      const r = await hozo(config, 'run', 'j', ...args);
      expect(r.exitCode, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
      // One line that points at --help, as commander's own usage errors end.
      expect(r.stderr, r.stderr).toMatch(/^error: .*\n(hint: .*\n)?\(add --help for usage\)\n?$/);
    }
  });
});
