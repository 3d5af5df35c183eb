// The formatter and linter (Biome, biome.json) on the real tree: `biome ci` — formatting and lint rules together —
// exits 0 on src/, agent/, tests/, bench/ and scripts/. A fixture file, misformatted and with a lint error, shows the
// same check fails.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIOME = join(ROOT, 'node_modules/.bin/biome');
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('formatter and linter (Biome, biome.json)', () => {
  it('biome ci passes on the tree', async () => {
    const r = await execa(BIOME, ['ci', '--colors=off', '.'], { cwd: ROOT, reject: false, timeout: 120_000 });
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(`${r.stdout}${r.stderr}`).toMatch(/Checked [1-9][0-9]+ files/);
  }, 120_000);

  it('the same check fails on a misformatted file with a lint error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hozo-lint-'));
    dirs.push(dir);
    const config = JSON.parse(readFileSync(join(ROOT, 'biome.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(dir, 'biome.json'), JSON.stringify({ ...config, $schema: undefined, vcs: { enabled: false }, files: { includes: ['**/*.ts'] } }));
    writeFileSync(join(dir, 'bad.ts'), 'import { join } from "node:path";\nexport const x = [1,2 ,3];\n');
    const r = await execa(BIOME, ['ci', '--colors=off', '.'], { cwd: dir, reject: false, timeout: 120_000 });
    const out = `${r.stdout}\n${r.stderr}`;
    expect(r.exitCode).not.toBe(0);
    expect(out).toMatch(/format/);
    expect(out).toMatch(/noUnusedImports/);
  }, 120_000);
});
