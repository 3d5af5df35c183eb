// Several commands in one round trip: one `sh -c` runs them in order and marks each one's stdout, stderr and exit
// status, so a caller gets the same CommandResult per command as from separate runs. Over SSH that is one session
// instead of one per command (each session costs a client process, a channel, and a login shell on the box).
import { randomBytes } from 'node:crypto';
import { HozoError } from '../errors.js';
import { shellJoin } from './quote.js';
import type { CommandResult, RunOptions, Runner } from './runner.js';

export interface BatchCommand {
  readonly name: string;
  readonly argv: readonly string[];
}

/**
 * POSIX sh. Each command runs with stdin from /dev/null; its stdout goes straight out, its stderr is captured and
 * printed after it, then its status. Markers carry a random token and start on a line of their own, so no output
 * can fake one.
 */
export function batchScript(commands: readonly BatchCommand[], token: string): string {
  const lines = [
    'exec 3>&1 </dev/null',
    // $1: index; the rest: the command. `2>&1 1>&3` inside $(): stderr into the variable, stdout to the real stdout.
    `s() { i=$1; shift; printf '\\n@@@${token} %s out\\n' "$i"; e=$("$@" 2>&1 1>&3); r=$?; printf '\\n@@@${token} %s err\\n%s' "$i" "$e"; printf '\\n@@@${token} %s rc %s\\n' "$i" "$r"; }`,
    ...commands.map((c, i) => `s ${i} ${shellJoin(c.argv)}`),
  ];
  return lines.join('\n');
}

/** Pure: the batch's output → one result per command, by name. A command the output does not finish is missing. */
export function parseBatch(output: string, commands: readonly BatchCommand[], token: string): Map<string, CommandResult> {
  const results = new Map<string, CommandResult>();
  const marker = new RegExp(`\\n@@@${token} (\\d+) (out|err|rc)(?: (\\d+))?\\n`, 'g');
  const parts: { index: number; kind: string; rc?: string; start: number; end: number }[] = [];
  for (const m of output.matchAll(marker)) {
    parts.push({ index: Number(m[1]), kind: m[2]!, ...(m[3] !== undefined ? { rc: m[3] } : {}), start: m.index, end: m.index + m[0].length });
  }
  for (let p = 0; p + 2 < parts.length; p++) {
    const [out, err, rc] = [parts[p]!, parts[p + 1]!, parts[p + 2]!];
    if (out.kind !== 'out' || err.kind !== 'err' || rc.kind !== 'rc' || out.index !== err.index || err.index !== rc.index) continue;
    const command = commands[out.index];
    if (command === undefined) continue;
    const stderr = output.slice(err.end, rc.start);
    results.set(command.name, {
      stdout: output.slice(out.end, err.start),
      stderr: stderr === '' ? '' : stderr + '\n',
      exitCode: Number(rc.rc),
    });
    p += 2;
  }
  return results;
}

/** Runs `commands` on `runner`'s host in one command; rejects only if the batch itself could not run or was cut. */
export async function runBatch(runner: Runner, commands: readonly BatchCommand[], opts: RunOptions = {}): Promise<Map<string, CommandResult>> {
  const token = randomBytes(6).toString('hex');
  const r = await runner.run(['sh', '-c', batchScript(commands, token)], opts);
  const results = parseBatch(r.stdout, commands, token);
  const missing = commands.filter((c) => !results.has(c.name));
  if (missing.length > 0) {
    throw new HozoError(
      'ZFS_UNKNOWN',
      `${runner.name}: a batch of commands stopped before ${missing.map((c) => c.name).join(', ')} (exit ${r.exitCode ?? 'signal'}): ${r.stderr.trim().split('\n')[0] ?? ''}`,
      {
        hint: 'a command hung or the connection dropped; retry, and check the host',
      },
    );
  }
  return results;
}
