// Pure parsers for `zpool status` and `zpool list -H` as printed by zfs-fuse (an old-style " scrub:" line) and OpenZFS
// 2.x ("  scan:" lines, possibly one for the scrub and one for a resilver, progress on continuation lines).
// Anything unrecognised is reported as unknown, never guessed.

export type ScanKind = 'scrub' | 'resilver';
export type ScanState = 'running' | 'paused' | 'finished' | 'canceled';

export interface ScanInfo {
  readonly kind: ScanKind;
  readonly state: ScanState;
  /** Unix seconds, when printed (OpenZFS "since"). */
  readonly start?: number;
  /** Unix seconds of the end (finished or canceled). */
  readonly end?: number;
  /** 0..1 while running. */
  readonly progress?: number;
  /** Errors the scan reported ("with N errors"). */
  readonly errors?: number;
}

export interface VdevRow {
  readonly name: string;
  readonly state: string;
  /** Nesting level (0 = the pool itself or a section such as "logs"). */
  readonly depth: number;
  readonly read?: number;
  readonly write?: number;
  readonly cksum?: number;
  /** Text after the counts, e.g. "(resilvering)", "297M repaired", "was /dev/sdb1". */
  readonly note?: string;
  readonly leaf: boolean;
}

export interface PoolStatus {
  readonly name: string;
  /** ONLINE, DEGRADED, FAULTED, … ("state:" line). */
  readonly state: string;
  /** Scan lines in order (none when "none requested"). */
  readonly scans: readonly ScanInfo[];
  /** The raw scan line(s), for humans. */
  readonly scanText: string | null;
  readonly vdevs: readonly VdevRow[];
  /** READ + WRITE + CKSUM summed over leaf vdevs. */
  readonly errors: number;
  /** From "errors: N data errors"; 0 for "No known data errors"; null when unparseable. */
  readonly dataErrors: number | null;
  readonly scrubRunning: boolean;
  readonly resilverRunning: boolean;
  /** End of the last completed scrub (unix seconds), null when none is shown. */
  readonly lastScrubEnd: number | null;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
// ctime(3): "Sun Nov  9 00:26:12 2025" (local time of the box).
const CTIME = /\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)\s+(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\s+(\d{1,2})\s+(\d{2}):(\d{2}):(\d{2})\s+(\d{4})\b/;

/** The first ctime(3) date in text as unix seconds (interpreted in this process's time zone, as zpool printed it). */
export function parseCtime(text: string): number | undefined {
  const m = CTIME.exec(text);
  if (m === null) return undefined;
  const d = new Date(Number(m[6]), MONTHS.indexOf(m[1]!), Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]));
  const t = d.getTime();
  return Number.isFinite(t) ? Math.round(t / 1000) : undefined;
}

/** zfs_nicenum counts: "0", "12", "2.37K", "1.5M" (powers of 1024). */
export function parseCount(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)([KMGTPE]?)$/.exec(text);
  if (m === null) return undefined;
  const exp = ' KMGTPE'.indexOf(m[2] === '' ? ' ' : m[2]!);
  return Math.round(Number(m[1]) * 1024 ** exp);
}

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

function scanOf(line: string, continuation: readonly string[]): ScanInfo | undefined {
  const text = line.trim();
  const all = [text, ...continuation].join('\n');
  const percent = /([\d.]+)% done/.exec(all)?.[1];
  const progress = percent !== undefined ? Math.min(1, Math.round(Number(percent) * 100) / 10_000) : undefined;
  const errors = /with (\d+) errors/.exec(text)?.[1];
  const withErrors = errors !== undefined ? { errors: Number(errors) } : {};
  const date = parseCtime(text);
  const at = (key: 'start' | 'end') => (date !== undefined ? { [key]: date } : {});
  const prog = progress !== undefined ? { progress } : {};
  // OpenZFS "resilver (mirror-0) …" (sequential rebuild) reads like a resilver.
  const t = text.replace(/^(resilver(?:ed)?) \([^)]*\)/, '$1');
  let m: RegExpExecArray | null;
  // zfs-fuse (2009 libzfs): "scrub completed after 0h0m with 0 errors on DATE", "scrub in progress for 0h0m, 11.11% done",
  // "scrub stopped after … on DATE", "resilver completed after …".
  if ((m = /^(scrub|resilver) completed after\b/.exec(t))) return { kind: m[1] as ScanKind, state: 'finished', ...at('end'), ...withErrors };
  if ((m = /^(scrub|resilver) stopped after\b/.exec(t))) return { kind: m[1] as ScanKind, state: 'canceled', ...at('end'), ...withErrors };
  if ((m = /^(scrub|resilver) in progress for\b/.exec(t))) return { kind: m[1] as ScanKind, state: 'running', ...prog };
  // OpenZFS.
  if (/^scrub repaired\b/.test(t)) return { kind: 'scrub', state: 'finished', ...at('end'), ...withErrors };
  if (/^resilvered\b/.test(t)) return { kind: 'resilver', state: 'finished', ...at('end'), ...withErrors };
  if ((m = /^(scrub|resilver) canceled on\b/.exec(t))) return { kind: m[1] as ScanKind, state: 'canceled', ...at('end') };
  if ((m = /^(scrub|resilver) in progress since\b/.exec(t))) return { kind: m[1] as ScanKind, state: 'running', ...at('start'), ...prog };
  if (/^scrub paused since\b/.test(t)) {
    const started = continuation.map((c) => (/scrub started on/.test(c) ? parseCtime(c) : undefined)).find((v) => v !== undefined);
    return { kind: 'scrub', state: 'paused', ...(started !== undefined ? { start: started } : {}), ...prog };
  }
  return undefined;
}

