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
    expect(formatPath(['hosts', 'h'.repeat(300), 'address'])).toBe(`hosts["${'h'.repeat(60)}"… (300 characters)].address`);
    expect(shown('x'.repeat(100))).toBe(`"${'x'.repeat(60)}"… (100 characters)`);
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
    // IPv4-mapped IPv6 spellings of the limited broadcast, 0.0.0.0 or any IPv4 address: refused, the IPv4 form named.
    for (const [a, v4] of [
      [`::ffff:${LIMITED_BROADCAST}`, LIMITED_BROADCAST],
      ['[::ffff:ffff:ffff]', LIMITED_BROADCAST],
      ['0:0:0:0:0:ffff:0.0.0.0', '0.0.0.0'],
      ['::FFFF:c0a8:1ff', '192.168.1.255'],
    ]) {
      expect(wakeAddressProblem(a!), a).toContain(`write the IPv4 address itself (${v4})`);
      expect(hostAddressProblem(a!), a).toBeDefined();
    }
    expect(wakeAddressProblem('fe80::1')).toBeUndefined();
    expect(hostAddressProblem('::1')).toBeUndefined();
  });
});

// Issue 12, the red-team classes: one helper for user text in messages, bounded reads and work, address rules.
import { escapeUnsafe, shownName, shownPath } from '../../src/config/shown.js';
import { macProblem } from '../../src/config/addresses.js';
import { MAX_CONFIG_ENTRIES, entriesProblem, jsonErrorWords, readBounded, valuesOver } from '../../src/config/read.js';
import { parseYamlConfig } from '../../src/config/yaml.js';
import { parseConfigData } from '../../src/config/load.js';
import { VirtualPathError, directoryInUseProblem, ensureDirectory, logFileProblem, openForAppend, writablePathProblem } from '../../src/util/safe-fs.js';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const RAW = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

describe('user text in messages (src/config/shown.ts)', () => {
  it.each([
    ['a\nb', '"a\\nb"'],
    ['x\x1b[31mred', '"x\\x1b[31mred"'],
    ['right\u202eleft', '"right\\u202eleft"'],
    ['iso\u2066x\u2069', '"iso\\u2066x\\u2069"'],
    ['c1\u0085\u009b', '"c1\\x85\\x9b"'],
    ['lone\udfff\ud800', '"lone\\udfff\\ud800"'],
    ['pair\u{1f600}', '"pair\u{1f600}"'],
    ['q"b\\', '"q\\"b\\\\"'],
    ['\u0000', '"\\x00"'],
  ])('shownName(%j) is %s', (input, out) => {
    expect(shownName(input)).toBe(out);
    expect(shownName(input)).not.toMatch(RAW);
  });
  it('cuts a long value at 200 characters and says how long it was', () => {
    expect(shownName('a'.repeat(100_000))).toBe(`"${'a'.repeat(200)}"… (100000 characters)`);
    // A surrogate pair is never cut in half.
    expect(shownName('a'.repeat(199) + '\u{1f600}' + 'b'.repeat(10))).toBe(`"${'a'.repeat(199)}"… (211 characters)`);
  });
  it('shownPath leaves a plain path alone and quotes anything else', () => {
    expect(shownPath('/etc/hozo/config.json')).toBe('/etc/hozo/config.json');
    expect(shownPath('/tmp/a b')).toBe('"/tmp/a b"');
    expect(shownPath('/tmp/\x1b[31mx\ny')).toBe('"/tmp/\\x1b[31mx\\ny"');
    expect(shownPath('')).toBe('""');
    expect(escapeUnsafe('keep\nnothing\u202e')).toBe('keep\\nnothing\\u202e');
  });
  it('shown() values: non-finite numbers by name, strings escaped', () => {
    expect(shown(Infinity)).toBe('Infinity');
    expect(shown(-Infinity)).toBe('-Infinity');
    expect(shown(NaN)).toBe('NaN');
    expect(shown('\u202e')).toBe('"\\u202e"');
  });
});

