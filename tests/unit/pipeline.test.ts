import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { blameStage, runPipeline } from '../../src/pipeline/pipeline.js';
import { HozoError } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'hozo-pipe-'));
const input = join(dir, 'in.bin');
const data = Buffer.alloc(8 * 1024 * 1024);
for (let i = 0; i < data.length; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i);
writeFileSync(input, data);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('runPipeline (real processes)', () => {
  it('moves every byte process to process and counts them with pv', async () => {
    const out = join(dir, 'out.bin');
    const r = await runPipeline(
      [
        { name: 'send', argv: ['cat', input] },
        { name: 'count', argv: ['pv', '-f', '-n', '-b', '-i', '1'] },
        { name: 'receive', argv: ['sh', '-c', `cat > ${out}`] },
      ],
      { counterStage: 1 },
    );
    expect(sha(readFileSync(out))).toBe(sha(data));
    expect(r.bytes).toBe(data.length);
  });

  it('names the receiving stage when it fails and the sender only got a broken pipe', async () => {
    const err = await runPipeline([
      { name: 'send', argv: ['cat', input] },
      { name: 'receive', argv: ['sh', '-c', 'head -c 10 >/dev/null; echo "cannot receive: destination modified" >&2; exit 1'] },
    ]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HozoError);
    expect((err as HozoError).code).toBe('PIPELINE_FAILED');
    expect((err as HozoError).message).toContain('stage "receive"');
    expect((err as HozoError).message).toContain('destination modified');
  });

  it('names the sending stage when it fails first', async () => {
    const err = (await runPipeline([
      { name: 'send', argv: ['sh', '-c', 'echo "cannot open tank/x@a: dataset does not exist" >&2; exit 1'] },
      { name: 'receive', argv: ['sh', '-c', 'cat >/dev/null; exit 3'] },
    ]).catch((e: unknown) => e)) as HozoError;
    expect(err.message).toContain('stage "send"');
  });

  it('reports a program that cannot start', async () => {
    const err = (await runPipeline([
      { name: 'send', argv: ['cat', input] },
      { name: 'receive', argv: ['/nonexistent/hozo-no-such-program'] },
    ]).catch((e: unknown) => e)) as HozoError;
    expect(err.code).toBe('PIPELINE_FAILED');
    expect(err.message).toContain('receive');
  });

  it('blameStage prefers the real failure over SIGPIPE casualties', () => {
    const s = blameStage([
      { name: 'send', pid: 1, exitCode: null, signal: 'SIGPIPE', stderr: '' },
      { name: 'recv', pid: 2, exitCode: 1, signal: null, stderr: 'boom' },
    ]);
    expect(s?.name).toBe('recv');
    expect(
      blameStage([
        { name: 'send', pid: 1, exitCode: null, signal: 'SIGABRT', stderr: 'internal error: Connection reset by peer' },
        { name: 'count', pid: 2, exitCode: 1, signal: null, stderr: 'pv: write failed: Broken pipe' },
        { name: 'ssh', pid: 3, exitCode: null, signal: 'SIGKILL', stderr: '' },
      ])?.name,
    ).toBe('ssh');
    expect(
      blameStage([
        { name: 'send', pid: 1, exitCode: 1, signal: null, stderr: "cannot open 'tank/x@a': dataset does not exist" },
        { name: 'recv', pid: 2, exitCode: 1, signal: null, stderr: 'cannot receive: failed to read from stream' },
      ])?.name,
    ).toBe('send');
    expect(blameStage([{ name: 'a', pid: 3, exitCode: 0, signal: null, stderr: '' }])).toBeUndefined();
  });
});
