import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

// nixpkgs fetches each locked package by its `resolved` URL and checks it against `integrity` (fetchNpmDeps for an
// npmDepsHash, importNpmLock without one); an entry without them cannot be built there. npm leaves `resolved` out
// where omit-lockfile-registry-resolved is set (as in this machine's user config), so the project's .npmrc unsets it.
const repo = join(import.meta.dirname, '..', '..');

describe('package-lock.json (what nixpkgs fetches)', () => {
  const lock = JSON.parse(readFileSync(join(repo, 'package-lock.json'), 'utf8')) as {
    lockfileVersion: number;
    packages: Record<string, { version?: string; resolved?: string; integrity?: string; link?: boolean; name?: string }>;
  };

  it('gives every locked package its registry tarball URL and a sha512 integrity', () => {
    expect(lock.lockfileVersion).toBe(3);
    const entries = Object.entries(lock.packages).filter(([path, m]) => path.includes('node_modules/') && !m.link);
    expect(entries.length).toBeGreaterThan(50);
    const wrong = entries.filter(([path, m]) => {
      const name = m.name ?? path.split('node_modules/').pop()!;
      const base = name.split('/').pop()!;
      return m.resolved !== `https://registry.npmjs.org/${name}/-/${base}-${m.version}.tgz` || !/^sha512-[A-Za-z0-9+/]+=*$/.test(m.integrity ?? '');
    });
    expect(wrong.map(([path]) => path)).toEqual([]);
  });

  it("keeps them when npm rewrites the lock: the project's .npmrc turns omit-lockfile-registry-resolved off", () => {
    const rc = readFileSync(join(repo, '.npmrc'), 'utf8');
    expect(rc).toMatch(/^omit-lockfile-registry-resolved=false$/m);
  });
});
