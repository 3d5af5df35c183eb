// node dist/src/output/write-schemas.js DIR: writes schemas/<name>.schema.json from src/output/schemas.ts, and
// schemas/openapi.json (the API of `hozo serve`) from src/output/openapi.ts.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openApi } from './openapi.js';
import { jsonSchemas } from './schemas.js';

const dir = process.argv[2] ?? 'schemas';
mkdirSync(dir, { recursive: true });
for (const [name, schema] of Object.entries(jsonSchemas())) writeFileSync(join(dir, `${name}.schema.json`), JSON.stringify(schema, null, 2) + '\n');
writeFileSync(join(dir, 'openapi.json'), JSON.stringify(openApi(), null, 2) + '\n');
