// Runs processes connected stdout→stdin. Each child's stdout is handed to the next child as its stdin, so the
// kernel moves the bytes; no stream data ever passes through JavaScript.
import { spawn, type ChildProcess } from 'node:child_process';
import { HozoError } from '../errors.js';

export interface Stage {
  /** Shown in errors: "send", "count", "ssh+receive". */
  readonly name: string;
  readonly argv: readonly string[];
}

export interface StageOutcome {
  readonly name: string;
  readonly pid: number | undefined;
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
  readonly spawnError?: string;
}

export interface PipelineOptions {
  /** Index of a stage whose stderr carries `pv -n -b` byte counts (one number per line). */
  readonly counterStage?: number;
  readonly onBytes?: (bytes: number) => void;
  readonly signal?: AbortSignal;
}

export interface PipelineResult {
  readonly seconds: number;
  /** Bytes that passed the counter stage, when there is one. */
  readonly bytes: number | undefined;
  readonly stages: readonly StageOutcome[];
}

/** A failed pipeline, with every stage's outcome (pids included) for cleanup. */
export class PipelineError extends HozoError {
  readonly stages: readonly StageOutcome[];
  constructor(stages: readonly StageOutcome[], message: string, hint: string) {
    super('PIPELINE_FAILED', message, { hint });
    this.stages = stages;
  }
}

const STDERR_LIMIT = 64 * 1024;

// How a stage fails when a neighbour died first: writers see a closed pipe (zfs-fuse's send even aborts with
// "Connection reset by peer"), readers see a truncated stream.
const CASUALTY = /broken pipe|connection reset by peer|EPIPE|failed to read from stream|invalid backup stream|unexpected end of/i;

/** The stage whose failure explains the others: the first that did not merely die of a neighbour's failure. */
export function blameStage(outcomes: readonly StageOutcome[]): StageOutcome | undefined {
  const failed = outcomes.filter((o) => o.spawnError !== undefined || o.exitCode !== 0);
  const primary = failed.filter((o) => o.spawnError !== undefined || (o.signal !== 'SIGPIPE' && !CASUALTY.test(o.stderr)));
  return primary[0] ?? failed[failed.length - 1];
}

export async function runPipeline(stages: readonly Stage[], opts: PipelineOptions = {}): Promise<PipelineResult> {
  if (stages.length === 0) throw new HozoError('INTERNAL', 'empty pipeline');
  const started = process.hrtime.bigint();
  const children: ChildProcess[] = [];
  const outcomes: Promise<StageOutcome>[] = [];
  let bytes: number | undefined;

  for (const [i, stage] of stages.entries()) {
    const prev = children[i - 1];
    const child = spawn(stage.argv[0]!, stage.argv.slice(1), {
      stdio: [prev?.stdout ?? 'ignore', i === stages.length - 1 ? 'ignore' : 'pipe', 'pipe'],
    });
    // The child now holds its own copy of the pipe; the parent's must go before the event loop reads from it.
    prev?.stdout?.destroy();
    children.push(child);
    outcomes.push(
      watch(
        stage.name,
        child,
        i === opts.counterStage
          ? (n) => {
              bytes = n;
              opts.onBytes?.(n);
            }
          : undefined,
      ),
    );
  }

  const kill = () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  };
  opts.signal?.addEventListener('abort', kill, { once: true });
  // One failed stage must not leave the others waiting forever (e.g. a receiver that died leaves ssh open).
  for (const [i, p] of outcomes.entries()) {
    void p.then((o) => {
      if (o.exitCode !== 0 && o.signal !== 'SIGPIPE')
        setTimeout(() => {
          for (const [j, c] of children.entries()) if (j !== i && c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
        }, 5000).unref();
    });
  }
  const results = await Promise.all(outcomes);
  opts.signal?.removeEventListener('abort', kill);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const culprit = blameStage(results);
  if (culprit !== undefined) {
    const why = culprit.spawnError ?? (culprit.signal ? `killed by ${culprit.signal}` : `exit ${culprit.exitCode}`);
    const msg = culprit.stderr.trim().split('\n').slice(-5).join('\n    ');
    throw new PipelineError(
      results,
      `stage "${culprit.name}" failed (${why})${msg ? ':\n    ' + msg : ''}`,
      opts.signal?.aborted ? 'the transfer was aborted' : "see the stage's message; other stages stopped because of it",
    );
  }
  return { seconds, bytes, stages: results };
}

function watch(name: string, child: ChildProcess, onCount?: (n: number) => void): Promise<StageOutcome> {
  return new Promise((resolve) => {
    let stderr = '';
    let spawnError: string | undefined;
    let pending = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      if (onCount !== undefined) {
        pending += chunk;
        const lines = pending.split('\n');
        pending = lines.pop() ?? '';
        for (const l of lines) {
          const n = Number(l.trim());
          if (l.trim() !== '' && Number.isFinite(n)) onCount(n);
          else stderr += l + '\n';
        }
        return;
      }
      stderr += chunk;
      if (stderr.length > STDERR_LIMIT) stderr = stderr.slice(-STDERR_LIMIT);
    });
    let done = false;
    child.on('error', (e) => {
      spawnError = `cannot start ${name}: ${e.message}`;
      // A child that never started emits no 'close' on every Node version.
      if (child.pid === undefined && !done) {
        done = true;
        resolve({ name, pid: undefined, exitCode: null, signal: null, stderr, spawnError });
      }
    });
    child.on('close', (code, signal) => {
      if (done) return;
      done = true;
      if (onCount !== undefined && pending.trim() !== '' && Number.isFinite(Number(pending.trim()))) onCount(Number(pending.trim()));
      resolve({ name, pid: child.pid, exitCode: spawnError !== undefined ? null : code, signal, stderr, ...(spawnError !== undefined ? { spawnError } : {}) });
    });
  });
}
