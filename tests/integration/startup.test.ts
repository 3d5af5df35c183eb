// Start-up of the built CLI: the path to the box's SSH handshake loads no zod (the schema is only needed when the
// config must be validated), and `hozo config check` always validates, whatever the cache holds.
import { expectOutput } from '../helpers/outputs.js';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOZO } from '../helpers/hozo.js';

const DIST = resolve(import.meta.dirname, '../../dist/src');

describe('hozo start-up (built CLI)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'hozo-startup-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('loading the CLI, a cached config and the early connection loads no zod', async () => {
    const hook = join(dir, 'hook.mjs');
    writeFileSync(
      hook,
      `export async function resolve(s, c, next) { const r = await next(s, c); if (/[/]zod[/]/.test(r.url)) process.stderr.write('ZOD ' + c.parentURL + '\\n'); return r; }\n`,
    );
    const reg = join(dir, 'register.mjs');
    writeFileSync(reg, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hook).href)});\n`);
    const script = ['cli/program.js', 'config/controller-cache.js', 'job/early.js']
      .map((m) => `await import(${JSON.stringify(pathToFileURL(join(DIST, m)).href)});`)
      .join(' ');
    const r = await execa('node', ['--import', reg, '--input-type=module', '-e', script], { reject: false });
    expect(r.exitCode).toBe(0);
    expect(r.stderr).not.toContain('ZOD');
    // The hook does see zod when the schema is loaded (the check can fail).
    const s = await execa(
      'node',
      ['--import', reg, '--input-type=module', '-e', `await import(${JSON.stringify(pathToFileURL(join(DIST, 'config/load.js')).href)});`],
      { reject: false },
    );
    expect(s.stderr).toContain('ZOD');
  });

  it("a warm `hozo run` of the bundle (YAML config from the cache, the job's state file read) loads no zod, yaml or wake_on_lan", async () => {
    const hook = join(dir, 'hook-pkgs.mjs');
    writeFileSync(
      hook,
      `export async function resolve(s, c, next) { const r = await next(s, c); const m = /[/]node_modules[/](zod|yaml|wake_on_lan)[/]/.exec(r.url); if (m) process.stderr.write('LOADED ' + m[1] + '\\n'); return r; }\n`,
    );
    const reg = join(dir, 'register-pkgs.mjs');
    writeFileSync(reg, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hook).href)});\n`);
    const state = join(dir, 'state-run');
    const cfg = join(dir, 'run.yaml');
    writeFileSync(
      cfg,
      `stateDirectory: ${state}\njobs:\n  - name: nightly\n    host: local\n    datasets: [{ source: hozostartup/none, target: hozostartup/copy }]\n`,
    );
    // The first run validates (zod, yaml) and records the job's state; the second is what a timer's run looks like.
    const first = await execa('node', ['--import', reg, HOZO, '--config', cfg, 'run', 'nightly'], { reject: false });
    expect(first.stderr, 'the hook sees a package load when there is one').toContain('LOADED zod');
    expect(readFileSync(join(state, 'jobs', 'nightly.json'), 'utf8')).toContain('"job": "nightly"');
    const warm = await execa('node', ['--import', reg, HOZO, '--config', cfg, 'run', 'nightly'], { reject: false });
    expect(warm.exitCode, warm.stderr).not.toBe(0); // no such pool: the run fails, after loading what a run loads
    expect(warm.stderr).not.toContain('LOADED');
  });

  it('config check validates the file itself; other commands use the validated copy for unchanged bytes', async () => {
    const state = join(dir, 'state');
    const cfg = join(dir, 'hozo.json');
    writeFileSync(
      cfg,
      JSON.stringify({ stateDirectory: state, jobs: [{ name: 'nightly', host: 'local', datasets: [{ source: 'tank/a', target: 'backup/a' }] }] }),
    );
    const list = async () => JSON.parse((await execa('node', [HOZO, '--config', cfg, 'jobs', 'list', '--json'])).stdout).jobs as { name: string }[];
    expect((await list()).map((j) => j.name)).toEqual(['nightly']);
    // Same key, other content: proves the copy is what `jobs list` reads now…
    const file = join(state, 'config-cache.json');
    const stored = JSON.parse(readFileSync(file, 'utf8'));
    stored.config.jobs[0].name = 'from-the-cache';
    writeFileSync(file, JSON.stringify(stored));
    expect((await list()).map((j) => j.name)).toEqual(['from-the-cache']);
    // …and that config check does not read it.
    const check = await execa('node', [HOZO, '--config', cfg, 'config', 'check', '--json']);
    expect(JSON.parse(check.stdout)).toMatchObject({ version: 1, valid: true, problems: [] });
    expectOutput('config-check', JSON.parse(check.stdout));
    expectOutput('jobs-list', JSON.parse((await execa('node', [HOZO, '--config', cfg, 'jobs', 'list', '--json'])).stdout));
    expect(JSON.parse(check.stdout).config.jobs[0].name).toBe('nightly');
    // One changed byte in the file: validated again.
    writeFileSync(cfg, readFileSync(cfg, 'utf8') + '\n');
    expect((await list()).map((j) => j.name)).toEqual(['nightly']);
  });
});
