// node dist/src/man/build.js DIR: writes the man pages (src/man/man.ts) into DIR (npm run build: dist/man).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { manPages } from './man.js';

const dir = process.argv[2] ?? 'dist/man';
mkdirSync(dir, { recursive: true });
for (const p of manPages()) writeFileSync(join(dir, p.file), p.text);