describe('addresses (src/config/addresses.ts)', () => {
  it.each([
    ':::',
    ':::::',
    '[::1',
    '::1]',
    '1.2.3.4:22',
    'box.lan:2222',
    '0x7f.1',
    '0x7f000001',
    '2130706433',
    '127.1',
    'a..b',
    '-box',
    'box-',
    'bo_x',
    'box.lan.',
    '',
    '::',
    '[::]',
    'a b',
  ])('host address %j is refused', (a) => {
    expect(hostAddressProblem(a), a).toBeDefined();
  });
  it('says what is wrong: a port, a bracket', () => {
    expect(hostAddressProblem('1.2.3.4:22')).toMatch(/put the port in `port`/);
    expect(hostAddressProblem('[::1')).toMatch(/unbalanced bracket/);
  });
  it.each(['localhost', 'box', 'box.lan', 'b-1.example.org', '10.0.0.2', '::1', '[::1]', 'fe80::1', '2001:db8::2'])('host address %j is accepted', (a) => {
    expect(hostAddressProblem(a), a).toBeUndefined();
  });
  it.each(['ff02::1', 'ff05::2', '224.0.0.1', '239.255.255.250', 'localhost', 'box.lan', ':::::', '0.0.0.0', LIMITED_BROADCAST])(
    'wake address %j is refused',
    (a) => {
      expect(wakeAddressProblem(a), a).toBeDefined();
    },
  );
  it.each(['192.168.1.255', '10.0.0.2', 'fe80::1', '2001:db8::ff'])('wake address %j is accepted', (a) => {
    expect(wakeAddressProblem(a), a).toBeUndefined();
  });
  it("a MAC must be a NIC's: not broadcast, not zero, not multicast", () => {
    expect(macProblem('ff:ff:ff:ff:ff:ff')).toMatch(/broadcast/);
    expect(macProblem('00:00:00:00:00:00')).toMatch(/zeros/);
    expect(macProblem('01:00:5e:00:00:01')).toMatch(/multicast/);
    expect(macProblem('52:54:00:7a:0b:01')).toBeUndefined();
    expect(macProblem('52-54-00-7A-0B-01')).toBeUndefined();
  });
});

describe('bounded reads and work', () => {
  it('a procfs file (it reports size 0) is read whole', () => {
    const b = readBounded('/proc/self/status', 'config');
    expect(b.length).toBeGreaterThan(100);
    expect(b.toString()).toMatch(/^Name:/);
  });
  it('/proc/self/mem, an empty path and a NUL in the path are refused in words', () => {
    expect(() => readBounded('/proc/self/mem', 'config')).toThrow(/input\/output error/);
    expect(() => readBounded('', 'config')).toThrow(/config: an empty path/);
    expect(() => readBounded('/tmp/a\0b', 'config')).toThrow(/NUL byte/);
    expect(() => readBounded('/tmp/\x1b[31mno\nsuch', 'config')).toThrow(/"\/tmp\/\\x1b\[31mno\\nsuch": no such file/);
  });
  it('the agent is told about --config only (no HOZO_CONFIG, JSON)', () => {
    expect(() => readBounded('/nonexistent/agent.json', 'agent config')).toThrow(HozoError);
    try {
      readBounded('/dev/null', 'agent config');
    } catch (e) {
      expect((e as HozoError).hint).toMatch(/JSON file/);
      expect((e as HozoError).hint).not.toMatch(/YAML/);
    }
  });
  it('counts entries and values before anything expensive runs', () => {
    expect(entriesProblem('a: 1\n'.repeat(MAX_CONFIG_ENTRIES + 1))).toMatch(/more than 50000 entries/);
    expect(entriesProblem('a: 1\n'.repeat(1000))).toBeUndefined();
    expect(valuesOver(new Array(10).fill(0), 5)).toBe(true);
    expect(valuesOver({ a: [1, 2] }, 5)).toBe(false);
  });
  it('JSON syntax errors are given as line and column', () => {
    const at = (t: string) => {
      try {
        JSON.parse(t);
      } catch (e) {
        return jsonErrorWords(e, t);
      }
      return 'parsed';
    };
    expect(at('{"jobs": [],}')).toBe('line 1, column 13: expected double-quoted property name');
    expect(at('{\n  "a": x\n}')).toMatch(/^line 2, column 8: unexpected token/);
    expect(at('{"a": 1')).toMatch(/^line 1, column 8:/);
    expect(at('')).toBe('line 1, column 1: the file ends in the middle of a value');
    expect(at('{"a": "\u0001"}')).not.toMatch(RAW);
  });
});

