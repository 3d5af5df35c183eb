// Reading a config file so that no file can hang, exhaust or crash the reader: only a regular file (a FIFO with no
// writer, /dev/zero, a directory or a socket is refused before a byte is read; O_NONBLOCK keeps even the open from
// waiting on a FIFO), at most MAX_CONFIG_BYTES, UTF-8 (a BOM is dropped; UTF-16 and binary files are named as such),
// nesting bounded before any parser recurses into it. Every failure is a CONFIG_NOT_FOUND / CONFIG_INVALID error in
// words (no bare errno code). No schema here: the cached start-up path uses it without loading zod.
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { HozoError } from '../errors.js';
import { escapeUnsafe, shownPath } from './shown.js';
import { kindOf } from '../util/safe-fs.js';

/** Far above any real config (a 500-dataset job is ~60 KiB). */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;
/** Levels of nesting a config may have; hozo's own schema needs at most 7. */
export const MAX_CONFIG_DEPTH = 64;
/** Leading spaces on a YAML line; hozo's schema at 2-space indentation needs fewer than 20. */
const MAX_INDENT = 256;

const ERRNO_WORDS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied (it is readable by its owner only? run as that user or root, or fix its mode)',
  EPERM: 'operation not permitted',
  EISDIR: 'it is a directory, not a file',
  ELOOP: 'too many levels of symbolic links (a symlink loop?)',
  ENOTDIR: 'a component of the path is not a directory',
  ENAMETOOLONG: 'the path is too long',
  EMFILE: 'too many open files in this process',
  ENXIO: 'no such device (a FIFO or socket with no one on the other end?)',
  EIO: 'an input/output error (a file of the kernel that cannot be read like this, or a failing disk)',
  EAGAIN: 'nothing to read yet (a file that waits for data, like a pipe or a kernel log?)',
  EINVAL: 'it cannot be read like a file (a kernel file?)',
  ENOTREG: 'it is not a regular file (a FIFO, device or directory in its place?)',
  EFBIG: 'it is larger than any file hozo writes',
};

export function errnoWords(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code !== undefined && Object.hasOwn(ERRNO_WORDS, code)) return ERRNO_WORDS[code]!;
  return code !== undefined ? `${code}: ${escapeUnsafe((e as Error).message.replace(/^[A-Z]+: /, ''))}` : escapeUnsafe(String((e as Error)?.message ?? e));
}

/** Where a config comes from, for hints: the controller's (--config or HOZO_CONFIG; YAML or JSON) or the agent's. */
function hintsFor(what: string): { where: string; file: string } {
  return what === 'agent config'
    ? { where: 'pass --config FILE (hozo-agent reads no environment variable for it)', file: 'point --config at the JSON file itself' }
    : { where: 'pass --config FILE or set HOZO_CONFIG', file: 'point --config at the YAML or JSON file itself' };
}

const CHUNK = 64 * 1024;

/** The file's bytes, if it is a regular file of at most `maxBytes`. Read to its end, whatever size it reports
 *  (procfs files report 0; a file may grow while it is read). */
export function readBounded(path: string, what: string, maxBytes = MAX_CONFIG_BYTES): Buffer {
  const hints = hintsFor(what);
  if (path === '') throw new HozoError('CONFIG_NOT_FOUND', `${what}: an empty path`, { hint: hints.where });
  if (path.length > 4096) throw new HozoError('CONFIG_NOT_FOUND', `cannot read ${what}: the path is ${path.length} characters long (at most 4096)`);
  const shown = shownPath(path);
  if (path.includes('\0')) throw new HozoError('CONFIG_NOT_FOUND', `cannot read ${what} ${shown}: the path contains a NUL byte`, { hint: hints.where });
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (e) {
    throw new HozoError('CONFIG_NOT_FOUND', `cannot read ${what} ${shown}: ${errnoWords(e)}`, { hint: hints.where, cause: e });
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new HozoError('CONFIG_INVALID', `${what} ${shown} is ${kindOf(st)}; expected a regular file`, { hint: hints.file });
    if (st.size > maxBytes)
      throw new HozoError('CONFIG_INVALID', `${what} ${shown} is ${st.size} bytes; at most ${maxBytes} are read`, { hint: 'is this the right file?' });
    const chunks: Buffer[] = [];
    let n = 0;
    for (;;) {
      const buf = Buffer.allocUnsafe(Math.min(CHUNK, maxBytes + 1 - n));
      const got = readSync(fd, buf, 0, buf.length, null);
      if (got === 0) break;
      chunks.push(buf.subarray(0, got));
      n += got;
      if (n > maxBytes)
        throw new HozoError(
          'CONFIG_INVALID',
          `${what} ${shown} is more than ${maxBytes} bytes (it reported ${st.size}, or grew while it was read); at most ${maxBytes} are read`,
          { hint: 'is this the right file?' },
        );
    }
    return Buffer.concat(chunks, n);
  } catch (e) {
    if (e instanceof HozoError) throw e;
    throw new HozoError('CONFIG_NOT_FOUND', `cannot read ${what} ${shown}: ${errnoWords(e)}`, { hint: 'is this the right file?', cause: e });
  } finally {
    closeSync(fd);
  }
}

