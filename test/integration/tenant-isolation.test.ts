import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { APP_ROLE, withSystem, withTenant, withTenantStatements } from '../../src/storage/db/database.js';
import { openPostgres } from '../../src/storage/db/postgres-driver.js';
import type { Tenant } from '../../src/tenancy/tenants.js';
import { createTestOrthId, DRIVERS, type TestOrthId } from '../helpers/orthid.js';

for (const driver of DRIVERS) {
  describe(`tenant isolation (${driver})`, () => {
    let app: TestOrthId;
    let a: Tenant;
    let b: Tenant;
    let bUserId: string;

    before(async () => {
      app = await createTestOrthId(driver);
      a = await app.tenants.create({ slug: 'alpha', actor: 'test' });
      b = await app.tenants.create({ slug: 'beta', actor: 'test' });
      await withTenant(app.db, a.id, (tx) =>
        app.users.create(tx, a.id, { email: 'a@alpha.test', name: 'Alice' }, 'test'),
      );
      bUserId = (
        await withTenant(app.db, b.id, (tx) =>
          app.users.create(tx, b.id, { email: 'b@beta.test', name: 'Bob' }, 'test'),
        )
      ).id;
    });
    after(() => app.close());

    test("a tenant's transaction cannot read another tenant's rows, even naming their ids", async () => {
      await withTenant(app.db, a.id, async (tx) => {
        const all = await tx.query('SELECT id FROM users');
        assert.equal(all.rowCount, 1);
        const named = await tx.query('SELECT id FROM users WHERE tenant_id = $1 AND id = $2', [
          b.id,
          bUserId,
        ]);
        assert.equal(named.rowCount, 0);
        const events = await tx.query<{ tenant_id: string }>('SELECT DISTINCT tenant_id FROM audit_events');
        assert.deepEqual(
          events.rows.map((r) => r.tenant_id),
          [a.id],
        );
      });
    });

    test("a tenant's transaction cannot update or delete another tenant's rows", async () => {
      await withTenant(app.db, a.id, async (tx) => {
        const updated = await tx.query(`UPDATE users SET status = 'disabled' WHERE id = $1`, [bUserId]);
        assert.equal(updated.rowCount, 0);
        const deleted = await tx.query('DELETE FROM users WHERE tenant_id = $1', [b.id]);
        assert.equal(deleted.rowCount, 0);
      });
      const user = await withTenant(app.db, b.id, (tx) => app.users.get(tx, b.id, bUserId));
      assert.equal(user.status, 'active');
    });

    test('a tenant cannot insert rows into another tenant', async () => {
      await assert.rejects(
        withTenant(app.db, a.id, (tx) =>
          tx.query(`INSERT INTO organisations (tenant_id, id, name) VALUES ($1, gen_random_uuid(), 'x')`, [
            b.id,
          ]),
        ),
        /row-level security/,
      );
    });

    test('a transaction with no tenant set sees no tenant rows', async () => {
      await withSystem(app.db, async (tx) => {
        assert.equal((await tx.query('SELECT 1 FROM users')).rowCount, 0);
        assert.equal((await tx.query('SELECT 1 FROM tenant_keys')).rowCount, 0);
        assert.ok((await tx.query('SELECT 1 FROM tenants')).rowCount >= 2);
      });
    });

    test('the application role cannot disable row-level security, alter, truncate or drop tables', async () => {
      for (const statement of [
        'ALTER TABLE users DISABLE ROW LEVEL SECURITY',
        'ALTER TABLE users NO FORCE ROW LEVEL SECURITY',
        'ALTER TABLE users ADD COLUMN x int',
        'DROP POLICY tenant_isolation ON users',
        'TRUNCATE users',
        'DROP TABLE organisations',
        'CREATE TABLE evil (id int)',
      ]) {
        await assert.rejects(
          withTenant(app.db, a.id, (tx) => tx.query(statement)),
          /must be owner|permission denied/,
          statement,
        );
      }
    });

    if (driver === 'postgres') {
      test('a server login that is only a member of the application role cannot become the owner', async () => {
        await app.db.ownerQuery(`CREATE ROLE orthid_server_test LOGIN IN ROLE ${APP_ROLE}`).catch(() => {});
        const url = new URL(app.databaseUrl!);
        url.username = 'orthid_server_test';
        const server = await openPostgres(url.toString());
        try {
          await assert.rejects(server.ownerQuery('SET ROLE postgres'), /permission denied/);
          assert.equal((await server.ownerQuery('SELECT * FROM users')).rowCount, 0);
          const visible = await withTenant(server, a.id, (tx) => tx.query('SELECT id FROM users'));
          assert.equal(visible.rowCount, 1);
        } finally {
          await server.close();
        }
      });

      test('one statement sent in a transaction and alone, in turn on one connection, prepares without clashing', async () => {
        const single = await openPostgres(app.databaseUrl!, { max: 1 });
        try {
          const sql = 'SELECT count(*)::int AS n FROM users WHERE email_index <> $1';
          for (let i = 0; i < 3; i++) {
            const alone = await withTenantStatements(single, a.id, (q) => q.query<{ n: number }>(sql, ['x']));
            const inTransaction = await withTenant(single, a.id, (tx) => tx.query<{ n: number }>(sql, ['x']));
            assert.equal(alone.rows[0]!.n, 1);
            assert.equal(inTransaction.rows[0]!.n, 1);
          }
        } finally {
          await single.close();
        }
      });
    }

    test('the application role cannot bypass row-level security', async () => {
      const { rows } = await app.db.ownerQuery<{ rolbypassrls: boolean; rolsuper: boolean }>(
        'SELECT rolbypassrls, rolsuper FROM pg_roles WHERE rolname = $1',
        [APP_ROLE],
      );
      assert.deepEqual(rows, [{ rolbypassrls: false, rolsuper: false }]);
    });

    test('every table with a tenant_id forces row-level security and has the isolation policy', async () => {
      const { rows } = await app.db.ownerQuery<{ table: string; forced: boolean; policies: string }>(
        `SELECT c.relname AS table, c.relforcerowsecurity AS forced,
                (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname = 'tenant_isolation') AS policies
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'public' AND c.relkind = 'r'
            AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)`,
      );
      assert.ok(rows.length >= 10, `found only ${rows.length} tenant tables`);
      for (const row of rows) {
        assert.equal(row.forced, true, `${row.table} does not FORCE row level security`);
        assert.equal(Number(row.policies), 1, `${row.table} has no tenant_isolation policy`);
      }
    });
  });
}