describe('YAML configs (src/config/yaml.ts): linear, bounded, in hozo words', () => {
  const y = (text: string) => {
    try {
      return parseYamlConfig(text, 'c.yaml');
    } catch (e) {
      expect(e).toBeInstanceOf(HozoError);
      return (e as HozoError).message;
    }
  };
  it('45,000 keys are checked for duplicates in well under a second or two (the library took 10 s for 40,000)', () => {
    const many = Array.from({ length: 45_000 }, (_, i) => `k${i}: 1\n`).join('');
    const t = Date.now();
    expect(y(many + 'k7: 2\n')).toMatch(/c\.yaml: line 45001, column 1: key "k7" appears twice/);
    expect(Date.now() - t).toBeLessThan(5000);
  });
  it('a duplicate key is named by its path and line', () => {
    expect(y('hosts:\n  a: {address: x}\n  a: {address: y}\n')).toMatch(/line 3, column 3: key "hosts\.a" appears twice/);
    expect(y('jobs:\n  - {name: a, name: b}\n')).toMatch(/key "jobs\[0\]\.name" appears twice/);
  });
  it('several documents, merge keys, alias bombs and loops, unknown anchors: refused with a line', () => {
    expect(y('a: 1\n---\nb: 2\n')).toMatch(/^c\.yaml: line 2, column 1: expected one YAML document, found several \(a line with --- starts another\)$/);
    expect(y('base: &b {port: 22}\nhosts:\n  x:\n    <<: *b\n')).toMatch(/line 4, column 5: YAML merge keys \(<<\) are not supported; write the fields out/);
    let bomb = 'a: &a [x,x,x,x,x,x,x,x,x,x]\n';
    for (const [l, p] of [
      ['b', 'a'],
      ['c', 'b'],
      ['d', 'c'],
      ['e', 'd'],
      ['f', 'e'],
      ['g', 'f'],
    ])
      bomb += `${l}: &${l} [${Array(10).fill(`*${p}`).join(',')}]\n`;
    expect(y(bomb)).toMatch(/line \d+, column \d+: too many alias references \(\*[a-g] expands to \d+ values/);
    expect(y('a: &a\n  b: *a\n')).toMatch(/inside its own anchor \(a loop\)/);
    expect(y('a: *nowhere\n')).toMatch(/line 1, column 4: the alias \*nowhere names no anchor/);
    const aliases = 'a: &a 1\n' + Array.from({ length: 120 }, (_, i) => `k${i}: *a\n`).join('');
    expect(y(aliases)).toMatch(/too many alias references \(\*a is the 101th\)/);
  });
  it('syntax errors say "cannot parse YAML at line L, column C" in words, never the library\'s API', () => {
    expect(y('hosts: {a: [}\n')).toMatch(/^c\.yaml: cannot parse YAML at line 1, column \d+: a \[ or \{ is not closed/);
    expect(y('a:\n\t- x\n')).toMatch(/cannot parse YAML at line 2, column 1: a tab used for indentation/);
    for (const t of ['a: 1\n---\nb: 2\n', 'a: b: c\n', 'a: "\\q"\n']) expect(y(t)).not.toMatch(/parseAllDocuments|YAML\.|Excessive/);
    // The library's token names never reach the user.
    expect(y('a: 1\n}\n')).toMatch(/line 2, column 1: unexpected "\}" here$/);
    expect(y(']\n')).toMatch(/unexpected "\]" here$/);
    expect(y('a: [1,,2]\n')).toMatch(/unexpected "," inside \[ \] here$/);
    expect(y('a:\n  - x\n  y: 1\n')).toMatch(/line 3, column 1: an indentation that does not line up/);
    for (const t of ['a: 1\n}\n', ']\n', '{a: 1}}\n', 'a:\n  - x\n  y: 1\n', 'a: {b: 1,, c: 2}\n', '- a\nb: 1\n', 'a: b\n- c\n'])
      expect(y(t), t).not.toMatch(/[a-z]+-[a-z]+-[a-z]+|token|YAML stream|All mapping items/);
  });
  it('an empty or null key is named as such (not hosts[""]); a duplicate key carries its key path as the problem path', () => {
    expect(y('hosts:\n  ~: {address: a}\n')).toMatch(/^c\.yaml: line 2, column 3: hosts has an empty key \(or ~, YAML's null\); expected a name$/);
    expect(y('null: 1\n')).toMatch(/the top level has an empty key/);
    expect(y('hosts:\n  "": {address: a}\n')).toMatch(/hosts has an empty key/);
    let e: HozoError | undefined;
    try {
      parseYamlConfig('hosts:\n  box: {address: a}\n  box: {address: b}\n', 'c.yaml');
    } catch (x) {
      e = x as HozoError;
    }
    expect(e?.problems).toEqual([{ path: 'hosts.box', message: 'line 3, column 3: key "hosts.box" appears twice (YAML would keep only one)' }]);
  });
  it('an ordinary config parses as before; an empty one is null', () => {
    expect(y('stateDirectory: /tmp/x\njobs: []\n')).toEqual({ stateDirectory: '/tmp/x', jobs: [] });
    expect(y('')).toBeNull();
    expect(y('# only a comment\n')).toBeNull();
  });
  it('JSON: more values than a config has are refused before the schema runs', () => {
    const big = JSON.stringify({ jobs: new Array(400_000).fill(0) });
    expect(() => parseConfigData(big, 'c.json')).toThrow(/more than 300000 values/);
  });
});

describe('paths hozo writes (src/util/safe-fs.ts)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hozo-safefs-'));
  it.each(['//proc/1/x', '/tmp/../proc/1/x', '/./proc/x', '/proc', '///sys/x/', '/dev/null/x', '/tmp/a\0b', 'relative/x', '/tmp/a\nb', '/tmp/\u202ex'])(
    'writable path %j is refused',
    (p) => {
      expect(writablePathProblem(p), p).toBeDefined();
    },
  );
  it.each(['/var/lib/hozo', '/tmp/x/', '/processes', '/device/x', '/srv//hozo'])('writable path %j is accepted', (p) => {
    expect(writablePathProblem(p), p).toBeUndefined();
  });
  it('a symlink into /proc is refused where the path is used, at once, and nothing is created', () => {
    const link = join(dir, 'proclink');
    symlinkSync('/proc/1', link);
    const t = Date.now();
    expect(() => ensureDirectory(join(link, 'a', 'b'))).toThrow(VirtualPathError);
    expect(directoryInUseProblem(join(link, 'a'))).toMatch(/resolves to \/proc\/1/);
    expect(Date.now() - t).toBeLessThan(1000);
  });
  it('creates missing levels one by one; a file in the way is EEXIST / ENOTDIR', () => {
    ensureDirectory(join(dir, 'x', 'y', 'z'));
    expect(statSync(join(dir, 'x', 'y', 'z')).isDirectory()).toBe(true);
    writeFileSync(join(dir, 'f'), '');
    expect(() => ensureDirectory(join(dir, 'f'))).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    expect(() => ensureDirectory(join(dir, 'f', 'g'))).toThrow(expect.objectContaining({ code: 'ENOTDIR' }));
  });
  it('a FIFO as log file is refused without blocking; a regular file is appended to', () => {
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    expect(logFileProblem(fifo)).toMatch(/FIFO/);
    expect(() => openForAppend(fifo)).toThrow(/FIFO/);
    expect(logFileProblem('/dev/null')).toMatch(/character device/);
    expect(logFileProblem(join(dir, 'new.log'))).toBeUndefined();
    expect(existsSync(join(dir, 'new.log'))).toBe(false);
  });
  it('cleans up', () => {
    rmSync(dir, { recursive: true, force: true });
  });
});