/** UTF-8 text of a config file's bytes (BOM dropped); UTF-16, UTF-32 and binary files are refused by name. */
export function decodeConfig(bytes: Buffer, file: string): string {
  const path = shownPath(file);
  const b = bytes;
  const utf16 = (b[0] === 0xff && b[1] === 0xfe) || (b[0] === 0xfe && b[1] === 0xff) || (b.length >= 2 && (b[0] === 0 || b[1] === 0));
  if (utf16)
    throw new HozoError('CONFIG_INVALID', `${path} is UTF-16 or UTF-32 encoded; expected UTF-8`, { hint: 'save it as UTF-8 (e.g. iconv -f UTF-16 -t UTF-8)' });
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(b);
  } catch {
    throw new HozoError('CONFIG_INVALID', `${path} is not valid UTF-8 text (a binary file?)`, { hint: 'expected a YAML or JSON file in UTF-8' });
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const nul = text.indexOf('\0');
  if (nul >= 0)
    throw new HozoError('CONFIG_INVALID', `${path} contains a NUL byte (at offset ${nul}): a binary file?`, { hint: 'expected a YAML or JSON file in UTF-8' });
  return text;
}

/**
 * Refuses text nested deeper than MAX_CONFIG_DEPTH before a parser recurses into it: flow brackets (`[`, `{`, JSON's
 * only nesting), compact YAML sequences (`- - - x`) and explicit keys (`? ? ? x`), and indentation. Brackets inside quoted strings are counted too —
 * no real config has dozens of unclosed ones.
 */
export function nestingProblem(text: string): string | undefined {
  let depth = 0;
  let line = 1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5b || c === 0x7b) {
      if (++depth > MAX_CONFIG_DEPTH) return `line ${line}: nested deeper than ${MAX_CONFIG_DEPTH} levels; a hozo config is a few levels deep`;
    } else if (c === 0x5d || c === 0x7d) {
      if (depth > 0) depth--;
    } else if (c === 0x0a) line++;
  }
  const lines = text.split('\n');
  for (const [i, l] of lines.entries()) {
    const lead = /^[ \t]*/.exec(l)![0].length;
    if (lead > MAX_INDENT && l.trim() !== '') return `line ${i + 1}: indented ${lead} columns (at most ${MAX_INDENT}); a hozo config is a few levels deep`;
    // Compact nesting on one line: sequence entries (`- - x`) and explicit keys and values (`? ? x`, `: : x`).
    const dashes = /^(?:[ \t]*[-?:](?:[ \t]+|$))+/.exec(l);
    if (dashes !== null && (dashes[0].match(/[-?:]/g) ?? []).length > MAX_CONFIG_DEPTH)
      return `line ${i + 1}: nested deeper than ${MAX_CONFIG_DEPTH} levels; a hozo config is a few levels deep`;
  }
  return undefined;
}

/** Lines, commas and opening brackets a YAML config may have: far above a large fleet (a 500-dataset job has ~2,000),
 *  and what the yaml parser gets through in about a second (it takes ~20 µs for each). Counted before it runs. */
export const MAX_CONFIG_ENTRIES = 50_000;
/** Values (scalars, lists, objects) parsed data may hold; counted before the schema sees them. */
export const MAX_CONFIG_VALUES = 300_000;

/** Refuses text with more than MAX_CONFIG_ENTRIES lines, commas, `[` and `{` (every entry of a config starts with one). */
export function entriesProblem(text: string): string | undefined {
  let n = 0;
  let line = 1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x0a) line++;
    if ((c === 0x0a || c === 0x2c || c === 0x5b || c === 0x7b) && ++n > MAX_CONFIG_ENTRIES) {
      return `line ${line}: more than ${MAX_CONFIG_ENTRIES} entries (lines, commas and brackets); a hozo config has a few thousand at most`;
    }
  }
  return undefined;
}

/** Whether parsed data holds more than `max` values (iterative, stops at max). */
export function valuesOver(data: unknown, max = MAX_CONFIG_VALUES): boolean {
  const stack: unknown[] = [data];
  let n = 0;
  while (stack.length > 0) {
    const v = stack.pop();
    if (++n > max) return true;
    if (typeof v === 'object' && v !== null) for (const child of Object.values(v)) stack.push(child);
  }
  return false;
}

