#!/usr/bin/env node
// `npm run build`, after tsc: hozo and hozo-agent as they ship (package.json "bin"), each one ES module bundle of
// this project's own code (dist/bin/hozo/hozo.js, dist/bin/agent/hozo-agent.js) with a chunk per lazily loaded part;
// the dependencies stay packages in node_modules. Why: node loads each of tsc's ~70 small modules on a run's path one
// by one, which on a slow CPU (a Raspberry Pi, the OpenZFS lab's emulated VMs) is seconds of every run, and the agent
// starts twice per run on the box (docs/bench.md, "Where hozo's time goes"). esbuild (a devDependency) bundles tsc's
// output, so what is bundled is what was type-checked; tests and the labs run the bundles.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'bin');
rmSync(out, { recursive: true, force: true });

const common = {
  absWorkingDir: root,
  bundle: true,
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  chunkNames: 'chunks/[name]-[hash]',
  legalComments: 'none',
  logLevel: 'warning',
};
// Apart, so neither program loads the other's code.
await build({ ...common, entryPoints: { hozo: 'dist/src/cli/main.js' }, outdir: join(out, 'hozo') });
await build({ ...common, entryPoints: { 'hozo-agent': 'dist/agent/main.js' }, outdir: join(out, 'agent') });
