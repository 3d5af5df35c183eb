#!/usr/bin/env node
// Config fuzzing against the built CLI: N malformed or hostile config files (mutations of a valid one, YAML and JSON),
// each given to `hozo config check` and `hozo jobs list` (and `plan`). Counts exit codes, crashes (a signal, exit
// 134, "internal error", a stack trace), hangs (no exit within 20 s) and messages without a path. Seeded: the same
// seed gives the same inputs. Nothing is woken or sent: every host address is on loopback or invalid, and a plan
// that got as far as a host would only find nothing listening there.
//   node bench/fuzz-config.mjs [N=300] [seed=1]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const HOZO = resolve(import.meta.dirname, '..', 'dist', 'bin', 'hozo', 'hozo.js');
// The value the CLI refuses as a wake address (only `config check`, `jobs list` and `plan` run here: nothing wakes).
const { LIMITED_BROADCAST } = await import(resolve(import.meta.dirname, '..', 'dist', 'src', 'config', 'addresses.js'));
const N = Number(process.argv[2] ?? 300);
let seed = Number(process.argv[3] ?? 1);
const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
const pick = (a) => a[Math.floor(rand() * a.length)];

const dir = mkdtempSync(join(tmpdir(), 'hozo-fuzz-'));
const base = () => ({
  stateDirectory: join(dir, 'state'),
  hosts: { box: { address: '127.0.0.1', port: 1, wake: { method: 'none' }, readyTimeout: 1, trust: 'trusted' } },
  jobs: [{ name: 'j', host: 'box', datasets: [{ source: 'p/a', target: 'q/a', recursive: true, exclude: ['p/a/b'] }] }],
});

const HOSTILE = [
  '__proto__',
  'constructor',
  'toString',
  'hasOwnProperty',
  'valueOf',
  'local',
  '',
  ' ',
  '\n',
  'a\nb',
  '\u0000',
  '\u202e',
  '../../etc',
  '-rf',
  '$(reboot)',
  '`id`',
  'x'.repeat(5000),
  LIMITED_BROADCAST,
  '0.0.0.0',
  '999.1.1.1',
  '10.0.0',
  '::1',
  1e308,
  -1,
  0,
  99999999999999,
  NaN,
  true,
  null,
  [],
  {},
  [[[[[]]]]],
  '1e308',
  '99999999999999d',
  '5m',
  'Mon..Fri 23:00',
  '/proc/self',
  '/dev/zero',
  '/',
  'pool/a@snap',
  'pool//a',
  'p/a',
  'q/a/b',
];

function mutate(v, depth = 0) {
  const r = rand();
  if (depth > 6 || typeof v !== 'object' || v === null) return r < 0.5 ? pick(HOSTILE) : v;
  const keys = Object.keys(v);
  const out = Array.isArray(v) ? [...v] : { ...v };
  const k = keys.length > 0 ? pick(keys) : undefined;
  if (r < 0.15 && k !== undefined) delete out[k];
  else if (r < 0.3) out[Array.isArray(out) ? out.length : String(pick(HOSTILE))] = pick(HOSTILE);
  else if (r < 0.4 && k !== undefined) out[k] = pick(HOSTILE);
  else if (k !== undefined) out[k] = mutate(out[k], depth + 1);
  return out;
}

function deep(n) {
  return `${'['.repeat(n)}${']'.repeat(n)}`;
}

function input(i) {
  const r = rand();
  if (r < 0.05) return { name: `f${i}.yaml`, text: `hosts: ${deep(1000 + Math.floor(rand() * 9000))}\n` };
  if (r < 0.08) return { name: `f${i}.json`, text: `{"jobs": [], "jobs": ${JSON.stringify(pick(HOSTILE))}}` };
  if (r < 0.1) return { name: `f${i}.yaml`, text: Buffer.from(Array.from({ length: 64 }, () => Math.floor(rand() * 256))) };
  let c = base();
  const rounds = 1 + Math.floor(rand() * 4);
  for (let k = 0; k < rounds; k++) c = mutate(c);
  const json = rand() < 0.5;
  let text = json ? JSON.stringify(c) : JSON.stringify(c, null, 1);
  // YAML is a superset of JSON; cut it to make syntax errors sometimes.
  if (rand() < 0.1) text = text.slice(0, Math.floor(rand() * text.length));
  return { name: `f${i}.${json ? 'json' : 'yaml'}`, text };
}

const tally = { inputs: 0, runs: 0, exit: {}, crashes: 0, hangs: 0, noPath: 0, examples: [] };
const t0 = Date.now();
for (let i = 0; i < N; i++) {
  const { name, text } = input(i);
  const p = join(dir, name);
  writeFileSync(p, text);
  tally.inputs++;
  for (const cmd of [
    ['config', 'check'],
    ['jobs', 'list'],
    ['plan', 'j'],
  ]) {
    const r = spawnSync(process.execPath, [HOZO, '--config', p, ...cmd], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, HOZO_CONFIG: '' } });
    tally.runs++;
    const code = r.error?.code === 'ETIMEDOUT' || r.signal === 'SIGTERM' ? 'hang' : (r.signal ?? r.status);
    tally.exit[code] = (tally.exit[code] ?? 0) + 1;
    const crash = r.signal !== null || r.status === 134 || /internal error|\n\s+at \S+ \(|TypeError|RangeError/.test(r.stderr);
    if (code === 'hang') tally.hangs++;
    else if (crash) tally.crashes++;
    if ((crash || code === 'hang') && tally.examples.length < 10) tally.examples.push({ name, cmd: cmd.join(' '), code, stderr: r.stderr.slice(0, 400) });
    // A config error must say where: a path, a file, or a line.
    if (r.status === 2 && cmd[0] === 'config' && !/: |line \d/.test(r.stderr)) tally.noPath++;
  }
}
tally.seconds = Math.round((Date.now() - t0) / 1000);
console.log(JSON.stringify(tally, null, 2));
rmSync(dir, { recursive: true, force: true });
process.exitCode = tally.crashes + tally.hangs > 0 ? 1 : 0;
