// runJob's decisions with fake endpoints (fake: no ZFS, no box, no wire). The driver is what this file is about: a
// broken stream is retried and re-planned from fresh listings, a cut receive is resumed and the rest sent after it, a
// stale token is discarded and the dataset sent normally, a stream that "succeeds" without the snapshot arriving fails
// verification, and a verified base is held (the previous one released). The real pipeline, hosts and agent are
// proven on zfs-fuse (tests/integration, tests/e2e) and on OpenZFS (tests/openzfs) against the same driver.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseConfigText } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { HozoError } from '../../src/errors.js';
import type { ZfsHost } from '../../src/job/endpoint.js';
import { entryResult, mergeFollowUp, resumedAndSent, retryable, staleResumes } from '../../src/job/decide.js';
import type { JobHosts } from '../../src/job/open.js';
import type { StreamRequest } from '../../src/job/replicate.js';
import type { DatasetReport, PoolReport } from '../../src/job/report.js';
import { type RunEnds, runJob } from '../../src/job/run.js';
import type { DatasetPlan } from '../../src/planner/types.js';
import { LocalRunner } from '../../src/transport/local.js';
import { silentLogger } from '../../src/util/log.js';
import type { Dataset, Inventory, Snapshot } from '../../src/zfs/types.js';
import { testCaps } from '../helpers/caps.js';

/** One side's datasets in memory, with what the driver asked of it. */
class FakeHost implements ZfsHost {
  readonly runner = new LocalRunner();
  readonly warnings: string[] = [];
  readonly wrapsItself = false;
  readonly calls: string[] = [];
  readonly datasets = new Map<string, { snapshots: Snapshot[]; resumeToken?: string; held: Map<string, Set<string>> }>();
  constructor(
    readonly name: string,
    readonly caps = testCaps({ resumeTokens: true }),
  ) {}
  add(ds: string, ...snaps: Snapshot[]): this {
    this.datasets.set(ds, { snapshots: [...snaps], held: new Map() });
    return this;
  }
  sendCommand(): string[] {
    return ['fake-send'];
  }
  async estimate(): Promise<number | undefined> {
    return 1000;
  }
  receiveCommand(): string[] {
    return ['fake-receive'];
  }
  async inventory(roots: readonly string[]): Promise<Inventory> {
    this.calls.push('inventory');
    const inv = new Map<string, Dataset>();
    for (const [name, d] of this.datasets)
      if (roots.some((r) => name === r || name.startsWith(`${r}/`)))
        inv.set(name, {
          name,
          type: 'filesystem',
          snapshots: d.snapshots.map((s) => ({ ...s, userrefs: [...d.held.values()].filter((tags) => tags.has(s.name)).length })),
          ...(d.resumeToken !== undefined ? { resumeToken: d.resumeToken } : {}),
        });
    return inv;
  }
  async rollback(snapshot: string): Promise<void> {
    this.calls.push(`rollback ${snapshot}`);
  }
  async hold(tag: string, snapshot: string): Promise<void> {
    this.calls.push(`hold ${tag} ${snapshot}`);
    const [ds, snap] = snapshot.split('@') as [string, string];
    const d = this.datasets.get(ds)!;
    d.held.set(tag, new Set([...(d.held.get(tag) ?? []), snap]));
  }
  async release(tag: string, snapshot: string): Promise<void> {
    this.calls.push(`release ${tag} ${snapshot}`);
    const [ds, snap] = snapshot.split('@') as [string, string];
    this.datasets.get(ds)?.held.get(tag)?.delete(snap);
  }
  async bookmark(): Promise<void> {}
  async destroyBookmark(): Promise<void> {}
  async abortReceive(target: string): Promise<void> {
    this.calls.push(`abort ${target}`);
    const d = this.datasets.get(target);
    if (d !== undefined) delete d.resumeToken;
  }
  async releaseSendHolds(): Promise<void> {}
  async poolHealth(pools: readonly string[]): Promise<PoolReport[]> {
    return pools.map((name) => ({ name, health: 'ONLINE' }));
  }
  async listAndHealth(roots: readonly string[], pools: readonly string[]) {
    return { inventory: await this.inventory(roots), pools: await this.poolHealth(pools) };
  }
}

