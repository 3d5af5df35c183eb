// What a host's ZFS can do, probed once per host per run with a single `sh -c` (one SSH round trip remotely).
// Usage text alone is not enough: zfs-fuse accepts `send -v` and `receive -u`/`-e` without listing them, so each
// interesting flag is also tried without operands — getopt rejects unknown ones ("invalid option 'X'") before the
// missing operand is noticed, and nothing is ever sent or received.
import { HozoError } from '../errors.js';
import type { RunOptions, Runner } from '../transport/runner.js';
import { classify } from './errors.js';
import type { Capabilities } from './types.js';

const SEND_PROBE = 'D L P R b c e h n p s v w';
const RECEIVE_PROBE = 'A F M d e h n s u v';
const TOOLS = 'mbuffer pv zstd zfs-fuse';

/** POSIX sh; each section starts with "@@ name". stderr is folded in because usage goes there. */
export const PROBE_SCRIPT = `exec 2>&1 </dev/null
echo '@@ commands'
zfs 2>&1 | awk '$1 ~ /^(list|hold|holds|release|bookmark|version)$/'
echo '@@ send-usage'
zfs send
echo '@@ receive-usage'
zfs receive
echo '@@ send-options'
for f in ${SEND_PROBE}; do printf '%s\\t%s\\n' "$f" "$(zfs send -$f 2>&1 | head -n 1)"; done
echo '@@ receive-options'
for f in ${RECEIVE_PROBE}; do printf '%s\\t%s\\n' "$f" "$(zfs receive -$f 2>&1 | head -n 1)"; done
echo '@@ properties'
zfs get 2>&1 | awk '$1 ~ /^[a-z][a-z0-9_]*$/ && ($2 == "YES" || $2 == "NO") { print $1 }'
echo '@@ version'
zfs version 2>/dev/null
echo '@@ pool'
zpool upgrade -v 2>&1 | head -n 1
echo '@@ tools'
for t in ${TOOLS}; do command -v "$t"; done
echo '@@ cpu'
grep -m 1 -E '^(flags|Features)' /proc/cpuinfo 2>/dev/null | grep -ow aes
echo '@@ end'
`;

export function probeArgv(): string[] {
  return ['sh', '-c', PROBE_SCRIPT];
}

function splitSections(output: string): Map<string, string[]> {
  const sections = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of output.split('\n')) {
    const m = /^@@ (\S+)$/.exec(line);
    if (m !== null) sections.set(m[1]!, (current = []));
    else current?.push(line);
  }
  return sections;
}

/**
 * Option letters in usage lines: groups like [-DLPbcehnpsVvw], [-[iI] snapshot], [-i|-I snapshot], -t <token>,
 * [-d | -e]. Only indented lines count (the usage itself, not "missing snapshot argument" or the footer).
 */
