// SSH_ORIGINAL_COMMAND → one typed request, or a refusal. Pure: no I/O, so every hostile string is tested cheaply.
// There is no shell anywhere: the text is split on spaces, every token must be plain name characters, and each verb
// takes exactly the arguments listed in PROTOCOL. Every dataset is confined to the configured roots.
import { datasetNameProblem, isWithin, snapshotNameProblem } from '../src/zfs/names.js';
import { shownName } from '../src/config/shown.js';

/** Longest accepted SSH_ORIGINAL_COMMAND (a `list` of many long names stays well below). */
export const MAX_COMMAND_LENGTH = 16 * 1024;
export const MAX_TOKENS = 70;
export const MAX_LIST_DATASETS = 64;
/** Characters a token may contain; no quoting, globbing, redirection, substitution or separators can be expressed. */
export const TOKEN = /^[A-Za-z0-9_\-:.@/=]+$/;
/** Lease ids: a name a controller picks (e.g. "nightly@kraken"); never a path. */
export const LEASE_ID = /^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,63}$/;

/** One line per verb: the whole protocol (also printed in refusals of unknown verbs). */
export { AGENT_PROTOCOL_VERSION } from '../src/protocol/agent.js';

export const PROTOCOL: Readonly<Record<string, string>> = {
  version: 'version',
  capabilities: 'capabilities',
  list: 'list [<dataset>...]',
  receive: 'receive [-u] [-F] [-s] [--zstd] [--mbuffer] [--volume] <dataset>',
  'abort-receive': 'abort-receive <dataset>',
  send: 'send [-L] [-e] [-c] [-w] [-p] [--zstd] [--mbuffer] [-i|-I <from-snapshot>] <dataset@snapshot>',
  status: 'status',
  prepare: 'prepare',
  hold: 'hold <lease-id> <ttl-seconds>',
  release: 'release <lease-id>',
  shutdown: 'shutdown',
  prune: 'prune [--dry-run]',
  session: 'session',
};
export const VERBS = Object.keys(PROTOCOL);

export interface SendFlags {
  readonly largeBlock: boolean;
  readonly embedded: boolean;
  readonly compressed: boolean;
  readonly raw: boolean;
  readonly props: boolean;
}

export type Request =
  | { readonly verb: 'version' }
  | { readonly verb: 'capabilities' }
  | { readonly verb: 'list'; readonly datasets: readonly string[] }
  | {
      readonly verb: 'receive';
      readonly dataset: string;
      readonly force: boolean;
      readonly resumable: boolean;
      /** The stream arrives zstd-compressed / through mbuffer (the controller's compress/buffer settings). */
      readonly zstd: boolean;
      readonly mbuffer: boolean;
      /** The stream is a volume (zvol): the received-property protection differs (zfs/argv.ts receiveProtection). */
      readonly volume: boolean;
    }
  /** `zfs receive -A`: discard an interrupted resumable receive's partial state (never a snapshot). */
  | { readonly verb: 'abort-receive'; readonly dataset: string }
  | {
      readonly verb: 'send';
      readonly snapshot: string;
      /** Full name `dataset@snap` of the incremental base. */
      readonly from?: string;
      readonly intermediates: boolean;
      readonly flags: SendFlags;
      readonly zstd: boolean;
      readonly mbuffer: boolean;
    }
  | { readonly verb: 'status' }
  | { readonly verb: 'prepare' }
  | { readonly verb: 'hold'; readonly id: string; readonly ttlSeconds: number }
  | { readonly verb: 'release'; readonly id: string }
  | { readonly verb: 'shutdown' }
  | { readonly verb: 'prune'; readonly dryRun: boolean }
  /** Many requests over one SSH call (agent/session.ts): one agent start-up per run instead of one per request. */
  | { readonly verb: 'session' };

export type Verb = Request['verb'];

export type Parsed = { readonly ok: true; readonly request: Request } | { readonly ok: false; readonly reason: string };

export interface CommandPolicy {
  readonly roots: readonly string[];
  readonly allowRollback: boolean;
  /** Nothing this key asks for destroys anything: no receive -F, no prune, no abort-receive (agent config appendOnly). */
  readonly appendOnly?: boolean;
  readonly maxLeaseSeconds: number;
}

class Refusal extends Error {}

function refuse(reason: string): never {
  throw new Refusal(reason);
}

/** A short, printable rendering of untrusted text for messages and logs (controls and bidi overrides escaped). */
export function printable(text: string, max = 80): string {
  return shownName(text, max);
}

/** The root a dataset is confined to, if any. */
export function rootOf(dataset: string, roots: readonly string[]): string | undefined {
  return roots.find((r) => isWithin(dataset, r));
}

