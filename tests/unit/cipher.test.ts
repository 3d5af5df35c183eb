// The SSH cipher follows both ends' CPUs: AES-GCM first only when both have AES instructions (cipher.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AES_FIRST, CHACHA_FIRST, cipherPreference, cpuinfoHasAes, rememberAes, rememberedAes } from '../../src/transport/cipher.js';
import { baseSshOptions } from '../../src/transport/ssh.js';
import { parseCapabilities } from '../../src/zfs/capabilities.js';
import { readFileSync } from 'node:fs';

const dir = mkdtempSync(join(tmpdir(), 'hozo-cipher-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('cipher by CPU', () => {
  it('reads AES from x86 flags and arm64 Features, not from other words', () => {
    expect(cpuinfoHasAes('processor\t: 0\nflags\t\t: fpu sse2 aes avx\n')).toBe(true);
    expect(cpuinfoHasAes('processor\t: 0\nflags\t\t: fpu sse2 avx\n')).toBe(false);
    expect(cpuinfoHasAes('Features\t: fp asimd evtstrm aes pmull sha1\n')).toBe(true);
    expect(cpuinfoHasAes('Features\t: fp asimd evtstrm crc32 cpuid\n')).toBe(false); // Raspberry Pi 4
    expect(cpuinfoHasAes('model name\t: aes-less cpu\nflags\t: fpu\n')).toBe(false);
  });

  it('prefers AES-GCM only when both ends have AES; an unknown box keeps the old default', () => {
    expect(cipherPreference(true, true)).toBe(AES_FIRST);
    expect(cipherPreference(true, undefined)).toBe(AES_FIRST);
    expect(cipherPreference(true, false)).toBe(CHACHA_FIRST);
    expect(cipherPreference(false, true)).toBe(CHACHA_FIRST);
  });

  it('remembers the box answer per host; a user Ciphers= option wins', () => {
    expect(rememberedAes(dir, 'box')).toBeUndefined();
    rememberAes(dir, 'box', false);
    expect(rememberedAes(dir, 'box')).toBe(false);
    expect(rememberedAes(dir, 'other')).toBeUndefined();
    const host = { address: 'b', port: 22, user: 'hozo', sshOptions: ['Ciphers=aes256-ctr'] } as never;
    const o = baseSshOptions(host, 10, CHACHA_FIRST);
    expect(o.filter((x) => x.startsWith('Ciphers='))).toEqual(['Ciphers=aes256-ctr']);
    const plain = baseSshOptions({ address: 'b', port: 22, user: 'hozo', sshOptions: [] } as never, 10, CHACHA_FIRST);
    expect(plain).toContain(`Ciphers=${CHACHA_FIRST}`);
  });

  it('the capability probe reports the CPU when its output has a cpu section, and nothing for older output', () => {
    const old = readFileSync(join(import.meta.dirname, '../fixtures/zfs/zfs-fuse/probe.txt'), 'utf8');
    expect(parseCapabilities(old).aes).toBeUndefined();
    expect(parseCapabilities(old.replace('@@ end', '@@ cpu\naes\n@@ end')).aes).toBe(true);
    expect(parseCapabilities(old.replace('@@ end', '@@ cpu\n@@ end')).aes).toBe(false);
  });
});
