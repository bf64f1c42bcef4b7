import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { exitCodes, isOrthIdError } from '../../src/core/errors.js';
import { APP_ROLE, type Database, withTenant } from '../../src/storage/db/database.js';
import {
  classifyDatabaseError,
  explainError,
  unsupportedServer,
} from '../../src/storage/db/database-errors.js';
import { migrate } from '../../src/storage/db/migrate.js';
import { openPostgres } from '../../src/storage/db/postgres-driver.js';
import { rejectsWith } from '../helpers/errors.js';
import { createTestDatabase, freePort } from '../helpers/postgres.js';

const SECRET = 'pw-never-shown-3141';

/** `url` with another user, password or database. */
function variant(url: string, change: { user?: string; password?: string; database?: string }): string {
  const u = new URL(url);
  if (change.user) u.username = change.user;
  if (change.password) u.password = change.password;
  if (change.database) u.pathname = `/${change.database}`;
  return u.toString();
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail('expected a failure');
}

describe('PostgreSQL failures that are the environment get their own codes', () => {
  let url: string;
  let db: Database;

  before(async () => {
    url = await createTestDatabase();
    db = await openPostgres(url);
    await migrate(db);
  });
  after(() => db.close());

  test('a missing database is db.database_missing, naming it, never the password', async () => {
    const error = await rejectsWith(
      openPostgres(variant(url, { database: 'no_such_db', password: SECRET })),
      'db.database_missing',
    );
    assert.match(error.message, /no database "no_such_db".*CREATE DATABASE no_such_db OWNER/);
    assert.doesNotMatch(error.message, new RegExp(SECRET));
    assert.equal((error as { exitCode?: number }).exitCode, exitCodes.unavailable);
  });

  test('a login that does not exist is db.role_missing', async () => {
    const error = await rejectsWith(openPostgres(variant(url, { user: 'nobody_here' })), 'db.role_missing');
    assert.match(error.message, /no role "nobody_here".*orthid db roles --sql/);
  });

  test('a server nobody listens on is db.unavailable', async () => {
    const closed = new URL(url);
    closed.port = String(await freePort());
    const error = await rejectsWith(openPostgres(closed.toString()), 'db.unavailable');
    assert.match(error.message, /ECONNREFUSED/);
  });

  test('the application role altering the schema is db.permission_denied naming the table', async () => {
    const [tenantId] = (await db.ownerQuery<{ id: string }>('SELECT gen_random_uuid()::text AS id')).rows.map(
      (r) => r.id,
    );
    const cause = await rejection(withTenant(db, tenantId!, (tx) => tx.query('DROP TABLE users')));
    const error = classifyDatabaseError(cause);
    assert.equal(error?.code, 'db.permission_denied');
    assert.deepEqual(error.details?.object, 'table users');
    assert.match(error.message, /must be owner of table users.*orthid migrate/);
  });

  test('a login that is not a member of the application role is told the GRANT to run', async () => {
    await db.ownerQuery('CREATE ROLE orthid_errors_outsider LOGIN').catch(() => {});
    const outsider = await openPostgres(variant(url, { user: 'orthid_errors_outsider' }));
    try {
      const cause = await rejection(outsider.ownerTransaction(async () => {}, `SET LOCAL ROLE ${APP_ROLE}`));
      const error = classifyDatabaseError(cause);
      assert.equal(error?.code, 'db.permission_denied');
      assert.match(error.message, new RegExp(`GRANT ${APP_ROLE} TO`));
    } finally {
      await outsider.close();
    }
  });

  test("the audit log's own refusal and a constraint violation are not environment problems", async () => {
    await db.ownerQuery(
      `WITH t AS (INSERT INTO tenants (id, slug, display_name) VALUES (gen_random_uuid(), 'errors', 'e') RETURNING id)
       INSERT INTO audit_events (tenant_id, seq, id, occurred_at, actor, action, outcome, prev_hash, hash)
       SELECT id, 1, gen_random_uuid(), now(), 'test', 'test.done', 'success', '', '' FROM t`,
    );
    const immutable = await rejection(db.ownerQuery('UPDATE audit_events SET actor = actor'));
    assert.match(String((immutable as Error).message), /append-only/);
    assert.equal(classifyDatabaseError(immutable), undefined);
    const duplicate = await rejection(
      db.ownerQuery('INSERT INTO orthid_migrations (version, name, checksum) VALUES (1, $1, $1)', ['x']),
    );
    assert.equal(classifyDatabaseError(duplicate), undefined);
    const unexpected = explainError(duplicate, 'run the command again with ORTHID_LOG_LEVEL=debug');
    assert.equal(unexpected.code, 'internal.unexpected');
    assert.doesNotMatch(unexpected.message, /server log/);
    assert.ok(isOrthIdError(unexpected));
  });

  test('a server older than 15 is refused with db.version_unsupported and what to do', () => {
    const error = unsupportedServer(140_010, 'db.internal:5432/orthid');
    assert.equal(error.code, 'db.version_unsupported');
    assert.equal(error.exitCode, exitCodes.unavailable);
    assert.match(error.message, /version 14; OrthID needs 15 or newer/);
  });
});
