// Compares two mounted trees (the source snapshot's clone and the copy received back from the box): every path's
// type, size, mode and symlink target, and the SHA-256 of every regular file or of a seeded sample of them.
// Bounded: files are hashed one at a time as streams, and at most MAX_MISMATCHES problems are kept.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';

export interface Mismatch {
  /** Relative to the dataset's root. */
  readonly path: string;
  readonly problem: string;
}

export interface TreeComparison {
  /** Paths in the source tree (files, directories, links). */
  readonly entries: number;
  /** Regular files whose content was hashed and compared. */
  readonly filesChecked: number;
  readonly bytesChecked: number;
  readonly mismatches: Mismatch[];
  /** More problems than were kept. */
  readonly truncated: boolean;
}

const MAX_MISMATCHES = 50;

interface Entry {
  readonly kind: 'file' | 'dir' | 'link' | 'other';
  readonly size: number;
  readonly mode: number;
}

/** Every path below `root` (not `.zfs`), iteratively, with its kind, size and permission bits. */
async function walk(root: string): Promise<Map<string, Entry>> {
  const out = new Map<string, Entry>();
  const stack = [''];
  while (stack.length > 0) {
    const rel = stack.pop()!;
    for (const name of (await readdir(join(root, rel))).sort()) {
      if (rel === '' && name === '.zfs') continue;
      const p = rel === '' ? name : `${rel}/${name}`;
      const st = await lstat(join(root, p));
      const kind = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : 'other';
      out.set(p, { kind, size: kind === 'file' ? st.size : 0, mode: st.mode & 0o7777 });
      if (kind === 'dir') stack.push(p);
    }
  }
  return out;
}

function sha256(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path, { highWaterMark: 1 << 20 })
      .on('data', (b) => h.update(b))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}

/** A small seeded generator (mulberry32): the same seed picks the same files. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` of `items` chosen with `seed` (all when n is undefined or ≥ the count), in their original order. */
export function sample<T>(items: readonly T[], n: number | undefined, seed: number): T[] {
  if (n === undefined || n >= items.length) return [...items];
  const rand = seeded(seed);
  const idx = items.map((_, i) => i);
  for (let i = idx.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [idx[i], idx[j]] = [idx[j]!, idx[i]!];
  }
  return idx
    .slice(0, n)
    .sort((a, b) => a - b)
    .map((i) => items[i]!);
}

export async function compareTrees(source: string, restored: string, opts: { sampleFiles?: number; seed: number }): Promise<TreeComparison> {
  const [a, b] = await Promise.all([walk(source), walk(restored)]);
  const mismatches: Mismatch[] = [];
  let truncated = false;
  const add = (path: string, problem: string) => {
    if (mismatches.length < MAX_MISMATCHES) mismatches.push({ path, problem });
    else truncated = true;
  };
  for (const [p, e] of a) {
    const r = b.get(p);
    if (r === undefined) add(p, 'missing in the backup');
    else if (r.kind !== e.kind) add(p, `is a ${r.kind} in the backup, a ${e.kind} in the source`);
    else if (e.kind === 'file' && r.size !== e.size) add(p, `size ${r.size} in the backup, ${e.size} in the source`);
    else if (r.mode !== e.mode) add(p, `mode ${r.mode.toString(8)} in the backup, ${e.mode.toString(8)} in the source`);
    else if (e.kind === 'link' && (await readlink(join(source, p))) !== (await readlink(join(restored, p)))) add(p, 'symlink target differs');
  }
  for (const p of b.keys()) if (!a.has(p)) add(p, 'in the backup but not in the source');
  const files = [...a].filter(([p, e]) => e.kind === 'file' && b.get(p)?.kind === 'file' && b.get(p)?.size === e.size).map(([p]) => p);
  let bytes = 0;
  const chosen = sample(files, opts.sampleFiles, opts.seed);
  for (const p of chosen) {
    let problem: string | undefined;
    try {
      const [x, y] = await Promise.all([sha256(join(source, p)), sha256(join(restored, p))]);
      if (x !== y) problem = `content differs (sha256 ${y.slice(0, 16)}… in the backup, ${x.slice(0, 16)}… in the source)`;
    } catch (e) {
      problem = `could not be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
    }
    if (problem !== undefined) add(p, problem);
    bytes += a.get(p)!.size;
  }
  return { entries: a.size, filesChecked: chosen.length, bytesChecked: bytes, mismatches, truncated };
}