function confinedDataset(name: string, roots: readonly string[], what: string, strictlyBelow = false): string {
  const problem = datasetNameProblem(name);
  if (problem !== undefined) refuse(`${what} ${printable(name)} ${problem}`);
  const root = rootOf(name, roots);
  if (root === undefined) refuse(`${what} "${name}" is outside the backup roots (${roots.join(', ')})`);
  if (strictlyBelow && name === root) refuse(`${what} "${name}" is a backup root itself; receive into a dataset below it`);
  return name;
}

function confinedSnapshot(full: string, roots: readonly string[], what: string): string {
  const at = full.indexOf('@');
  if (at <= 0) refuse(`${what} ${printable(full)} is not dataset@snapshot`);
  const dataset = full.slice(0, at);
  const dp = datasetNameProblem(dataset);
  if (dp !== undefined) refuse(`${what} ${printable(full)}: dataset ${dp}`);
  if (rootOf(dataset, roots) === undefined) refuse(`${what} "${full}" is outside the backup roots (${roots.join(', ')})`);
  const problem = snapshotNameProblem(full.slice(at + 1));
  if (problem !== undefined) refuse(`${what} ${printable(full)}: snapshot name ${problem}`);
  return full;
}

function leaseId(token: string | undefined): string {
  if (token === undefined) refuse('a lease id is missing');
  if (!LEASE_ID.test(token)) refuse(`lease id ${printable(token)} must be 1-64 of letters, digits, _ . : @ - starting with a letter or digit`);
  return token;
}

function noMore(verb: string, rest: readonly string[]): void {
  if (rest.length > 0) refuse(`unexpected argument ${printable(rest[0]!)} (usage: ${PROTOCOL[verb]})`);
}

/** Splits on spaces only; anything else that separates (tab, newline, NUL) is an invalid character. */
export function tokenize(original: string): string[] {
  if (original.length > MAX_COMMAND_LENGTH) refuse(`command is too long (${original.length} characters, at most ${MAX_COMMAND_LENGTH})`);
  const tokens = original.split(' ').filter((t) => t !== '');
  if (tokens.length === 0) refuse('empty command');
  if (tokens.length > MAX_TOKENS) refuse(`too many arguments (${tokens.length}, at most ${MAX_TOKENS})`);
  for (const t of tokens) {
    if (!TOKEN.test(t)) {
      const bad = [...t].find((c) => !TOKEN.test(c)) ?? '';
      refuse(`argument ${printable(t, 40)} contains ${printable(bad)}: only letters, digits and _ - : . @ / = are accepted (no shell)`);
    }
  }
  return tokens;
}

