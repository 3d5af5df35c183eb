// What may cross to an untrusted box (src/job/encryption.ts): encrypted datasets raw, unencrypted ones refused unless
// allowed; the raw copy checked afterwards; config check's plaintext warnings. Pure: no ZFS here (the OpenZFS suite
// has the real thing, tests/openzfs/encryption.test.ts).
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/load.js';
import { plaintextWarnings } from '../../src/cli/commands/config-check.js';
import { crossingOf, verifyEncrypted } from '../../src/job/encryption.js';
import type { DatasetPlan } from '../../src/planner/types.js';
import type { Dataset } from '../../src/zfs/types.js';

const config = (trust?: 'trusted' | 'untrusted', allowPlaintext?: boolean) =>
  validateConfig({
    hosts: { box: { address: '10.0.0.2', ...(trust ? { trust } : {}) } },
    jobs: [
      { name: 'n', host: 'box', datasets: [{ source: 'tank/data', target: 'backup/data', recursive: true, ...(allowPlaintext ? { allowPlaintext } : {}) }] },
    ],
  });
const plan = (source: string) => ({ source, target: source.replace('tank/', 'backup/'), action: 'send' }) as unknown as DatasetPlan;
const ds = (name: string, extra: Partial<Dataset> = {}): Dataset => ({ name, type: 'filesystem', snapshots: [], ...extra });
const inv = (...d: Dataset[]) => new Map(d.map((x) => [x.name, x]));

describe('crossing to the box', () => {
  it('untrusted is the default: an encrypted dataset goes raw', () => {
    const c = config();
    expect(c.hosts['box']!.trust).toBe('untrusted');
    expect(crossingOf(c, c.jobs[0]!, plan('tank/data/a'), inv(ds('tank/data/a', { encryption: 'aes-256-gcm', encryptionRoot: 'tank/data' })))).toEqual({
      raw: true,
    });
  });

  it('an unencrypted dataset is refused, saying which one and the three ways out; zfs-fuse (no encryption) likewise', () => {
    const c = config();
    for (const d of [ds('tank/data/a', { encryption: 'off' }), ds('tank/data/a')]) {
      const r = crossingOf(c, c.jobs[0]!, plan('tank/data/a'), inv(d));
      expect(r.refused?.code).toBe('PLAINTEXT_REFUSED');
      expect(r.refused?.message).toMatch(/^tank\/data\/a .* host "box" is untrusted: nothing of it was sent/);
      expect(r.refused?.hint).toMatch(/encryption=on.*trust: trusted.*allowPlaintext: true/);
    }
  });

  it('allowPlaintext on the dataset entry (covering its children) or a trusted host lets it through in the clear', () => {
    const allowed = config(undefined, true);
    expect(crossingOf(allowed, allowed.jobs[0]!, plan('tank/data/a/b'), inv(ds('tank/data/a/b', { encryption: 'off' })))).toEqual({ raw: false });
    const trusted = config('trusted');
    expect(crossingOf(trusted, trusted.jobs[0]!, plan('tank/data/a'), inv(ds('tank/data/a', { encryption: 'aes-256-gcm' })))).toEqual({ raw: false });
  });

  it('config check warns about every job that sends plaintext off-site', () => {
    expect(plaintextWarnings(config())).toEqual([]);
    expect(plaintextWarnings(config('trusted'))[0]).toMatch(/job "n" sends plaintext off-site: host "box" is trusted/);
    expect(plaintextWarnings(config(undefined, true))[0]).toMatch(/sends tank\/data in the clear to untrusted host "box"/);
  });
});

describe('the raw copy on the box', () => {
  const src = ds('tank/data/a', { encryption: 'aes-256-gcm', encryptionRoot: 'tank/data', keyStatus: 'available' });
  it('is fine encrypted the same way, key unavailable, its own or the mapped encryption root', () => {
    expect(verifyEncrypted(src, ds('backup/data/a', { encryption: 'aes-256-gcm', encryptionRoot: 'backup/data/a', keyStatus: 'unavailable' }))).toBeUndefined();
    expect(verifyEncrypted(src, ds('backup/data/a', { encryption: 'aes-256-gcm', encryptionRoot: 'backup/data', keyStatus: 'unavailable' }))).toBeUndefined();
  });
  it('fails when its key is loaded on the box, it is not encrypted, or its root is elsewhere', () => {
    const e = verifyEncrypted(src, ds('backup/data/a', { encryption: 'aes-256-gcm', encryptionRoot: 'backup/data/a', keyStatus: 'available' }));
    expect(e?.code).toBe('ENCRYPTION_MISMATCH');
    expect(e?.message).toMatch(/key is available on the box/);
    expect(verifyEncrypted(src, ds('backup/data/a', { encryption: 'off', keyStatus: undefined }))?.message).toMatch(
      /encryption is off.*key is of unknown status.*encryption root is unknown/,
    );
    expect(verifyEncrypted(src, ds('backup/data/a', { encryption: 'aes-256-gcm', encryptionRoot: 'backup/other', keyStatus: 'unavailable' }))?.message).toMatch(
      /encryption root is backup\/other/,
    );
  });
});
