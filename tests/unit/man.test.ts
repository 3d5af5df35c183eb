// The man pages are generated from the program, the agent's help and the config schema; each must render with groff
// without a warning, and name every command, option and config field it is generated from.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { Command } from 'commander';
import { z } from 'zod';
import { buildProgram } from '../../src/cli/program.js';
import { configSchema } from '../../src/config/schema.js';
import { manPages } from '../../src/man/man.js';

const groff = spawnSync('groff', ['--version']).status === 0;
if (!groff) console.warn('SKIP (rendering only): tests/unit/man.test.ts: groff is not installed');

describe('man pages hozo(1), hozo-agent(8), hozo.conf(5)', () => {
  const pages = new Map(manPages().map((p) => [p.file, p.text]));
  const plain = (t: string) => t.replace(/\\-/g, '-').replace(/\\e/g, '\\');

  it('hozo(1) has every command and every option of the program', () => {
    const text = plain(pages.get('hozo.1')!);
    const { program } = buildProgram();
    const all = (c: Command): Command[] => [...c.commands, ...c.commands.flatMap(all)];
    for (const c of all(program)) {
      expect(text, c.name()).toContain(c.name());
      for (const o of c.options) expect(text, `${c.name()} ${o.flags}`).toContain(o.flags);
    }
    for (const o of program.options) expect(text).toContain(o.flags);
    expect(text).toMatch(/\.SH EXIT STATUS[\s\S]*\.B 4\nthe job is already running/);
  });

  it('hozo.conf(5) has every top-level, host and job field of the schema', () => {
    const text = plain(pages.get('hozo.conf.5')!);
    const j = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as any;
    for (const k of Object.keys(j.properties)) expect(text).toContain(`.B ${k}\n`);
    for (const k of Object.keys(j.properties.hosts.additionalProperties.properties)) expect(text).toContain(`.B hosts.<name>.${k}\n`);
    for (const k of Object.keys(j.properties.jobs.items.properties)) expect(text).toContain(`.B jobs[].${k}\n`);
    expect(text).toContain('jobs[].datasets[].allowPlaintext');
  });

  it('hozo-agent(8) has each command', () => {
    const text = plain(pages.get('hozo-agent.8')!);
    for (const c of ['serve', 'idle-check', 'prune', 'check-config', 'receive']) expect(text).toContain(c);
  });

  it.skipIf(!groff)('each renders with groff -man -ww without a warning', () => {
    for (const [file, text] of pages) {
      const r = spawnSync('groff', ['-man', '-Tutf8', '-ww', '-z'], { input: text, encoding: 'utf8' });
      expect(r.status, file).toBe(0);
      expect(r.stderr, file).toBe('');
    }
  });
});

describe('--help of every command', () => {
  it('ends with the exit codes and an example, command groups (config, jobs) included', () => {
    const { program } = buildProgram();
    const all = (c: Command): Command[] => [c, ...c.commands.flatMap(all)];
    const missing: string[] = [];
    for (const c of all(program).slice(1)) {
      const out: string[] = [];
      c.configureOutput({ writeOut: (s) => out.push(s), writeErr: (s) => out.push(s) });
      c.outputHelp();
      const text = out.join('');
      if (!/Exit codes:/.test(text) || !/\nExample:\n {2}hozo /.test(text)) missing.push(c.name());
    }
    expect(missing).toEqual([]);
  });
});
