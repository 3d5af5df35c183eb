// The stored probe per host: used only for the same endpoint, within its age, with a fingerprint that names zfs.
import { chmodSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CapabilityCache, FINGERPRINT_SCRIPT, MAX_AGE_MS, usableFingerprint } from '../../src/zfs/capability-cache.js';
import { LocalRunner } from '../../src/transport/local.js';
import { PROBE_SECTIONS } from '../../src/zfs/capabilities.js';

/** A probe output with every section the current PROBE_SCRIPT writes (empty ones). */
const PROBE = PROBE_SECTIONS.map((n) => `@@ ${n}\n`).join('');

const FP = '/usr/sbin/zfs 399680 1679577893 15884301\n/usr/sbin/zpool 428064 1679577893 15884303\n/usr/sbin/zfs\n/usr/sbin/zpool\n';

describe('CapabilityCache', () => {
  let dir: string;
  let now = 1_800_000_000_000;
  const clock = () => now;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'hozo-cc-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('stores and returns the probe for the same host and endpoint', () => {
    const c = new CapabilityCache(dir, clock);
    expect(c.get('box', 'root@10.0.0.2:22')).toBeUndefined();
    expect(c.put('box', 'root@10.0.0.2:22', FP, PROBE)).toBe(true);
    expect(c.get('box', 'root@10.0.0.2:22')).toEqual({ fingerprint: FP, probe: PROBE, probedAt: now, endpoint: 'root@10.0.0.2:22' });
    expect(c.get('box', 'root@10.0.0.3:22')).toBeUndefined();
    expect(c.get('other', 'root@10.0.0.2:22')).toBeUndefined();
  });

  it('forgets a probe an older hozo stored without a section this one reads (here: without the cpu section)', () => {
    const c = new CapabilityCache(dir, clock);
    expect(PROBE_SECTIONS).toContain('cpu');
    c.put('box', 'e', FP, PROBE.replace('@@ cpu\n', ''));
    expect(c.get('box', 'e')).toBeUndefined();
    c.put('box', 'e', FP, PROBE);
    expect(c.get('box', 'e')?.probe).toBe(PROBE);
  });

  it('forgets an entry older than its maximum age, or from the future', () => {
    const c = new CapabilityCache(dir, clock);
    c.put('box', 'e', FP, PROBE);
    expect(c.get('box', 'e')).toBeDefined();
    now += MAX_AGE_MS + 1;
    expect(c.get('box', 'e')).toBeUndefined();
    now -= 2 * MAX_AGE_MS;
    expect(c.get('box', 'e')).toBeUndefined();
  });

  it('ignores a damaged file and never stores a fingerprint without zfs', () => {
    const c = new CapabilityCache(dir, clock);
    mkdirSync(join(dir, 'capabilities'));
    writeFileSync(join(dir, 'capabilities', 'box.json'), '{"fingerprint": 3');
    expect(c.get('box', 'e')).toBeUndefined();
    expect(c.put('box', 'e', '/usr/bin/mbuffer 1 2 3\n', 'p')).toBe(false);
    expect(c.get('box', 'e')).toBeUndefined();
  });

  it('host names cannot leave the directory', () => {
    const c = new CapabilityCache(dir, clock);
    expect(c.put('../evil', 'e', FP, 'p')).toBe(true);
    expect(readFileSync(join(dir, 'capabilities', '..%2Fevil.json'), 'utf8')).toContain('"endpoint": "e"');
  });

  it('a state directory that cannot be written is not an error', () => {
    if (process.getuid?.() === 0) {
      // root writes anywhere; use a path under a regular file instead
      writeFileSync(join(dir, 'file'), '');
      expect(new CapabilityCache(join(dir, 'file'), clock).put('box', 'e', FP, 'p')).toBe(false);
    } else {
      chmodSync(dir, 0o500);
      expect(new CapabilityCache(dir, clock).put('box', 'e', FP, 'p')).toBe(false);
    }
    expect(new CapabilityCache(undefined, clock).put('box', 'e', FP, 'p')).toBe(false);
  });

  it('the fingerprint script runs in plain sh and names the programs it finds (real sh, stat, readlink)', async () => {
    const r = await new LocalRunner().run(['sh', '-c', FINGERPRINT_SCRIPT]);
    expect(r.exitCode).toBe(0);
    const lines = r.stdout.split('\n');
    // sh itself is surely on PATH in the same way the tools are; pv and mbuffer are installed by scripts/setup.sh.
    for (const tool of ['pv', 'mbuffer']) expect(lines.some((l) => new RegExp(`^\\S*/${tool} \\d+ \\d+ \\d+$`).test(l))).toBe(true);
    expect(usableFingerprint(r.stdout)).toBe(/\/zfs \d+/.test(r.stdout));
    const again = await new LocalRunner().run(['sh', '-c', FINGERPRINT_SCRIPT]);
    expect(again.stdout).toBe(r.stdout);
  });
});
