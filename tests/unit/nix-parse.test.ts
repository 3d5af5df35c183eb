// Every .nix file in the repository parses (`nix-instantiate --parse`). Runs wherever
// nix-instantiate is installed (Debian: apt-get install nix-bin), and skips loudly elsewhere.
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const repo = resolve(import.meta.dirname, '../..');
const SKIP_DIRS = new Set(['.git', 'node_modules', 'dist', 'coverage', '.lab', 'result']);

function haveNix(): boolean {
  return spawnSync('nix-instantiate', ['--version'], { stdio: 'ignore' }).status === 0;
}

function nixFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) {
      if (!SKIP_DIRS.has(e.name)) out.push(...nixFiles(join(dir, e.name)));
    } else if (e.isFile() && e.name.endsWith('.nix')) {
      out.push(join(dir, e.name));
    }
  }
  return out;
}

const nix = haveNix();
if (!nix) console.warn('SKIP: nix-instantiate not found — .nix files were not parsed (apt-get install -y nix-bin).');

describe.skipIf(!nix)('.nix files', () => {
  const files = nixFiles(repo).map((f) => relative(repo, f));

  it('include the flake and both modules', () => {
    expect(files).toEqual(expect.arrayContaining(['flake.nix', 'modules/controller.nix', 'modules/agent.nix', 'nix/package.nix']));
  });

  it.each(files)('%s parses', (file) => {
    expect(() => execFileSync('nix-instantiate', ['--parse', join(repo, file)], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' })).not.toThrow();
  });
});
