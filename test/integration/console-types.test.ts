// The console's API client is typed from the server's own OpenAPI document: this fails when a
// route changed and console/src/api/openapi.d.ts was not regenerated (`npm run console:types`).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { adminApiDocument, CONSOLE_TYPES_FILE, consoleTypes } from '../../scripts/console-types.js';

test('the committed console API types match the OpenAPI document the server serves', async () => {
  const generated = await consoleTypes(await adminApiDocument());
  const committed = await readFile(CONSOLE_TYPES_FILE, 'utf8');
  assert.ok(
    committed === generated,
    'console/src/api/openapi.d.ts is stale: run `npm run console:types` and commit the result',
  );
});
