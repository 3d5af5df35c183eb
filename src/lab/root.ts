// The checkout this code runs from, found the same way from the TypeScript sources (tests), from tsc's output
// (dist/src/lab) and from the bundle (dist/bin/hozo, `hozo demo`): the nearest directory above with hozo's package.json.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

function findRoot(from: string): string {
  for (let d = from; ; d = dirname(d)) {
    const pkg = join(d, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: unknown }).name === 'hozo') return d;
      } catch {
        // not ours; keep looking
      }
    }
    if (dirname(d) === d) throw new Error(`no hozo package.json above ${from}`);
  }
}

export const PROJECT_ROOT = findRoot(import.meta.dirname);

/** The programs as they ship (package.json "bin"): the bundles scripts/bundle.mjs writes. */
export const HOZO_BIN = join(PROJECT_ROOT, 'dist', 'bin', 'hozo', 'hozo.js');
export const AGENT_BIN = join(PROJECT_ROOT, 'dist', 'bin', 'agent', 'hozo-agent.js');
