// src/metrics/prom.ts loads prom-client's Registry, Gauge and Counter from its lib files, not its index (which loads
// the default metrics and @opentelemetry/api). These are the same classes the index exports, and loading them does
// not load the rest.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import * as client from 'prom-client';
import { Counter, Gauge, Registry } from '../../src/metrics/prom.js';
import { PROJECT_ROOT } from '../../src/lab/root.js';

describe("prom-client's classes without its index (src/metrics/prom.ts)", () => {
  it('are the classes prom-client exports', () => {
    expect(Registry).toBe(client.Registry);
    expect(Gauge).toBe(client.Gauge);
    expect(Counter).toBe(client.Counter);
    const r = new Registry();
    new Gauge({ name: 'x_g', help: 'h', registers: [r] }).set(2);
    return expect(r.metrics()).resolves.toBe('# HELP x_g h\n# TYPE x_g gauge\nx_g 2\n');
  });

  it('the built module loads neither the default metrics nor @opentelemetry/api', () => {
    const probe = `
      await import('./dist/src/metrics/prom.js');
      const loaded = Object.keys((await import('node:module')).createRequire(import.meta.url).cache);
      console.log(JSON.stringify(loaded.filter((f) => f.includes('node_modules'))));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', probe], { cwd: PROJECT_ROOT, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const files: string[] = JSON.parse(r.stdout);
    expect(files.some((f) => f.endsWith('prom-client/lib/gauge.js'))).toBe(true);
    expect(files.filter((f) => /defaultMetrics|opentelemetry|pushgateway|prom-client\/index\.js/.test(f))).toEqual([]);
  });
});
