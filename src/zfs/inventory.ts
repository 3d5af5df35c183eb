// One recursive listing per host → Inventory. `zfs get -H -p` is used (not `zfs list -p`) because zfs-fuse has no
// `list -p` and prints guids lossy without -p; guids stay decimal strings, they exceed 2^53.
import { HozoError } from '../errors.js';
import type { CommandResult, RunOptions, Runner } from '../transport/runner.js';
import { inventoryArgv } from './argv.js';
import { checkResult, classify, type ZfsErrorContext } from './errors.js';
import type { Bookmark, Capabilities, Dataset, Inventory, Snapshot } from './types.js';

const DECIMAL = /^[0-9]+$/;

function malformed(what: string): HozoError {
  return new HozoError('ZFS_UNKNOWN', `unexpected zfs get output: ${what}`, {
    hint: 'the listing did not have the expected name<TAB>property<TAB>value shape; report it with the zfs version',
  });
}

/** name → (property → value), in first-seen order. */
function readTriples(stdout: string): Map<string, Map<string, string>> {
  const records = new Map<string, Map<string, string>>();
  for (const line of stdout.split('\n')) {
    if (line === '') continue;
    const t1 = line.indexOf('\t');
    const t2 = t1 < 0 ? -1 : line.indexOf('\t', t1 + 1);
    if (t1 <= 0 || t2 < 0) throw malformed(`line ${JSON.stringify(line)}`);
    const name = line.slice(0, t1);
    let rec = records.get(name);
    if (rec === undefined) records.set(name, (rec = new Map()));
    rec.set(line.slice(t1 + 1, t2), line.slice(t2 + 1));
  }
  return records;
}

function required(rec: Map<string, string>, name: string, prop: string): string {
  const v = rec.get(prop);
  if (v === undefined) throw malformed(`"${name}" has no ${prop}`);
  return v;
}

function guidOf(rec: Map<string, string>, name: string): string {
  const v = required(rec, name, 'guid');
  if (!DECIMAL.test(v)) throw malformed(`guid of "${name}" is "${v}", not a decimal number (was -p missing?)`);
  return v;
}

function uintOf(rec: Map<string, string>, name: string, prop: string): number {
  const v = required(rec, name, prop);
  const n = Number(v);
  if (!DECIMAL.test(v) || !Number.isSafeInteger(n)) throw malformed(`${prop} of "${name}" is "${v}"`);
  return n;
}