export function usageFlags(lines: readonly string[]): Set<string> {
  const flags = new Set<string>();
  for (const line of lines) {
    if (!/^\s/.test(line)) continue;
    for (const m of line.matchAll(/-\[([A-Za-z|]+)\]/g)) for (const c of m[1]!) if (c !== '|') flags.add(c);
    for (const m of line.matchAll(/(?:^|[\s[|])-([A-Za-z]+)/g)) for (const c of m[1]!) flags.add(c);
  }
  return flags;
}

/** Usage flags plus flags getopt accepted, minus flags getopt rejected (the probe beats the usage text). */
function effectiveFlags(usage: readonly string[], probe: readonly string[]): Set<string> {
  const flags = usageFlags(usage);
  for (const line of probe) {
    const m = /^([A-Za-z])\t(.*)$/.exec(line);
    if (m === null) continue;
    const flag = m[1]!;
    const reply = m[2]!;
    // No reply at all is not proof of support.
    if (reply.trim() === '' || /invalid option/i.test(reply)) flags.delete(flag);
    else flags.add(flag);
  }
  return flags;
}

function implementationOf(version: readonly string[], pool: readonly string[], tools: ReadonlySet<string>): string {
  const user = version.map((l) => /^zfs-(?!kmod-)(\d+\.\d+(?:\.\d+)?)/.exec(l.trim())?.[1]).find((v) => v !== undefined);
  const kmod = version.map((l) => /^zfs-kmod-(\d+\.\d+(?:\.\d+)?)/.exec(l.trim())?.[1]).find((v) => v !== undefined);
  if (user !== undefined) return kmod !== undefined && kmod !== user ? `OpenZFS ${user} (kmod ${kmod})` : `OpenZFS ${user}`;
  const poolLine = pool.join(' ');
  const v = /pool version (\d+)/i.exec(poolLine)?.[1];
  if (v !== undefined) return tools.has('zfs-fuse') ? `zfs-fuse (pool v${v})` : `ZFS (pool v${v})`;
  if (/feature flags/i.test(poolLine)) return 'ZFS (pool feature flags, version unknown)';
  return 'ZFS (version unknown)';
}

/** Pure: the probe script's output → Capabilities. Throws a classified error when zfs itself is unusable. */
export function parseCapabilities(output: string, host?: string): Capabilities {
  const context = { action: 'probe ZFS capabilities', ...(host !== undefined ? { host } : {}) };
  const s = splitSections(output);
  const get = (name: string): string[] => s.get(name) ?? [];
  const sendUsage = get('send-usage');
  if (!sendUsage.some((l) => /^\s+send\b/.test(l))) {
    // What the first zfs command said (the rest of the probe says it again for every flag): classified, and quoted.
    const said = sendUsage.join('\n').trim();
    const e = classify(said !== '' ? said : output.slice(0, 2000), context);
    if (e.code !== 'ZFS_UNKNOWN') throw e;
    throw new HozoError('ZFS_UNAVAILABLE', `${host ?? 'local'}: zfs printed no usable usage text`, {
      hint: 'is ZFS installed and on PATH for this user (`zfs send` should print its usage)?',
      cause: e,
    });
  }
  if (!s.has('end')) {
    throw new HozoError('ZFS_UNKNOWN', `${host ?? 'local'}: capability probe output was cut short`, {
      hint: 'the probe script did not finish; retry, and check the host for a hung zfs command',
    });
  }
  const commands = new Map<string, string[]>();
  for (const line of get('commands')) {
    const name = /^\s+([a-z-]+)\b/.exec(line)?.[1];
    if (name !== undefined) commands.set(name, [...(commands.get(name) ?? []), line]);
  }
  const sendFlags = effectiveFlags(sendUsage, get('send-options'));
  const receiveFlags = effectiveFlags(get('receive-usage'), get('receive-options'));
  const properties = new Set(get('properties').map((l) => l.trim()));
  const tools = new Set(
    get('tools')
      .map((l) => l.trim())
      .filter((l) => l !== '')
      .map((l) => l.slice(l.lastIndexOf('/') + 1)),
  );
  return {
    listParsable: usageFlags(commands.get('list') ?? []).has('p'),
    resumeTokens: properties.has('receive_resume_token') && receiveFlags.has('s') && sendFlags.has('t'),
    bookmarks: commands.has('bookmark'),
    sendFlags,
    receiveFlags,
    holds: commands.has('hold') && commands.has('release'),
    mbuffer: tools.has('mbuffer'),
    pv: tools.has('pv'),
    zstd: tools.has('zstd'),
    implementation: implementationOf(get('version'), get('pool'), tools),
    // Older probes (stored ones, fixtures) have no cpu section: unknown.
    ...(s.has('cpu') ? { aes: get('cpu').some((l) => l.trim() === 'aes') } : {}),
    encryption: properties.has('encryption') && properties.has('keystatus') && sendFlags.has('w'),
  };
}

/** The section names of PROBE_SCRIPT: a stored probe without one of them comes from an older hozo whose probe did
 *  not ask that yet (capability-cache.ts probes again). */
export const PROBE_SECTIONS: readonly string[] = [...PROBE_SCRIPT.matchAll(/^echo '@@ (\S+)'$/gm)].map((m) => m[1]!);

/** Runs the probe on `runner`'s host (one command); its output, for parseCapabilities (and the capability cache). */
export async function runProbe(runner: Runner, opts: RunOptions = {}): Promise<string> {
  const result = await runner.run(probeArgv(), { timeoutMs: 60_000, ...opts });
  if (result.exitCode === null) {
    throw new HozoError('ZFS_UNKNOWN', `${runner.name}: capability probe was killed (timeout or signal)`, {
      hint: 'a zfs command hung on that host; check `zpool status` there',
    });
  }
  return result.stdout + result.stderr;
}

/** Runs the probe on `runner`'s host (one command) and parses it. */
export async function probeCapabilities(runner: Runner, opts: RunOptions = {}): Promise<Capabilities> {
  return parseCapabilities(await runProbe(runner, opts), runner.name);
}
