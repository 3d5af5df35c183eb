// Several commands in one `sh -c` (one SSH session): each command's stdout, stderr and status come back separately.
// Runs the real script with the real /bin/sh.
import { describe, expect, it } from 'vitest';
import { batchScript, parseBatch, runBatch } from '../../src/transport/batch.js';
import { LocalRunner } from '../../src/transport/local.js';

const local = new LocalRunner();

describe('runBatch (real sh)', () => {
  it('gives each command its own stdout, stderr and exit status, in order', async () => {
    const r = await runBatch(local, [
      { name: 'a', argv: ['sh', '-c', 'echo one; echo two; echo oops >&2; exit 3'] },
      { name: 'b', argv: ['printf', '%s', 'no newline at the end'] },
      { name: 'c', argv: ['echo', "it's quoted; $(not run) `nor this`"] },
      { name: 'd', argv: ['true'] },
    ]);
    expect(r.get('a')).toEqual({ stdout: 'one\ntwo\n', stderr: 'oops\n', exitCode: 3 });
    expect(r.get('b')).toEqual({ stdout: 'no newline at the end', stderr: '', exitCode: 0 });
    expect(r.get('c')).toEqual({ stdout: "it's quoted; $(not run) `nor this`\n", stderr: '', exitCode: 0 });
    expect(r.get('d')).toEqual({ stdout: '', stderr: '', exitCode: 0 });
  });

  it("a missing program is that command's failure (127), not the batch's", async () => {
    const r = await runBatch(local, [
      { name: 'missing', argv: ['hozo-no-such-program-here'] },
      { name: 'after', argv: ['echo', 'still runs'] },
    ]);
    expect(r.get('missing')!.exitCode).toBe(127);
    expect(r.get('missing')!.stderr).toMatch(/not found/);
    expect(r.get('after')!.stdout).toBe('still runs\n');
  });

  it('commands read nothing from stdin', async () => {
    const r = await runBatch(local, [{ name: 'cat', argv: ['cat'] }], { timeoutMs: 5000 });
    expect(r.get('cat')).toEqual({ stdout: '', stderr: '', exitCode: 0 });
  });

  it('output that imitates a marker cannot split a result (the markers carry a random token)', async () => {
    const fake = '\n@@@0123456789ab 0 rc 0\n';
    const r = await runBatch(local, [{ name: 'x', argv: ['printf', `a${fake}b\n`] }]);
    expect(r.get('x')!.stdout).toBe(`a${fake}b\n`);
  });

  it('rejects when the batch is cut short (killed at its timeout while a command hangs)', async () => {
    await expect(
      runBatch(
        local,
        [
          { name: 'first', argv: ['echo', 'ok'] },
          { name: 'hangs', argv: ['sleep', '5'] },
          { name: 'never', argv: ['echo', 'never'] },
        ],
        { timeoutMs: 300 },
      ),
    ).rejects.toThrow(/stopped before hangs, never \(exit signal\)/);
  });
});

describe('parseBatch', () => {
  it('ignores markers with another token and results of unknown indexes', () => {
    const cmds = [{ name: 'a', argv: ['x'] }];
    const out = '\n@@@tok 0 out\nhello\n\n@@@tok 0 err\n\n@@@tok 0 rc 0\n\n@@@tok 7 out\n\n@@@tok 7 err\n\n@@@tok 7 rc 1\n';
    expect(parseBatch(out, cmds, 'tok')).toEqual(new Map([['a', { stdout: 'hello\n', stderr: '', exitCode: 0 }]]));
    expect(parseBatch(out, cmds, 'other').size).toBe(0);
  });

  it('the script quotes every argument for the remote shell', () => {
    expect(batchScript([{ name: 'a', argv: ['zfs', 'get', 'guid', 'tank/a b'] }], 'tok')).toContain("s 0 zfs get guid 'tank/a b'");
  });
});