/** Depth of parsed data (iterative: any depth is measured without recursion). */
export function depthOf(data: unknown): number {
  let max = 0;
  const stack: [unknown, number][] = [[data, 0]];
  let visited = 0;
  while (stack.length > 0 && visited < 1_000_000) {
    const [v, d] = stack.pop()!;
    visited++;
    if (d > max) max = d;
    if (max > MAX_CONFIG_DEPTH) return max;
    if (typeof v === 'object' && v !== null) for (const child of Object.values(v)) stack.push([child, d + 1]);
  }
  return max;
}

/** The config file's text: bounded, regular, UTF-8, not nested too deeply. */
export function readConfigText(path: string, what = 'config'): string {
  const text = decodeConfig(readBounded(path, what), path);
  const deep = nestingProblem(text);
  if (deep !== undefined) throw new HozoError('CONFIG_INVALID', `${shownPath(path)}: ${deep}`, { hint: 'is this the right file?' });
  return text;
}

/** Offset of the first JSON syntax error in `text` (V8 names the offset only for some errors). */
export function jsonErrorOffset(text: string): number {
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const value = (): boolean => {
    ws();
    const c = text[i];
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']';
      i++;
      ws();
      if (text[i] === close) return (i++, true);
      for (;;) {
        if (c === '{') {
          ws();
          if (text[i] !== '"' || !string()) return false;
          ws();
          if (text[i] !== ':') return false;
          i++;
        }
        if (!value()) return false;
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === close) return (i++, true);
        return false;
      }
    }
    if (c === '"') return string();
    const m = /^(?:-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null)/.exec(text.slice(i, i + 400));
    if (m === null) return false;
    i += m[0].length;
    return true;
  };
  const string = (): boolean => {
    i++;
    while (i < text.length) {
      const ch = text.charCodeAt(i);
      if (ch === 0x22) return (i++, true);
      if (ch < 0x20) return false;
      if (ch === 0x5c) {
        const e = text[i + 1];
        if (e === 'u' ? !/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6)) : !'"\\/bfnrt'.includes(e ?? 'x')) return false;
        i += e === 'u' ? 6 : 2;
      } else i++;
    }
    return false;
  };
  if (value()) {
    ws();
    if (i === text.length) return text.length;
  }
  return Math.min(i, text.length);
}

/** JSON.parse's complaint with a line and column instead of an offset ("at position 12"). */
export function jsonErrorWords(e: unknown, text: string): string {
  const m = String((e as Error)?.message ?? e).split('\n')[0] ?? '';
  const what = m
    .replace(/ in JSON at position \d+.*$/, '')
    .replace(/, ".*" is not valid JSON$/s, '')
    .replace(/^Unexpected end of JSON input$/, 'the file ends in the middle of a value');
  const offset = jsonErrorOffset(text);
  let line = 1;
  let last = -1;
  for (let i = 0; i < offset; i++) if (text.charCodeAt(i) === 0x0a) line++, (last = i);
  const words = escapeUnsafe(what.charAt(0).toLowerCase() + what.slice(1)).slice(0, 200);
  return `line ${line}, column ${offset - last}: ${words}`;
}

/** The path of the first key that appears twice in one JSON object (JSON.parse keeps the last one silently). */
export function jsonDuplicateKey(text: string): string | undefined {
  type Frame = { obj: true; keys: Set<string>; expectKey: boolean; key?: string } | { obj: false; index: number };
  const stack: Frame[] = [];
  const path = () =>
    stack
      .map((f) => (f.obj ? (f.key !== undefined ? `.${f.key}` : '') : `[${f.index}]`))
      .join('')
      .replace(/^\./, '');
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const top = stack[stack.length - 1];
      if (top?.obj === true && top.expectKey) {
        let key: string;
        try {
          key = JSON.parse(text.slice(i, j + 1)) as string;
        } catch {
          return undefined; // malformed: JSON.parse reports it
        }
        if (top.keys.has(key)) {
          top.key = key;
          return path();
        }
        top.keys.add(key);
        top.key = key;
        top.expectKey = false;
      }
      i = j;
    } else if (c === '{') stack.push({ obj: true, keys: new Set(), expectKey: true });
    else if (c === '[') stack.push({ obj: false, index: 0 });
    else if (c === '}' || c === ']') stack.pop();
    else if (c === ',') {
      const top = stack[stack.length - 1];
      if (top?.obj === true) top.expectKey = true;
      else if (top !== undefined) top.index++;
    }
  }
  return undefined;
}

/** The path of a `__proto__` key anywhere in parsed data (a schema's records would drop it silently). */
export function protoKeyPath(data: unknown): string | undefined {
  const stack: [unknown, string][] = [[data, '']];
  let visited = 0;
  while (stack.length > 0 && visited++ < 1_000_000) {
    const [v, p] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    for (const k of Object.keys(v)) {
      const here = Array.isArray(v) ? `${p}[${k}]` : p === '' ? k : `${p}.${k}`;
      if (k === '__proto__') return here;
      stack.push([(v as Record<string, unknown>)[k], here]);
    }
  }
  return undefined;
}
