import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { shellJoin, shellQuote } from '../../src/transport/quote.js';

describe('shellQuote', () => {
  it('leaves plain words alone', () => {
    expect(shellQuote('tank/services@hozo_2026-01-01')).toBe('tank/services@hozo_2026-01-01');
  });
  it('quotes spaces, quotes and metacharacters', () => {
    expect(shellQuote('a b')).toBe("'a b'");
    expect(shellQuote("it's")).toBe("'it'\\''s'");
    expect(shellQuote('')).toBe("''");
  });
  // The real test: a shell must give back exactly the argv we meant, whatever it contains.
  const hostile = ['a;rm -rf /', '$(id)', '`id`', "'", '"', '\\', 'a\nb', '*', '~root', '>x', '|cat', '&', '${HOME}', ' lead', '!x', '#c', '\t'];
  it.each(hostile)('round-trips %j through sh', (arg) => {
    const out = execFileSync('sh', ['-c', `printf '%s\\0' ${shellJoin(['x', arg])}`]).toString();
    expect(out.split('\0').slice(0, -1)).toEqual(['x', arg]);
  });
});