function parseConfig(lines: readonly string[]): VdevRow[] {
  const rows: Omit<VdevRow, 'leaf'>[] = [];
  for (const raw of lines) {
    if (!raw.startsWith('\t')) continue;
    const body = raw.slice(1);
    const depthSpaces = /^ */.exec(body)![0].length;
    const fields = body.trim().split(/\s+/);
    const name = fields[0];
    if (name === undefined || name === '' || (name === 'NAME' && fields[1] === 'STATE')) continue;
    const read = parseCount(fields[2] ?? '');
    const write = parseCount(fields[3] ?? '');
    const cksum = parseCount(fields[4] ?? '');
    const counts = read !== undefined && write !== undefined && cksum !== undefined ? { read, write, cksum } : {};
    const note = Object.keys(counts).length > 0 ? fields.slice(5).join(' ') : '';
    rows.push({ name, state: fields[1] ?? '', depth: Math.floor(depthSpaces / 2), ...counts, ...(note !== '' ? { note } : {}) });
  }
  return rows.map((r, i) => ({ ...r, leaf: i + 1 >= rows.length || rows[i + 1]!.depth <= r.depth }));
}

/** Parses the output of `zpool status [POOL…]` (one or more pools). */
export function parseZpoolStatus(stdout: string): PoolStatus[] {
  const out: PoolStatus[] = [];
  const text = stdout.replace(ANSI, '');
  // Each pool starts at a "pool:" line.
  const blocks = text.split(/^(?= *pool: )/m).filter((b) => /^ *pool: /.test(b));
  for (const block of blocks) {
    const lines = block.split('\n');
    const fields = new Map<string, { first: string; more: string[] }>();
    const scanLines: { first: string; more: string[] }[] = [];
    let current: { first: string; more: string[] } | undefined;
    let inConfig = false;
    const config: string[] = [];
    for (const line of lines) {
      const key = /^ *([a-z]+): ?(.*)$/.exec(line);
      if (key !== null) {
        const entry = { first: key[2]!, more: [] as string[] };
        inConfig = key[1] === 'config';
        if (key[1] === 'scan' || key[1] === 'scrub') scanLines.push(entry);
        else if (!fields.has(key[1]!)) fields.set(key[1]!, entry);
        current = entry;
        continue;
      }
      if (inConfig) config.push(line);
      else if (line.startsWith('\t') || line.startsWith('    ')) current?.more.push(line.trim());
    }
    const name = fields.get('pool')?.first.trim() ?? '';
    if (name === '') continue;
    const scans = scanLines.map((s) => scanOf(s.first, s.more)).filter((s): s is ScanInfo => s !== undefined);
    const vdevs = parseConfig(config);
    const errors = vdevs.filter((v) => v.leaf).reduce((sum, v) => sum + (v.read ?? 0) + (v.write ?? 0) + (v.cksum ?? 0), 0);
    const errLine = fields.get('errors')?.first.trim() ?? '';
    const dataErrors = /^No known data errors/i.test(errLine) ? 0 : /^(\d+) data errors?/.test(errLine) ? Number(/^(\d+)/.exec(errLine)![1]) : null;
    const lastScrub = scans.filter((s) => s.kind === 'scrub' && s.state === 'finished' && s.end !== undefined).map((s) => s.end!);
    out.push({
      name,
      state: fields.get('state')?.first.trim() ?? 'UNKNOWN',
      scans,
      scanText: scanLines.length > 0 ? scanLines.map((s) => [s.first.trim(), ...s.more].join(' ')).join('; ') : null,
      vdevs,
      errors,
      dataErrors,
      scrubRunning: scans.some((s) => s.kind === 'scrub' && (s.state === 'running' || s.state === 'paused')),
      resilverRunning: scans.some((s) => s.kind === 'resilver' && s.state === 'running') || vdevs.some((v) => /\bresilvering\b/.test(v.note ?? '')),
      lastScrubEnd: lastScrub.length > 0 ? Math.max(...lastScrub) : null,
    });
  }
  return out;
}

// The parser is shared with the controller.
export { parseZpoolList, type PoolListRow } from '../src/zfs/pool-list.js';