function compareSnapshots(a: Snapshot, b: Snapshot): number {
  // Several snapshots of one dataset can share a txg (created together); the name keeps the order stable.
  return a.createtxg - b.createtxg || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

/**
 * Parses `zfs get -H -p -r [-t filesystem,volume,snapshot,bookmark] -o name,property,value
 * type,guid,createtxg,creation[,userrefs][,receive_resume_token]`. Bookmarks are kept per dataset (when the listing
 * has them); unknown types are skipped; order of lines does not matter.
 */
export function parseInventory(stdout: string): Inventory {
  const records = readTriples(stdout);
  const datasets = new Map<
    string,
    {
      type: 'filesystem' | 'volume';
      snapshots: Snapshot[];
      bookmarks: Bookmark[];
      resumeToken?: string;
      encryption?: string;
      encryptionRoot?: string;
      keyStatus?: string;
    }
  >();
  const snapshots: { dataset: string; snap: Snapshot }[] = [];
  const bookmarks: { dataset: string; mark: Bookmark }[] = [];
  for (const [name, rec] of records) {
    const type = required(rec, name, 'type');
    if (type === 'bookmark') {
      const hash = name.indexOf('#');
      if (hash <= 0) throw malformed(`bookmark "${name}" has no "#"`);
      bookmarks.push({
        dataset: name.slice(0, hash),
        mark: { name: name.slice(hash + 1), guid: guidOf(rec, name), createtxg: uintOf(rec, name, 'createtxg'), creation: uintOf(rec, name, 'creation') },
      });
      continue;
    }
    if (type === 'filesystem' || type === 'volume') {
      const token = rec.get('receive_resume_token');
      const value = (prop: string) => {
        const v = rec.get(prop);
        return v !== undefined && v !== '-' && v !== '' ? v : undefined;
      };
      const encryption = value('encryption');
      const encryptionRoot = value('encryptionroot');
      const keyStatus = value('keystatus');
      datasets.set(name, {
        type,
        snapshots: [],
        bookmarks: [],
        ...(token !== undefined && token !== '-' && token !== '' ? { resumeToken: token } : {}),
        ...(encryption !== undefined ? { encryption } : {}),
        ...(encryptionRoot !== undefined ? { encryptionRoot } : {}),
        ...(keyStatus !== undefined ? { keyStatus } : {}),
      });
    } else if (type === 'snapshot') {
      const at = name.indexOf('@');
      if (at <= 0) throw malformed(`snapshot "${name}" has no "@"`);
      const refs = rec.get('userrefs');
      if (refs !== undefined && refs !== '-' && !DECIMAL.test(refs)) throw malformed(`userrefs of "${name}" is "${refs}"`);
      snapshots.push({
        dataset: name.slice(0, at),
        snap: {
          name: name.slice(at + 1),
          guid: guidOf(rec, name),
          createtxg: uintOf(rec, name, 'createtxg'),
          creation: uintOf(rec, name, 'creation'),
          ...(refs !== undefined && refs !== '-' ? { userrefs: Number(refs) } : {}),
        },
      });
    }
  }
  for (const { dataset, snap } of snapshots) {
    const ds = datasets.get(dataset);
    if (ds === undefined) throw malformed(`snapshot "${dataset}@${snap.name}" without its dataset`);
    ds.snapshots.push(snap);
  }
  // A bookmark of a dataset outside the listing cannot happen with -r; skip rather than fail.
  for (const { dataset, mark } of bookmarks) datasets.get(dataset)?.bookmarks.push(mark);
  const inventory = new Map<string, Dataset>();
  for (const name of [...datasets.keys()].sort()) {
    const { bookmarks: marks, ...ds } = datasets.get(name)!;
    ds.snapshots.sort(compareSnapshots);
    marks.sort(compareSnapshots);
    inventory.set(name, { name, ...ds, ...(marks.length > 0 ? { bookmarks: marks } : {}) });
  }
  return inventory;
}

/** Parses `zfs get -H -p -o name,value guid SNAP…` → full name → guid. */
export function parseGuids(stdout: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    if (line === '') continue;
    const [name, value, extra] = line.split('\t');
    if (name === undefined || value === undefined || extra !== undefined || !DECIMAL.test(value)) {
      throw malformed(`guid line ${JSON.stringify(line)}`);
    }
    out.set(name, value);
  }
  return out;
}

// OpenZFS can also say "no such pool or dataset" (zrepl's platform tests saw both).
const MISSING_ROOT = /^cannot open '([^']+)': (?:dataset does not exist|no such pool or dataset)$/;

/**
 * Everything under `roots` on one host, in one command. A root that does not exist is simply absent (zfs reports
 * it on stderr and exits non-zero while still listing the others); any other complaint is a classified error.
 */
export async function listInventory(runner: Runner, roots: readonly string[], caps: Capabilities, opts: RunOptions = {}): Promise<Inventory> {
  if (roots.length === 0) return new Map();
  const argv = listInventoryArgv(roots, caps);
  return inventoryFromResult(await runner.run(argv, opts), roots, { action: `list ${roots.join(', ')}`, host: runner.name, argv });
}

/** The one listing command for `roots` on a host with `caps`. */
export function listInventoryArgv(roots: readonly string[], caps: Capabilities): string[] {
  return inventoryArgv(roots, { userrefs: caps.holds, resumeToken: caps.resumeTokens, bookmarks: caps.bookmarks, encryption: caps.encryption === true });
}

/** The result of listInventoryArgv → Inventory (missing roots are absent; other complaints are classified errors). */
export function inventoryFromResult(result: CommandResult, roots: readonly string[], context: ZfsErrorContext): Inventory {
  if (result.exitCode !== 0 && result.exitCode !== null) {
    const wanted = new Set(roots);
    const lines = result.stderr.split('\n').filter((l) => l.trim() !== '');
    const other = lines.filter((l) => !wanted.has(MISSING_ROOT.exec(l)?.[1] ?? '\0'));
    if (other.length > 0 || lines.length === 0) {
      throw classify(other.join('\n'), { ...context, exitCode: result.exitCode });
    }
    return parseInventory(result.stdout);
  }
  return parseInventory(checkResult(result, context));
}
