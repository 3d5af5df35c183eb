import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { jsonSchemas, OUTPUT_SCHEMAS } from '../../src/output/schemas.js';
import { openApi } from '../../src/output/openapi.js';
import { startReport, closeReport } from '../../src/job/report.js';

const dir = join(import.meta.dirname, '..', '..', 'schemas');

describe('the JSON output schemas', () => {
  it('schemas/*.schema.json are exactly what src/output/schemas.ts generates (regenerate: node dist/src/output/write-schemas.js schemas)', () => {
    const generated = jsonSchemas();
    expect(
      readdirSync(dir)
        .filter((f) => f.endsWith('.schema.json'))
        .sort(),
    ).toEqual(
      Object.keys(generated)
        .map((n) => `${n}.schema.json`)
        .sort(),
    );
    for (const [name, schema] of Object.entries(generated)) expect(JSON.parse(readFileSync(join(dir, `${name}.schema.json`), 'utf8')), name).toEqual(schema);
  });
  it('schemas/openapi.json (the API of hozo serve) is exactly what src/output/openapi.ts generates, and every $ref it holds resolves', () => {
    const doc = openApi();
    expect(JSON.parse(readFileSync(join(dir, 'openapi.json'), 'utf8'))).toEqual(doc);
    const refs = [...JSON.stringify(doc.paths).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThan(10);
    for (const r of refs) expect(Object.keys(OUTPUT_SCHEMAS), r).toContain(r);
  });
  it('a report as the run builds it validates; one with an unknown field or another version does not', () => {
    const r = closeReport(startReport('nightly', 'box', false), []);
    expect(OUTPUT_SCHEMAS['job-report'].safeParse(JSON.parse(JSON.stringify(r))).success).toBe(true);
    expect(OUTPUT_SCHEMAS['job-report'].safeParse({ ...r, surprise: 1 }).success).toBe(false);
    expect(OUTPUT_SCHEMAS['job-report'].safeParse({ ...r, version: 2 }).success).toBe(false);
  });
});
