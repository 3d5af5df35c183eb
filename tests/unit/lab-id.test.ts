import { describe, expect, it } from 'vitest';
import { LAB_ID } from '../../src/lab/box.js';

describe('zfs-fuse lab ids', () => {
  it('"vm" is never a lab id, so a stale-lab cleanup leaves the OpenZFS VM labs (/tmp/hozo-lab/vm) alone', () => {
    expect(LAB_ID.test('vm')).toBe(false);
    for (const ok of ['e2e', 'repl', 'fleet', 'vm2', 'avm']) expect(LAB_ID.test(ok), ok).toBe(true);
  });
});
