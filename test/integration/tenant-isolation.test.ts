import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { APP_ROLE, withSystem, withTenant, withTenantStatements } from '../../src/storage/db/database.js';
import { openPostgres } from '../../src/storage/db/postgres-driver.js';
import type { Tenant } from '../../src/tenancy/tenants.js';
import { createTestOrthId, DRIVERS, type TestOrthId } from '../helpers/orthid.js';

/**
 * Tables that belong to the deployment, not to a tenant, each with a row written outside any
 * tenant: no tenant's transaction may see or change them (tested below), so they are not part of
 * the per-tenant write test.
 */
const DEPLOYMENT_TABLES: Record<string, string> = {
  backup_jobs: `INSERT INTO backup_jobs (id, kind, set_id, status, started_by, started_at, owner, lease_until)
                VALUES (gen_random_uuid(), 'verify', 'set-1', 'running', 'test', now(), 'test', now())`,
};

/** A row in each tenant-owned table the usual set-up leaves empty, written as the tenant itself. */
const FIXTURE_SQL = `
  WITH u AS (SELECT id FROM users LIMIT 1),
    o AS (INSERT INTO organisations (tenant_id, id, name)
          VALUES (orthid_current_tenant(), gen_random_uuid(), 'org') RETURNING id),
    m AS (INSERT INTO memberships (tenant_id, id, organisation_id, user_id)
          SELECT orthid_current_tenant(), gen_random_uuid(), o.id, u.id FROM o, u RETURNING id),
    r AS (INSERT INTO roles (tenant_id, id, name) VALUES (orthid_current_tenant(), gen_random_uuid(), 'role') RETURNING id),
    ar AS (INSERT INTO api_resources (tenant_id, id, indicator, name)
           VALUES (orthid_current_tenant(), gen_random_uuid(), 'https://api.example/fixture', 'api') RETURNING id),
    p AS (INSERT INTO permissions (tenant_id, id, resource_id, name)
          SELECT orthid_current_tenant(), gen_random_uuid(), ar.id, 'read' FROM ar RETURNING id),
    rp AS (INSERT INTO role_permissions (tenant_id, role_id, permission_id)
           SELECT orthid_current_tenant(), r.id, p.id FROM r, p),
    mr AS (INSERT INTO membership_roles (tenant_id, membership_id, role_id)
           SELECT orthid_current_tenant(), m.id, r.id FROM m, r),
    c AS (INSERT INTO oidc_clients (tenant_id, client_id, name, metadata)
          VALUES (orthid_current_tenant(), 'fixture', 'fixture', '{}') RETURNING client_id),
    cr AS (INSERT INTO client_roles (tenant_id, client_id, role_id)
           SELECT orthid_current_tenant(), c.client_id, r.id FROM c, r),
    op AS (INSERT INTO oidc_payloads (tenant_id, model, id, payload)
           VALUES (orthid_current_tenant(), 'Session', 'fixture', '{}')),
    st AS (INSERT INTO sign_in_throttle (tenant_id, key) VALUES (orthid_current_tenant(), 'fixture')),
    uf AS (INSERT INTO user_factors (tenant_id, id, user_id, kind, binding)
           SELECT orthid_current_tenant(), gen_random_uuid(), u.id, 'totp', 'fixture' FROM u),
    rc AS (INSERT INTO user_recovery_codes (tenant_id, user_id, code_hash)
           SELECT orthid_current_tenant(), u.id, 'fixture' FROM u),
    pf AS (INSERT INTO user_factors (tenant_id, id, user_id, kind, status, name, confirmed_at)
           SELECT orthid_current_tenant(), gen_random_uuid(), u.id, 'passkey', 'active', 'fixture', now() FROM u
           RETURNING id, user_id),
    pc AS (INSERT INTO passkey_credentials (tenant_id, factor_id, user_id, credential_id, public_key,
             backup_eligible, backed_up)
           SELECT orthid_current_tenant(), pf.id, pf.user_id, 'fixture', decode('00', 'hex'), false, false FROM pf),
    ph AS (INSERT INTO passkey_user_handles (tenant_id, user_id, handle)
           SELECT orthid_current_tenant(), u.id, 'fixture' FROM u),
    pch AS (INSERT INTO passkey_challenges (tenant_id, binding, purpose, challenge, expires_at)
            VALUES (orthid_current_tenant(), 'fixture', 'authenticate', 'fixture', now() + interval '1 hour')),
    mq AS (INSERT INTO mail_queue (tenant_id, id, template, recipient, content, next_attempt_at, created_at)
           VALUES (orthid_current_tenant(), gen_random_uuid(), 'fixture', 'enc1.x', 'enc1.x', now(), now())),
    at AS (INSERT INTO account_tokens (tenant_id, id, purpose, secret_hash, payload, created_at, expires_at)
           VALUES (orthid_current_tenant(), gen_random_uuid(), 'invitation', sha256(gen_random_uuid()::text::bytea), 'enc1.x', now(), now()))
  INSERT INTO key_rotations (id, tenant_id, kind, status, target_key_id, actor)
    VALUES (gen_random_uuid(), orthid_current_tenant(), 'data', 'done', 'fixture', 'test')`;

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
      // One row per tenant in every table the application role writes, so each write below has
      // another tenant's row to aim at.
      for (const t of [a, b]) await withTenant(app.db, t.id, (tx) => tx.query(FIXTURE_SQL));
      for (const sql of Object.values(DEPLOYMENT_TABLES)) await app.db.ownerQuery(sql);
    });
    after(() => app.close());

    const registryRow = async (id: string) =>
      (await app.db.ownerQuery('SELECT to_jsonb(t) AS row FROM tenants t WHERE id = $1', [id])).rows[0];

    /** Every table the application role may INSERT, UPDATE or DELETE, with those privileges. */
    const writableTables = async () =>
      (
        await app.db.ownerQuery<{ table: string; privileges: string[] }>(
          `SELECT c.relname AS table,
                  array_remove(ARRAY[
                    CASE WHEN has_table_privilege($1, c.oid, 'INSERT') THEN 'INSERT' END,
                    CASE WHEN has_table_privilege($1, c.oid, 'UPDATE') THEN 'UPDATE' END,
                    CASE WHEN has_table_privilege($1, c.oid, 'DELETE') THEN 'DELETE' END], NULL) AS privileges
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
            ORDER BY 1`,
          [APP_ROLE],
        )
      ).rows.filter((r) => r.privileges.length > 0);

    /** The column naming a row's tenant: tenant_id, or the registry's own id. */
    const tenantColumn = async (table: string) => {
      const { rows } = await app.db.ownerQuery(
        `SELECT 1 FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'tenant_id' AND NOT attisdropped`,
        [`"${table}"`],
      );
      if (rows.length > 0) return 'tenant_id';
      if (table in DEPLOYMENT_TABLES) return undefined;
      assert.equal(table, 'tenants', `${table} is writable by ${APP_ROLE} but names no tenant: isolate it`);
      return 'id';
    };

    /** Every row of a table with its physical position, read past row-level security: an update moves it. */
    const snapshot = async (table: string) =>
      (
        await app.db.ownerQuery<{ digest: string }>(
          `SELECT coalesce(string_agg(ctid::text || to_jsonb(t)::text, E'\n' ORDER BY ctid), '') AS digest FROM "${table}" t`,
        )
      ).rows[0]!.digest;

    test("a tenant's transaction cannot read another tenant's rows, even naming their ids", async () => {
      await withTenant(app.db, a.id, async (tx) => {
        const all = await tx.query('SELECT id FROM users');
        assert.equal(all.rowCount, 1);
        const named = await tx.query('SELECT id FROM users WHERE tenant_id = $1 AND id = $2', [
          b.id,
          bUserId,
        ]);
        assert.equal(named.rowCount, 0);
        const registry = await tx.query<{ id: string }>('SELECT id FROM tenants');
        assert.deepEqual(
          registry.rows.map((r) => r.id),
          [a.id],
          "another tenant's registry row (settings, key custody) is not visible",
        );
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

    test("a tenant's transaction cannot rewrite another tenant's registry row", async () => {
      const before = await registryRow(b.id);
      await withTenant(app.db, a.id, async (tx) => {
        const updated = await tx.query(
          `UPDATE tenants SET settings = '{"signingAlg":"RS256"}', key_custody = 'awskms:alias/attacker', status = 'disabled' WHERE id = $1`,
          [b.id],
        );
        assert.equal(updated.rowCount, 0);
      });
      await assert.rejects(
        withTenant(app.db, a.id, (tx) => tx.query(`UPDATE tenants SET id = $1 WHERE id = $2`, [b.id, a.id])),
        /row-level security|duplicate key|foreign key/,
      );
      await assert.rejects(
        withTenant(app.db, a.id, (tx) =>
          tx.query(`INSERT INTO tenants (id, slug, display_name) VALUES (gen_random_uuid(), 'gamma', 'g')`),
        ),
        /row-level security/,
      );
      assert.deepEqual(await registryRow(b.id), before);
      // Its own row stays writable, and a transaction that entered no tenant still registers one.
      await withTenant(app.db, a.id, (tx) => app.tenants.setSettings(tx, a.id, { note: 'own' }));
      assert.equal((await app.tenants.get('alpha')).settings.note, 'own');
      await withSystem(app.db, (tx) =>
        tx.query(`UPDATE tenants SET status = 'disabled' WHERE id = $1`, [b.id]),
      );
      assert.deepEqual(await registryRow(b.id), before);
    });

    test('as a tenant, every write the application role may make to another tenant changes nothing', async () => {
      const tables = await writableTables();
      // Every table the role may write, read from the catalog: one added later is covered or fails here.
      assert.ok(tables.some((t) => t.table === 'tenants') && tables.length >= 15, JSON.stringify(tables));
      const refusals: string[] = [];
      for (const { table, privileges } of tables) {
        const column = await tenantColumn(table);
        if (column === undefined) continue;
        const q = `"${table}"`;
        for (const t of [a, b]) {
          const { rows } = await app.db.ownerQuery<{ n: number }>(
            `SELECT count(*)::int AS n FROM ${q} WHERE ${column} = $1`,
            [t.id],
          );
          assert.ok(rows[0]!.n > 0, `the fixture has no ${table} row for ${t.slug}: add one to FIXTURE_SQL`);
        }
        if (privileges.includes('UPDATE')) {
          // The statement itself works: on the tenant's own rows it updates them.
          const own = await withTenant(app.db, a.id, (tx) =>
            tx.query(`UPDATE ${q} SET ${column} = ${column} WHERE ${column} = $1`, [a.id]),
          );
          assert.ok(own.rowCount > 0, `${table}: the control update touched nothing`);
        }
        const before = await snapshot(table);
        const attempts: [string, string, string][] = [];
        if (privileges.includes('UPDATE')) {
          attempts.push(['update', `UPDATE ${q} SET ${column} = ${column} WHERE ${column} = $1`, b.id]);
          attempts.push(['move', `UPDATE ${q} SET ${column} = $1 WHERE ${column} = '${a.id}'`, b.id]);
        }
        if (privileges.includes('DELETE')) {
          attempts.push(['delete', `DELETE FROM ${q} WHERE ${column} = $1`, b.id]);
        }
        for (const [what, sql, param] of attempts) {
          const outcome = await withTenant(app.db, a.id, (tx) => tx.query(sql, [param])).then(
            (r) => `${r.rowCount} rows`,
            (error: Error) => error.message,
          );
          refusals.push(`${table} ${what}: ${outcome}`);
        }
        if (privileges.includes('INSERT')) {
          // B's own row, taken out (triggers and foreign keys off, as superuser) and offered back:
          // as B it goes in, as A it must not.
          const insert = (as: string | undefined) =>
            app.db
              .ownerTransaction(async (tx) => {
                const { rows } = await tx.query<{ row: unknown }>(
                  `SELECT to_jsonb(t) AS row FROM ${q} t WHERE ${column} = $1 LIMIT 1`,
                  [b.id],
                );
                await tx.query(`SET LOCAL session_replication_role = replica`);
                await tx.query(`DELETE FROM ${q} t WHERE to_jsonb(t) = $1::jsonb`, [
                  JSON.stringify(rows[0]!.row),
                ]);
                await tx.query(`SET LOCAL session_replication_role = origin`);
                await tx.query(
                  `SELECT set_config('role', '${APP_ROLE}', true), set_config('orthid.tenant_id', $1, true)`,
                  [as ?? ''],
                );
                const r = await tx.query(
                  `INSERT INTO ${q} SELECT * FROM jsonb_populate_record(NULL::${q}, $1::jsonb)`,
                  [JSON.stringify(rows[0]!.row)],
                );
                throw Object.assign(new Error('rolled back'), { inserted: r.rowCount });
              })
              .catch((error: Error & { inserted?: number }) => error.inserted ?? error.message);
          assert.equal(
            await insert(table === 'tenants' ? undefined : b.id),
            1,
            `${table}: the control insert failed`,
          );
          refusals.push(`${table} insert: ${await insert(a.id)}`);
        }
        assert.equal(await snapshot(table), before, `${table} changed: ${refusals.join('; ')}`);
      }
      for (const outcome of refusals) {
        assert.match(outcome, /: (0 rows|.*row-level security|.*append-only|.*permission denied)/, outcome);
      }
    });

    test("a tenant's transaction can neither see nor change a table of the deployment", async () => {
      const tables = (await writableTables()).filter((t) => t.table in DEPLOYMENT_TABLES);
      assert.deepEqual(
        tables.map((t) => t.table),
        Object.keys(DEPLOYMENT_TABLES),
      );
      for (const { table } of tables) {
        const q = `"${table}"`;
        const before = await snapshot(table);
        assert.notEqual(before, '', `${table}: the fixture wrote no row`);
        const seen = await withTenant(app.db, a.id, (tx) => tx.query(`SELECT * FROM ${q}`));
        assert.equal(seen.rowCount, 0, `${table} is visible to a tenant`);
        const outcomes: string[] = [];
        for (const sql of [`UPDATE ${q} SET id = id`, `DELETE FROM ${q}`, DEPLOYMENT_TABLES[table]!]) {
          outcomes.push(
            await withTenant(app.db, a.id, (tx) => tx.query(sql)).then(
              (r) => `${r.rowCount} rows`,
              (error: Error) => error.message,
            ),
          );
        }
        assert.equal(await snapshot(table), before, `${table} changed: ${outcomes.join('; ')}`);
        assert.match(outcomes[0]!, /^0 rows$/);
        assert.match(outcomes[1]!, /^0 rows$/);
        assert.match(outcomes[2]!, /row-level security/);
      }
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
