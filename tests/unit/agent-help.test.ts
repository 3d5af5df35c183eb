import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../agent/main.js';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => (out.push(String(s)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => (err.push(String(s)), true));
  return { out, err };
}

describe('hozo-agent <command> --help', () => {
  afterEach(() => vi.restoreAllMocks());
  it('each local command has its own help (exit 0); a request names itself as one for serve', async () => {
    for (const c of ['serve', 'idle-check', 'prune', 'check-config']) {
      const { out } = capture();
      expect(await main([c, '--help'])).toBe(0);
      vi.restoreAllMocks();
      expect(out.join(''), c).toMatch(new RegExp(`^usage: hozo-agent ${c}`));
    }
    const { out } = capture();
    expect(await main(['receive', '--help'])).toBe(0);
    expect(out.join('')).toMatch(/receive is a request to hozo-agent serve[\s\S]*receive \[-u\]/);
  });
  it('a usage error is the error and one line pointing at --help, not the whole usage', async () => {
    const { err } = capture();
    expect(await main(['bogus'])).toBe(2);
    expect(err.join('')).toBe('hozo-agent: unknown command "bogus"\n(hozo-agent --help for usage)\n');
  });
});