const snap = (name: string, guid: string, txg: number): Snapshot => ({ name, guid, createtxg: txg, creation: 1_700_000_000 + txg });
const A = snap('a', '101', 1);
const B = snap('b', '102', 2);
const C = snap('c', '103', 3);

/** What the fake wire does with the next stream: deliver it, or fail in one of the ways real streams fail. */
type Outcome = 'ok' | 'broken' | { cut: string } | 'stale-token' | 'lies';

/** Moves snapshots from the source's memory to the target's, as `zfs send | zfs receive` would. */
function fakeWire(outcomes: Outcome[], log: string[]) {
  return async ({ plan, step, source, target }: StreamRequest): Promise<number> => {
    const outcome = outcomes.shift() ?? 'ok';
    const src = (source as FakeHost).datasets.get(plan.source)!;
    const dst = target as FakeHost;
    log.push(
      step.kind === 'full'
        ? `full @${step.snapshot.name}`
        : step.kind === 'incremental'
          ? `${step.intermediates ? 'I' : 'i'} @${step.from.name}→@${step.to.name}`
          : `resume ${step.token}`,
    );
    if (outcome === 'broken') throw new HozoError('PIPELINE_FAILED', 'ssh: Connection reset by peer');
    if (outcome === 'stale-token') throw new HozoError('PIPELINE_FAILED', 'zfs send: cannot resume send: snapshot used in the initial send no longer exists');
    if (typeof outcome === 'object') {
      dst.datasets.set(plan.target, { snapshots: dst.datasets.get(plan.target)?.snapshots ?? [], resumeToken: outcome.cut, held: new Map() });
      throw new HozoError('PIPELINE_FAILED', 'ssh: Connection reset by peer (cut)');
    }
    if (outcome === 'lies') return 10;
    const have = dst.datasets.get(plan.target) ?? { snapshots: [], held: new Map() };
    let arriving: Snapshot[];
    if (step.kind === 'full') arriving = [step.snapshot];
    else if (step.kind === 'incremental') {
      const from = src.snapshots.findIndex((s) => s.guid === step.from.guid);
      const to = src.snapshots.findIndex((s) => s.guid === step.to.guid);
      arriving = step.intermediates ? src.snapshots.slice(from + 1, to + 1) : [step.to];
    } else arriving = [src.snapshots.find((s) => s.name === step.token)!]; // the fake token names its snapshot
    delete have.resumeToken;
    dst.datasets.set(plan.target, { ...have, snapshots: [...have.snapshots, ...arriving] });
    return 1000 * arriving.length;
  };
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hozo-driver-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function config(job: string): Config {
  return parseConfigText(
    `stateDirectory: ${dir}\nhosts: {}\njobs:\n  - name: j\n    host: local\n    retryDelay: 1\n${job}    datasets:\n      - { source: tank/data, target: backup/data }\n`,
    'driver.yaml',
  );
}

/** runJob with both ends and the wire faked; the sleeps between retries are recorded, not slept. */
async function drive(source: FakeHost, target: FakeHost, outcomes: Outcome[], jobYaml = '') {
  const streams: string[] = [];
  const sleeps: number[] = [];
  const ends: RunEnds = {
    open: async (): Promise<JobHosts> => ({ source, target, session: undefined, close: async () => undefined }),
    local: async () => {
      throw new Error('not used: no own snapshots in these jobs');
    },
    stream: fakeWire(outcomes, streams),
  };
  const c = config(jobYaml);
  const report = await runJob(c, c.jobs[0]!, { log: silentLogger, ends, sleep: async (ms) => void sleeps.push(ms) });
  return { report, d: report.datasets[0]!, streams, sleeps };
}

describe('runJob with fake endpoints (fake: no ZFS; the driver decisions)', () => {
  it('full then incremental to an empty target; the newest is verified by guid and held', async () => {
    const source = new FakeHost('local').add('tank/data', A, B, C);
    const target = new FakeHost('box').add('backup');
    const { report, d, streams } = await drive(source, target, []);
    expect(streams).toEqual(['full @a', 'I @a→@c']);
    expect(d).toMatchObject({ result: 'sent', verified: true, newest: 'c', held: 'c', snapshotsSent: ['a', 'b', 'c'] });
    expect(source.calls).toContain('hold hozo:j tank/data@c');
    expect(report.result).toBe('ok');
  });

  it('a broken stream is retried after retryDelay, re-planned from fresh listings, and then sent', async () => {
    const source = new FakeHost('local').add('tank/data', A, B, C);
    const target = new FakeHost('box').add('backup/data', A);
    const { d, streams, sleeps } = await drive(source, target, ['broken']);
    expect(streams).toEqual(['I @a→@c', 'I @a→@c']);
    expect(sleeps).toEqual([1000]);
    expect(d).toMatchObject({ result: 'sent', verified: true, held: 'c' });
  });

  it('gives up after `retries` attempts: the dataset fails with PIPELINE_FAILED and nothing is held', async () => {
    const source = new FakeHost('local').add('tank/data', A, B);
    const target = new FakeHost('box').add('backup/data', A);
    const { report, d, streams, sleeps } = await drive(source, target, ['broken', 'broken', 'broken'], '    retries: 2\n');
    expect(streams).toHaveLength(3);
    expect(sleeps).toEqual([1000, 1000]);
    expect(d.result).toBe('failed');
    expect(d.error?.code).toBe('PIPELINE_FAILED');
    expect(source.calls.filter((c) => c.startsWith('hold'))).toEqual([]);
    expect(report.result).toBe('failed');
  });

  it('a definitive zfs error is not retried', async () => {
    const source = new FakeHost('local').add('tank/data', A, B);
    const target = new FakeHost('box').add('backup/data', A);
    const wire = fakeWire([], []);
    let calls = 0;
    const c = config('');
    const report = await runJob(c, c.jobs[0]!, {
      log: silentLogger,
      sleep: async () => undefined,
      ends: {
        open: async () => ({ source, target, session: undefined, close: async () => undefined }),
        local: async () => {
          throw new Error('unused');
        },
        stream: async (r) => {
          calls++;
          if (calls === 1) throw new HozoError('ZFS_NO_SPACE', 'zfs receive: out of space');
          return wire(r);
        },
      },
    });
    expect(calls).toBe(1);
    expect(report.datasets[0]).toMatchObject({ result: 'failed', error: { code: 'ZFS_NO_SPACE' } });
  });

  it('a cut receive leaves a token; the retry resumes it (send -t) and then sends the rest planned from a fresh listing', async () => {
    const source = new FakeHost('local').add('tank/data', A, B, C);
    const target = new FakeHost('box').add('backup/data', A);
    const { d, streams } = await drive(source, target, [{ cut: 'b' }], '    snapshots: latest\n');
    // latest: i a→c is cut; the token carries @c… in the fake it names @b, so the follow-up after it is b→c.
    expect(streams).toEqual(['i @a→@c', 'resume b', 'i @b→@c']);
    expect(d.plan).toMatch(/, then /);
    expect(d).toMatchObject({ result: 'sent', verified: true, newest: 'c' });
    expect(d.bytes).toBe(2000);
    expect(target.datasets.get('backup/data')!.resumeToken).toBeUndefined();
  });

  it('a stale token is discarded on the target (receive -A) and the retry plans a normal send', async () => {
    const source = new FakeHost('local').add('tank/data', A, B, C);
    const target = new FakeHost('box').add('backup/data', A);
    target.datasets.get('backup/data')!.resumeToken = 'gone';
    const { d, streams } = await drive(source, target, ['stale-token']);
    expect(target.calls).toContain('abort backup/data');
    expect(streams).toEqual(['resume gone', 'I @a→@c']);
    expect(d).toMatchObject({ result: 'sent', verified: true });
  });

  it('a stream that ends well but did not deliver the snapshot fails verification; nothing is held', async () => {
    const source = new FakeHost('local').add('tank/data', A, B);
    const target = new FakeHost('box').add('backup/data', A);
    const { report, d } = await drive(source, target, ['lies']);
    expect(d).toMatchObject({ result: 'failed', verified: false, error: { code: 'VERIFY_FAILED' } });
    expect(source.calls.filter((c) => c.startsWith('hold'))).toEqual([]);
    expect(report.result).toBe('failed');
  });

  it("the next run moves the job's hold to the new base and releases the old one", async () => {
    const source = new FakeHost('local').add('tank/data', A, B);
    const target = new FakeHost('box').add('backup/data', A);
    await source.hold('hozo:j', 'tank/data@a');
    source.calls.length = 0;
    const { d } = await drive(source, target, []);
    expect(d.held).toBe('b');
    expect(source.calls).toEqual(['inventory', 'hold hozo:j tank/data@b', 'release hozo:j tank/data@a']);
  });

  it('a no-op run streams nothing and holds what is already held', async () => {
    const source = new FakeHost('local').add('tank/data', A, B);
    const target = new FakeHost('box').add('backup/data', A, B);
    const { d, streams } = await drive(source, target, []);
    expect(streams).toEqual([]);
    expect(d).toMatchObject({ result: 'up-to-date', verified: true, held: 'b' });
  });
});

describe('the decisions between rounds (pure)', () => {
  const full: DatasetPlan = {
    source: 's',
    target: 't',
    action: 'send',
    base: undefined,
    steps: [{ kind: 'full', snapshot: A }],
    rollbackTo: undefined,
    createParent: undefined,
  };
  const resume: DatasetPlan = { ...full, steps: [{ kind: 'resume', token: 'x' }] };
  const rep = (result: DatasetReport['result'], code?: string, message = ''): DatasetReport => ({
    source: 's',
    target: 't',
    result,
    snapshotsSent: [],
    seconds: 1,
    verified: false,
    plan: 'p',
    ...(code !== undefined ? { error: { code, message } } : {}),
  });

  it('retryable: only broken streams', () => {
    expect(retryable([0, 1, 2, 3], [rep('failed', 'PIPELINE_FAILED'), rep('failed', 'ZFS_PERMISSION'), rep('sent'), rep('conflict', 'CONFLICT_X')])).toEqual([
      0,
    ]);
  });

  it('staleResumes: a failed resume whose error says the token cannot be used; not a failed full send, not another failure', () => {
    const plans = [resume, full, resume, resume];
    const reports = [
      rep('failed', 'PIPELINE_FAILED', 'cannot resume send: used in the initial send no longer exists'),
      rep('failed', 'PIPELINE_FAILED', 'resume token is corrupt'),
      rep('failed', 'PIPELINE_FAILED', 'Connection reset by peer'),
      rep('sent'),
    ];
    expect(staleResumes([0, 1, 2, 3], plans, reports)).toEqual([0]);
    expect(resumedAndSent([0, 1, 2, 3], plans, reports)).toEqual([3]);
  });

  it('mergeFollowUp: a resume with nothing after it counts as sent; bytes and seconds add up', () => {
    const before = { ...rep('sent'), bytes: 5, plan: 'resume' };
    const after = { ...rep('up-to-date'), plan: 'up-to-date @c' };
    mergeFollowUp(before, after);
    expect(after).toMatchObject({ result: 'sent', bytes: 5, seconds: 2, plan: 'resume, then up-to-date @c' });
  });

  it('entryResult: failed beats sent beats up-to-date', () => {
    expect(entryResult([rep('sent'), rep('conflict')])).toBe('failed');
    expect(entryResult([rep('up-to-date'), rep('sent')])).toBe('sent');
    expect(entryResult([rep('up-to-date')])).toBe('up-to-date');
  });
});
