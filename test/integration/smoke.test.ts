import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openPostgres } from '../../src/storage/db/postgres-driver.js';
import { migrate } from '../../src/storage/db/migrate.js';
import { createTestDatabase } from '../helpers/postgres.js';

test('migrations apply to a real PostgreSQL', async () => {
  const db = await openPostgres(await createTestDatabase());
  assert.deepEqual(await migrate(db), [1]);
  assert.deepEqual(await migrate(db), []);
  await db.close();
});
