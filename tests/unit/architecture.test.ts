// The import rules (.dependency-cruiser.cjs), checked with dependency-cruiser on the real tree: no cycle anywhere
// (type-only imports included), hozo-agent and the core import only the core, the lab only from `hozo demo`, the
// controller never imports the agent. A fixture tree with one of each violation shows that the check can fail.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const DEPCRUISE = join(ROOT, 'node_modules/.bin/depcruise');
const CONFIG = join(ROOT, '.dependency-cruiser.cjs');

interface Violation {
  readonly rule: { readonly name: string };
  readonly from: string;
  readonly to: string;
  readonly cycle?: readonly ({ name: string } | string)[];
}

async function violations(cwd: string): Promise<Violation[]> {
  const r = await execa(DEPCRUISE, ['--config', CONFIG, '--output-type', 'json', 'src', 'agent'], { cwd, reject: false, timeout: 120_000 });
  expect(r.stdout, r.stderr).not.toBe('');
  const out = JSON.parse(r.stdout) as { summary: { violations: Violation[]; totalCruised: number } };
  expect(out.summary.totalCruised).toBeGreaterThan(0);
  return out.summary.violations;
}

const fixtures: string[] = [];
afterAll(() => {
  for (const d of fixtures) rmSync(d, { recursive: true, force: true });
});

describe('import rules (dependency-cruiser, .dependency-cruiser.cjs)', () => {
  it('the tree has no cycle and keeps the agent, the core and the lab apart', async () => {
    const v = await violations(ROOT);
    expect(v.map((x) => `${x.rule.name}: ${x.from} → ${x.to}`)).toEqual([]);
  }, 120_000);

  it('a fixture with a cycle, an agent importing a job module, the core importing the schema and a command loading the lab fails with each rule', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hozo-arch-'));
    fixtures.push(dir);
    const put = (path: string, text: string) => {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), text);
    };
    put(
      'tsconfig.json',
      JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true }, include: ['src/**/*.ts', 'agent/**/*.ts'] }),
    );
    put('src/job/a.ts', "import type { B } from './b.js';\nexport type A = { b?: B };\n");
    put('src/job/b.ts', "import type { A } from './a.js';\nexport type B = { a?: A };\n");
    put('src/config/schema.ts', 'export const schema = 1;\n');
    put('src/zfs/argv.ts', "import { schema } from '../config/schema.js';\nexport const argv = schema;\n");
    put('agent/main.ts', "import type { A } from '../src/job/a.js';\nimport { argv } from '../src/zfs/argv.js';\nexport const x: A | number = argv;\n");
    put('src/lab/lab.ts', 'export const lab = 1;\n');
    put('src/cli/commands/plan.ts', "export const plan = async () => (await import('../../lab/lab.js')).lab;\n");
    const v = await violations(dir);
    const seen = new Set(v.map((x) => x.rule.name));
    expect([...seen].sort()).toEqual(['agent-imports-only-the-core', 'core-imports-only-the-core', 'lab-only-for-demo', 'no-circular']);
    expect(v.find((x) => x.rule.name === 'agent-imports-only-the-core')?.to).toBe('src/job/a.ts');
  }, 120_000);
});
