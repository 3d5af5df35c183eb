// Real outputs of the built CLI checked against the documented output schemas (src/output/schemas.ts, whose JSON
// Schema form is schemas/*.schema.json).
import { expect } from 'vitest';
import { OUTPUT_SCHEMAS } from '../../src/output/schemas.js';

export function expectOutput(name: keyof typeof OUTPUT_SCHEMAS, json: unknown): void {
  const r = OUTPUT_SCHEMAS[name].safeParse(json);
  expect(r.success, `${name}: ${r.success ? '' : JSON.stringify(r.error.issues.slice(0, 5))}\n${JSON.stringify(json).slice(0, 1500)}`).toBe(true);
}
