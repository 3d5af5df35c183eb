import { describe, expect, it } from 'vitest';
import { decodeConfig, depthOf, jsonDuplicateKey, nestingProblem, protoKeyPath, MAX_CONFIG_DEPTH } from '../../src/config/read.js';
import { formatPath, shown } from '../../src/config/issues.js';
import { hostAddressProblem, ipv4Problem, wakeAddressProblem } from '../../src/config/fields.js';
import { LIMITED_BROADCAST } from '../../src/config/addresses.js';
import { HozoError } from '../../src/errors.js';

describe('reading a config: encodings, nesting, duplicate and __proto__ keys', () => {
  it('finds a duplicate key at any depth of JSON, and only in the same object', () => {
    expect(jsonDuplicateKey('{"a": 1, "a": 2}')).toBe('a');
    expect(jsonDuplicateKey('{"hosts": {"x": {"port": 1, "port": 2}}}')).toBe('hosts.x.port');
    expect(jsonDuplicateKey('{"jobs": [{"name": "a"}, {"name": "b"}]}')).toBeUndefined();
    expect(jsonDuplicateKey('{"jobs": [{"n": 1}, {"n": 2, "n": 3}]}')).toBe('jobs[1].n');
    expect(jsonDuplicateKey('{"a": "x\\"a", "b": {"a": 1}}')).toBeUndefined();
    expect(jsonDuplicateKey('{"a": 1, "\\u0061": 2}')).toBe('a');
    expect(jsonDuplicateKey('{"a": ["a", "a"]}')).toBeUndefined();
  });
  it('refuses nesting beyond the bound before parsing; real configs pass', () => {
    expect(nestingProblem('['.repeat(MAX_CONFIG_DEPTH + 1))).toMatch(/nested deeper/);
    expect(nestingProblem('{"a": [[1]], "b": {"c": {"d": [2]}}}')).toBeUndefined();
    expect(nestingProblem(`x:\n  ${'- '.repeat(100)}y`)).toMatch(/line 2: nested deeper/);
    expect(nestingProblem(`x:\n${' '.repeat(300)}y: 1`)).toMatch(/indented 300 columns/);
    expect(nestingProblem('jobs:\n  - name: a\n    datasets:\n      - {source: p/a, target: q/a}\n')).toBeUndefined();
    let deep: unknown = 1;
    for (let i = 0; i < 10_000; i++) deep = [deep];
    expect(depthOf(deep)).toBeGreaterThan(MAX_CONFIG_DEPTH);
    expect(depthOf({ a: { b: [1] } })).toBe(3);
  });
  it('UTF-8 only: a BOM is dropped, UTF-16 and invalid bytes are named', () => {
    expect(decodeConfig(Buffer.from('\ufeffa: 1', 'utf8'), 'c.yaml')).toBe('a: 1');
    expect(() => decodeConfig(Buffer.from('\ufeffa: 1', 'utf16le'), 'c.yaml')).toThrow(/UTF-16/);
    expect(() => decodeConfig(Buffer.from([0x61, 0xff, 0x62]), 'c.yaml')).toThrow(/not valid UTF-8/);
    expect(() => decodeConfig(Buffer.from('a: 1\0', 'utf8'), 'c.yaml')).toThrow(HozoError);
  });
  it('a __proto__ key anywhere is found by path', () => {
    expect(protoKeyPath(JSON.parse('{"hosts": {"b": {"wake": {"__proto__": 1}}}}'))).toBe('hosts.b.wake.__proto__');
    expect(protoKeyPath(JSON.parse('{"jobs": [{"__proto__": {}}]}'))).toBe('jobs[0].__proto__');
    expect(protoKeyPath({ a: { constructor: 1 } })).toBeUndefined();
  });
  it('messages escape control characters and quote odd keys', () => {
    expect(formatPath(['hosts', 'a\nb', 'port'])).toBe('hosts["a\\nb"].port');
    expect(formatPath(['jobs', 0, 'datasets', 1])).toBe('jobs[0].datasets[1]');
    expect(shown('x'.repeat(100))).toHaveLength(61);
    expect(shown('\u2028')).toBe('"\\u2028"');
  });
  it('addresses: IPv4 validity, DNS lengths, the limited broadcast', () => {
    for (const bad of ['999.1.1.1', '10.0.0', '1.2.3.4.5', '01.2.3.4', '1..2.3']) expect(ipv4Problem(bad), bad).toBeDefined();
    for (const good of ['10.0.0.1', '192.168.1.255', '0.0.0.0']) expect(ipv4Problem(good), good).toBeUndefined();
    expect(hostAddressProblem('0.0.0.0')).toBeDefined();
    expect(hostAddressProblem('box.lan')).toBeUndefined();
    expect(hostAddressProblem(`${'a'.repeat(64)}.lan`)).toMatch(/63/);
    expect(wakeAddressProblem(LIMITED_BROADCAST)).toMatch(/limited broadcast/);
    expect(wakeAddressProblem('192.168.1.255')).toBeUndefined();
  });
});
