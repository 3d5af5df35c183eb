// contrib/: the Prometheus alert rules (checked and unit-tested with the real promtool) and the Grafana dashboard.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { METRIC_NAMES } from '../../src/metrics/textfile.js';

const ROOT = resolve(import.meta.dirname, '../..');
const RULES = join(ROOT, 'contrib/prometheus/hozo-alerts.yml');
const RULE_TESTS = join(ROOT, 'contrib/prometheus/hozo-alerts.test.yml');
const DASHBOARD = join(ROOT, 'contrib/grafana/hozo.json');

const PROMTOOL = spawnSync('promtool', ['--version'], { encoding: 'utf8' }).status === 0 ? 'promtool' : undefined;

function promtool(...args: string[]): { status: number | null; out: string } | undefined {
  if (PROMTOOL === undefined) {
    console.warn(`SKIP: promtool not installed (Debian package "prometheus"); \`promtool ${args.slice(0, 2).join(' ')}\` not run`);
    return undefined;
  }
  const r = spawnSync(PROMTOOL, args, { encoding: 'utf8', cwd: ROOT });
  return { status: r.status, out: r.stdout + r.stderr };
}

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleTest {
  alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[];
}

const rules = (parseYaml(readFileSync(RULES, 'utf8')) as { groups: { name: string; rules: Rule[] }[] }).groups.flatMap((g) => g.rules);
const ruleTests = (parseYaml(readFileSync(RULE_TESTS, 'utf8')) as { tests: RuleTest[] }).tests;

/** hozo_* metric names used in a PromQL expression. */
const hozoMetricsIn = (expr: string) => [...expr.matchAll(/\b(hozo_[a-z_]+)\b/g)].map((m) => m[1]!).filter((n) => n !== 'hozo_job');

describe('alert rules (contrib/prometheus/hozo-alerts.yml)', () => {
  it('pass `promtool check rules`', () => {
    const r = promtool('check', 'rules', RULES);
    if (r === undefined) return;
    expect(r.out).toContain(`SUCCESS: ${rules.length} rules found`);
    expect(r.status).toBe(0);
  });

  it('pass their unit tests with `promtool test rules`', () => {
    const r = promtool('test', 'rules', RULE_TESTS);
    if (r === undefined) return;
    expect(r.out).toContain('SUCCESS');
    expect(r.status, r.out).toBe(0);
  }, 60_000); // promtool evaluates every rule each minute over ~30 simulated hours

  it('cover what the issue asks for, with severity and annotations', () => {
    const byName = new Map(rules.map((r) => [r.alert, r]));
    expect([...byName.keys()]).toEqual(
      expect.arrayContaining([
        'HozoJobNoRecentSuccess',
        'HozoJobLastRunFailed',
        'HozoDatasetLagHigh',
        'HozoPoolUnhealthy',
        'HozoPoolAlmostFull',
        'HozoPoolScrubOld',
        'HozoTextfileStale',
      ]),
    );
    expect(byName.get('HozoJobNoRecentSuccess')!.expr).toContain('26 * 3600');
    expect(byName.get('HozoDatasetLagHigh')!.expr).toContain('24 * 3600');
    expect(byName.get('HozoPoolAlmostFull')!.expr).toContain('> 0.8');
    expect(byName.get('HozoPoolScrubOld')!.expr).toContain('35 * 86400');
    expect(byName.get('HozoTextfileStale')!.expr).toMatch(/node_textfile_mtime_seconds\{file=~".*hozo_/);
    for (const r of rules) {
      expect(['critical', 'warning'], r.alert).toContain(r.labels?.['severity']);
      expect(r.annotations?.['summary'], r.alert).toBeTruthy();
      expect(r.annotations?.['description'], r.alert).toBeTruthy();
    }
  });

  it('only use metrics hozo writes', () => {
    for (const r of rules) for (const m of hozoMetricsIn(r.expr)) expect(METRIC_NAMES, `${r.alert} uses ${m}`).toContain(m);
  });

  it('have a test that makes each alert fire and one where it does not', () => {
    const cases = ruleTests.flatMap((t) => t.alert_rule_test ?? []);
    for (const r of rules) {
      const mine = cases.filter((c) => c.alertname === r.alert);
      expect(
        mine.some((c) => c.exp_alerts.length > 0),
        `${r.alert} fires in some test`,
      ).toBe(true);
      expect(
        mine.some((c) => c.exp_alerts.length === 0),
        `${r.alert} stays quiet in some test`,
      ).toBe(true);
    }
  });
});

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  gridPos: { h: number; w: number; x: number; y: number };
  targets?: { expr: string; refId: string; datasource?: { uid: string } }[];
}

describe('Grafana dashboard (contrib/grafana/hozo.json)', () => {
  const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
    uid: string;
    title: string;
    schemaVersion: number;
    id: unknown;
    panels: Panel[];
    templating: { list: { name: string; type: string; query: unknown }[] };
  };
  const panels = dash.panels.filter((p) => p.type !== 'row');
  const exprs = panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));

  it('is importable: no fixed id, a uid, a Prometheus data source variable used by every panel', () => {
    expect(dash.id).toBeNull();
    expect(dash.uid).toMatch(/^[a-z0-9-]{1,40}$/);
    expect(dash.schemaVersion).toBeGreaterThanOrEqual(36);
    const ds = dash.templating.list.find((v) => v.type === 'datasource');
    expect(ds).toMatchObject({ name: 'datasource', query: 'prometheus' });
    for (const p of panels) {
      expect(p.datasource?.uid, p.title).toBe('${datasource}');
      for (const t of p.targets ?? []) expect(t.datasource?.uid, p.title).toBe('${datasource}');
    }
    expect(new Set(dash.panels.map((p) => p.id)).size).toBe(dash.panels.length);
  });

  it('has the panels the issue asks for', () => {
    const uses = (metric: string) => exprs.some((e) => e.expr.includes(metric));
    for (const m of [
      'hozo_job_last_success_timestamp_seconds',
      'hozo_dataset_lag_seconds',
      'hozo_job_last_transferred_bytes',
      'hozo_host_wake_seconds',
      'hozo_pool_healthy',
      'hozo_pool_capacity_ratio',
      'hozo_pool_last_scrub_timestamp_seconds',
    ]) {
      expect(uses(m), m).toBe(true);
    }
    for (const e of exprs) for (const m of hozoMetricsIn(e.expr)) expect(METRIC_NAMES, `${e.panel} uses ${m}`).toContain(m);
  });

  it('lays panels out without overlaps inside the 24-column grid', () => {
    const cells = new Set<string>();
    for (const p of dash.panels) {
      const { x, y, w, h } = p.gridPos;
      expect(x + w, p.title).toBeLessThanOrEqual(24);
      for (let i = x; i < x + w; i++) {
        for (let j = y; j < y + h; j++) {
          const key = `${i},${j}`;
          expect(cells.has(key), `${p.title} overlaps at ${key}`).toBe(false);
          cells.add(key);
        }
      }
    }
  });

  it('has only valid PromQL (each query checked by promtool as a recording rule)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hozo-dash-'));
    const file = join(dir, 'dashboard-queries.yml');
    const recording = exprs.map((e, i) => ({ record: `hozo_dashboard_query_${i}`, expr: e.expr.replaceAll('$instance', '.*') }));
    writeFileSync(file, JSON.stringify({ groups: [{ name: 'dashboard', rules: recording }] }));
    const r = promtool('check', 'rules', file);
    if (r === undefined) return;
    expect(r.status, r.out).toBe(0);
    expect(r.out).toContain(`SUCCESS: ${recording.length} rules found`);
  });
});