function parseTokens(tokens: readonly string[], policy: CommandPolicy): Request {
  const [verb, ...args] = tokens;
  switch (verb) {
    case 'version':
    case 'capabilities':
    case 'status':
    case 'prepare':
    case 'shutdown':
    case 'session':
      noMore(verb, args);
      return { verb };
    case 'list': {
      if (args.length > MAX_LIST_DATASETS) refuse(`list takes at most ${MAX_LIST_DATASETS} datasets`);
      for (const a of args) if (a.startsWith('-')) refuse(`list takes no options (got ${printable(a)})`);
      return { verb, datasets: args.map((a) => confinedDataset(a, policy.roots, 'dataset')) };
    }
    case 'receive': {
      const seen = new Set<string>();
      let i = 0;
      for (; i < args.length && args[i]!.startsWith('-'); i++) {
        const f = args[i]!;
        if (!['-u', '-F', '-s', '--zstd', '--mbuffer', '--volume'].includes(f))
          refuse(`receive option ${printable(f)} is not allowed (usage: ${PROTOCOL.receive})`);
        if (seen.has(f)) refuse(`receive option ${f} given twice`);
        if (f === '-F' && policy.appendOnly === true)
          refuse('receive -F (rollback) is refused: this key is append-only on this box (appendOnly): it can only add snapshots on top of the newest');
        if (f === '-F' && !policy.allowRollback)
          refuse(
            "receive -F (rollback) is disabled on this box (allowRollback: false); the box's owner must set allowRollback: true in its agent config (services.hozo.agent.allowRollback) for a job with rollback: true",
          );
        seen.add(f);
      }
      const dataset = args[i];
      if (dataset === undefined) refuse(`receive needs a target dataset (usage: ${PROTOCOL.receive})`);
      noMore('receive', args.slice(i + 1));
      return {
        verb,
        dataset: confinedDataset(dataset, policy.roots, 'receive target', true),
        force: seen.has('-F'),
        resumable: seen.has('-s'),
        zstd: seen.has('--zstd'),
        mbuffer: seen.has('--mbuffer'),
        volume: seen.has('--volume'),
      };
    }
    case 'abort-receive': {
      if (policy.appendOnly === true)
        refuse("abort-receive is refused: this key is append-only on this box (appendOnly); the box's owner can discard a partial receive (zfs receive -A)");
      const dataset = args[0];
      if (dataset === undefined) refuse(`abort-receive needs a dataset (usage: ${PROTOCOL['abort-receive']})`);
      if (dataset.startsWith('-')) refuse(`abort-receive takes no options (got ${printable(dataset)})`);
      noMore('abort-receive', args.slice(1));
      return { verb, dataset: confinedDataset(dataset, policy.roots, 'receive target', true) };
    }
    case 'send': {
      const flags = { largeBlock: false, embedded: false, compressed: false, raw: false, props: false };
      const FLAG: Record<string, keyof SendFlags> = { '-L': 'largeBlock', '-e': 'embedded', '-c': 'compressed', '-w': 'raw', '-p': 'props' };
      const tools = new Set<string>();
      let from: string | undefined;
      let intermediates = false;
      let i = 0;
      for (; i < args.length && args[i]!.startsWith('-'); i++) {
        const f = args[i]!;
        if (f === '-i' || f === '-I') {
          if (from !== undefined) refuse('send takes one incremental base');
          const base = args[++i];
          if (base === undefined || base.startsWith('-')) refuse(`send ${f} needs a base snapshot`);
          from = base;
          intermediates = f === '-I';
        } else if (f === '--zstd' || f === '--mbuffer') {
          if (tools.has(f)) refuse(`send option ${f} given twice`);
          tools.add(f);
        } else {
          const key = Object.hasOwn(FLAG, f) ? FLAG[f] : undefined;
          if (key === undefined) refuse(`send option ${printable(f)} is not allowed (usage: ${PROTOCOL.send})`);
          if (flags[key]) refuse(`send option ${f} given twice`);
          flags[key] = true;
        }
      }
      const snap = args[i];
      if (snap === undefined) refuse(`send needs a snapshot (usage: ${PROTOCOL.send})`);
      noMore('send', args.slice(i + 1));
      const snapshot = confinedSnapshot(snap, policy.roots, 'snapshot');
      if (from !== undefined) {
        // "@base" is short for a snapshot of the same dataset.
        const full = from.startsWith('@') ? `${snapshot.slice(0, snapshot.indexOf('@'))}${from}` : from;
        from = confinedSnapshot(full, policy.roots, 'incremental base');
        if (from === snapshot) refuse('the incremental base is the snapshot itself');
      }
      return { verb, snapshot, ...(from !== undefined ? { from } : {}), intermediates, flags, zstd: tools.has('--zstd'), mbuffer: tools.has('--mbuffer') };
    }
    case 'hold': {
      const id = leaseId(args[0]);
      const ttl = args[1];
      if (ttl === undefined) refuse(`hold needs a ttl in seconds (usage: ${PROTOCOL.hold})`);
      noMore('hold', args.slice(2));
      if (!/^[0-9]{1,9}$/.test(ttl)) refuse(`ttl ${printable(ttl)} is not a whole number of seconds`);
      const ttlSeconds = Number(ttl);
      if (ttlSeconds < 1 || ttlSeconds > policy.maxLeaseSeconds) refuse(`ttl must be 1..${policy.maxLeaseSeconds} seconds (got ${ttlSeconds})`);
      return { verb, id, ttlSeconds };
    }
    case 'release': {
      const id = leaseId(args[0]);
      noMore('release', args.slice(1));
      return { verb, id };
    }
    case 'prune': {
      if (args.length === 1 && args[0] === '--dry-run') return { verb, dryRun: true };
      if (policy.appendOnly === true)
        refuse(
          'prune is refused: this key is append-only on this box (appendOnly); the box prunes by its own timer and policy (prune --dry-run shows what it would do)',
        );
      noMore('prune', args);
      return { verb, dryRun: false };
    }
    default:
      return refuse(`unknown verb ${printable(verb ?? '', 40)} (allowed: ${VERBS.join(', ')})`);
  }
}

/** Parses SSH_ORIGINAL_COMMAND. Never throws. */
export function parseCommand(original: string | undefined, policy: CommandPolicy): Parsed {
  try {
    if (original === undefined) refuse('no command (SSH_ORIGINAL_COMMAND is not set): interactive logins are refused');
    return { ok: true, request: parseTokens(tokenize(original), policy) };
  } catch (e) {
    if (e instanceof Refusal) return { ok: false, reason: e.message };
    return { ok: false, reason: `internal error while parsing: ${(e as Error).message}` };
  }
}
