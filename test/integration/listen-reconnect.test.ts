// Change notices survive a lost connection: the PostgreSQL driver re-subscribes on its own and
// says when notices may have been missed, so caches built on them are dropped, not trusted.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Database } from '../../src/storage/db/database.js';
import { openPostgres } from '../../src/storage/db/postgres-driver.js';
import { createTestDatabase } from '../helpers/postgres.js';

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('LISTEN/NOTIFY on PostgreSQL across a lost connection', () => {
  let db: Database;
  const payloads: string[] = [];
  const states: boolean[] = [];
  let stop: () => Promise<void>;

  before(async () => {
    db = await openPostgres(await createTestDatabase(), { max: 2 });
    stop = await db.listen(
      'orthid_test_changes',
      (payload) => payloads.push(payload),
      (connected) => states.push(connected),
    );
  });
  after(async () => {
    await stop();
    await db.close();
  });

  test('a notice sent after the listening connection was killed still arrives, and the gap is reported', async () => {
    await db.ownerQuery(`SELECT pg_notify('orthid_test_changes', 'before')`);
    await until(() => payloads.includes('before'), 'the first notice');

    const { rows } = await db.ownerQuery<{ killed: boolean }>(
      `SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity
        WHERE application_name = 'orthid-listen' AND datname = current_database()`,
    );
    assert.deepEqual(
      rows.map((r) => r.killed),
      [true],
    );
    await until(() => states.length >= 2, 'the driver to reconnect');
    assert.deepEqual(states, [false, true], 'lost, then back');

    await db.ownerQuery(`SELECT pg_notify('orthid_test_changes', 'after')`);
    await until(() => payloads.includes('after'), 'a notice after the reconnection');
  });
});
