// The first round trip to a host: what its ZFS can do, and, when that is already known, the listing the run needs,
// plus whatever else the caller wants to know (the box's pools), in one `sh -c` (one SSH session).
//
// - Stored probe whose fingerprint still matches: capabilities from the store, listing in the same round trip.
// - Nothing stored (first run, new state directory): the probe runs in this round trip; the listing needs another.
// - Stored probe, but ZFS or the tools changed (fingerprint differs): probe again, then list (two more).
import type { BatchCommand } from '../transport/batch.js';
import { runBatch } from '../transport/batch.js';
import type { CommandResult, RunOptions, Runner } from '../transport/runner.js';
import { parseCapabilities, probeArgv, runProbe } from './capabilities.js';
import { fingerprintArgv, type CapabilityCache } from './capability-cache.js';
import { inventoryFromResult, listInventoryArgv } from './inventory.js';
import type { Capabilities, Inventory } from './types.js';

export interface HelloOptions {
  /** Which host this is for the cache (user@address:port, or "local"). */
  readonly endpoint: string;
  /** List these roots (for the plan). */
  readonly roots?: readonly string[];
  /** Other commands for the same round trip; their results come back by name. */
  readonly extra?: readonly BatchCommand[];
  readonly timeoutMs?: number;
}

export interface Hello {
  readonly caps: Capabilities;
  /** How the capabilities were found. */
  readonly source: 'cache' | 'probe' | 'reprobe';
  /** The listing of HelloOptions.roots, when it came with this round trip (capabilities from the cache); else list
   *  them with `caps` when needed. Settles like listInventory: missing roots are absent, other problems reject. */
  readonly inventory?: Promise<Inventory>;
  readonly extra: ReadonlyMap<string, CommandResult>;
}

const FINGERPRINT = '.fingerprint';
const PROBE = '.probe';
const LIST = '.inventory';

export async function hello(runner: Runner, cache: CapabilityCache, opts: HelloOptions): Promise<Hello> {
  const runOpts: RunOptions = { timeoutMs: opts.timeoutMs ?? 60_000 };
  const roots = [...new Set(opts.roots ?? [])];
  const stored = cache.get(runner.name, opts.endpoint);
  let storedCaps: Capabilities | undefined;
  try {
    storedCaps = stored === undefined ? undefined : parseCapabilities(stored.probe, runner.name);
  } catch {
    storedCaps = undefined; // damaged or from a host that had no zfs then: probe
  }
  const commands: BatchCommand[] = [...(opts.extra ?? []), { name: FINGERPRINT, argv: fingerprintArgv() }];
  if (storedCaps === undefined) commands.push({ name: PROBE, argv: probeArgv() });
  else if (roots.length > 0) commands.push({ name: LIST, argv: listInventoryArgv(roots, storedCaps) });

  const results = await runBatch(runner, commands, runOpts);
  const extra = new Map([...results].filter(([name]) => !name.startsWith('.')));
  const fingerprint = results.get(FINGERPRINT)!.stdout;

  if (storedCaps !== undefined && stored!.fingerprint === fingerprint) {
    const list = results.get(LIST);
    const caps = storedCaps;
    const inventory =
      list === undefined
        ? undefined
        : settle(() => inventoryFromResult(list, roots, { action: `list ${roots.join(', ')}`, host: runner.name, argv: listInventoryArgv(roots, caps) }));
    return { caps: storedCaps, source: 'cache', ...(inventory ? { inventory } : {}), extra };
  }
  let probeOutput: string;
  let source: Hello['source'];
  if (storedCaps === undefined) {
    const p = results.get(PROBE)!;
    probeOutput = p.stdout + p.stderr;
    source = 'probe';
  } else {
    probeOutput = await runProbe(runner, runOpts);
    source = 'reprobe';
  }
  const caps = parseCapabilities(probeOutput, runner.name);
  cache.put(runner.name, opts.endpoint, fingerprint, probeOutput);
  return { caps, source, extra };
}

/** A promise of `f()` that does not count as unhandled before someone awaits it. */
function settle<T>(f: () => T | Promise<T>): Promise<T> {
  const p = (async () => f())();
  p.catch(() => undefined);
  return p;
}
