import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { readAudit } from '../../src/audit/audit-log.js';
import { isOrthIdError } from '../../src/core/errors.js';
import { ManagedKeystore } from '../../src/crypto/managed-keystore.js';
import { SHREDDED } from '../../src/crypto/tenant-keys.js';
import { composeOrthId } from '../../src/main.js';
import {
  resumeRotations,
  rotateAgedSigningKeys,
  rotateDataKey,
  rotateRootKey,
  rotationStatus,
  shredTenant,
} from '../../src/ops/key-rotation.js';
import type { OrthId } from '../../src/ops/orthid.js';
import { APP_ROLE, type Database, withTenant } from '../../src/storage/db/database.js';
import { openPostgres } from '../../src/storage/db/postgres-driver.js';
import { SYSTEM_TENANT_SLUG } from '../../src/tenancy/admin-resource.js';
import type { Tenant } from '../../src/tenancy/tenants.js';
import { createTestOrthId, DRIVERS, TEST_MASTER_KEY, type TestOrthId } from '../helpers/orthid.js';

interface KeyRow {
  id: string;
  purpose: string;
  version: number;
  root_key_id: string;
  status: string;
}

async function keyRows(app: TestOrthId, tenantId: string): Promise<KeyRow[]> {
  const { rows } = await app.db.ownerQuery<KeyRow>(
    'SELECT id, purpose, version, root_key_id, status FROM tenant_keys WHERE tenant_id = $1 ORDER BY purpose, version',
    [tenantId],
  );
  return rows;
}

async function createUsers(
  app: TestOrthId,
  tenant: Tenant,
  count: number,
  prefix: string,
): Promise<string[]> {
  return withTenant(app.db, tenant.id, async (tx) => {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const user = await app.users.create(
        tx,
        tenant.id,
        { email: `${prefix}${i}@example.test`, name: `${prefix} ${i}` },
        'test',
      );
      ids.push(user.id);
    }
    return ids;
  });
}

/** Reads and writes a tenant's sealed fields until stopped; returns every failure it met. */
function keepBusy(app: TestOrthId, tenant: Tenant, ids: string[]) {
  const failures: unknown[] = [];
  const run = Math.random().toString(36).slice(2, 8);
  let running = true;
  let n = 0;
  const loop = (async () => {
    while (running) {
      // Requests arrive through I/O; yielding lets the rotation's own file and socket I/O run.
      await new Promise((resolve) => setImmediate(resolve));
      n += 1;
      try {
        await withTenant(app.db, tenant.id, async (tx) => {
          const user = await app.users.get(tx, tenant.id, ids[n % ids.length]!);
          assert.match(user.email, /@example\.test$/);
          await app.users.create(
            tx,
            tenant.id,
            { email: `busy-${run}-${n}@example.test`, name: `Busy ${n}` },
            'test',
          );
        });
      } catch (error) {
        failures.push(error);
      }
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { failures, requests: n };
    },
  };
}

/** Every user of the tenant opens with keys loaded afresh from the database and custody. */
async function allUsersOpen(app: TestOrthId, tenant: Tenant): Promise<number> {
  app.tenantKeys.invalidate();
  const { rows } = await app.db.ownerQuery<{ id: string }>('SELECT id FROM users WHERE tenant_id = $1', [
    tenant.id,
  ]);
  await withTenant(app.db, tenant.id, async (tx) => {
    for (const { id } of rows) assert.notEqual((await app.users.get(tx, tenant.id, id)).email, SHREDDED);
  });
  return rows.length;
}

/** The same deployment opened through a login that is only a member of the application role. */
async function asServerLogin(app: TestOrthId): Promise<{ app: OrthId; db: Database }> {
  await app.db.ownerQuery(`CREATE ROLE orthid_server_rotation LOGIN IN ROLE ${APP_ROLE}`).catch(() => {});
  const url = new URL(app.databaseUrl!);
  url.username = 'orthid_server_rotation';
  const db = await openPostgres(url.toString());
  const { config, clock, log, keystore, objects } = app;
  return { app: composeOrthId({ config, clock, log, keystore, objects, db }), db };
}

for (const driver of DRIVERS) {
  describe(`key rotation and crypto-shredding (${driver})`, () => {
    let app: TestOrthId;
    let acme: Tenant;
    let globex: Tenant;
    let acmeUsers: string[];
    let globexUsers: string[];

    before(async () => {
      app = await createTestOrthId(driver);
      await app.tenants.create({ slug: SYSTEM_TENANT_SLUG, actor: 'test' });
      acme = await app.tenants.create({ slug: 'acme', actor: 'test' });
      globex = await app.tenants.create({ slug: 'globex', actor: 'test' });
      acmeUsers = await createUsers(app, acme, 230, 'acme');
      globexUsers = await createUsers(app, globex, 5, 'globex');
    });
    after(() => app.close());

    test("a new tenant's keys are wrapped by a root key of its own", async () => {
      const roots = await app.custody.rootKeys();
      for (const tenant of [acme, globex]) {
        const own = roots.filter((k) => k.scope === tenant.id).map((k) => k.id);
        assert.equal(own.length, 1);
        for (const row of await keyRows(app, tenant.id)) assert.equal(row.root_key_id, own[0]);
      }
    });

    test('root rotation re-wraps every data key under the new version while requests go on', async () => {
      const before = await keyRows(app, acme.id);
      const busy = keepBusy(app, acme, acmeUsers);
      const result = await rotateRootKey(app, acme, 'test');
      const { failures, requests } = await busy.stop();
      assert.deepEqual(failures, []);
      assert.ok(requests > 0);
      assert.equal(result.rewrapped, before.length);
      for (const row of await keyRows(app, acme.id)) assert.equal(row.root_key_id, result.rootKeyId);
      const roots = (await app.custody.rootKeys()).filter((k) => k.scope === acme.id);
      assert.deepEqual(
        roots.map((k) => [k.id === result.rootKeyId ? 'new' : 'old', k.status]),
        [
          ['old', 'retired'],
          ['new', 'active'],
        ],
      );
      assert.ok((await allUsersOpen(app, acme)) >= acmeUsers.length);
    });

    test('a stopped re-encryption pass resumes with the same data key version when OrthID starts', async () => {
      await assert.rejects(
        rotateDataKey(app, acme, 'test', () => {
          throw new Error('stopped after the first batch');
        }),
        /stopped after the first batch/,
      );
      const [running] = (await rotationStatus(app)).filter((r) => r.tenant === 'acme' && r.kind === 'data');
      assert.equal(running?.status, 'running');
      assert.ok(running.done > 0 && running.done < running.total, `${running.done}/${running.total}`);

      const busy = keepBusy(app, acme, acmeUsers);
      // What `orthid start` does with a pass a stopped process left running; on PostgreSQL as
      // the least-privilege server login, which row-level security confines like every request.
      const server = driver === 'postgres' ? await asServerLogin(app) : undefined;
      const [finished] = await resumeRotations(server?.app ?? app).finally(() => server?.db.close());
      const { failures } = await busy.stop();
      assert.deepEqual(failures, []);
      assert.equal(finished?.tenant, 'acme');
      assert.equal(finished.targetKeyId, running.targetKeyId);
      assert.equal(finished.status, 'done');

      const data = (await keyRows(app, acme.id)).filter((r) => r.purpose === 'data');
      assert.deepEqual(
        data.map((r) => r.version),
        [1, 2],
        'the resumed pass added no third version',
      );
      const { rows } = await app.db.ownerQuery<{ n: string }>(
        `SELECT count(*) AS n FROM users WHERE tenant_id = $1 AND (email NOT LIKE 'enc1.' || $2 || '.%' OR name NOT LIKE 'enc1.' || $2 || '.%')`,
        [acme.id, finished.targetKeyId],
      );
      assert.equal(Number(rows[0]!.n), 0, 'every user is sealed under the new version');
      // Audit events are append-only and chained over their ciphertext: the old version stays
      // decrypt-only while any of them names it, and is destroyed once none do.
      const audit = await app.db.ownerQuery<{ n: string }>(
        `SELECT count(*) AS n FROM audit_events WHERE tenant_id = $1 AND details LIKE 'enc1.' || $2 || '.%'`,
        [acme.id, data[0]!.id],
      );
      assert.equal(data[0]!.status, Number(audit.rows[0]!.n) > 0 ? 'decrypt_only' : 'destroyed');
      assert.ok((await allUsersOpen(app, acme)) > acmeUsers.length);
    });

    test('shredding a tenant destroys its keys for good; restored older key rows stay unreadable', async () => {
      const olderBackupRows = await app.db.ownerQuery<{ id: string; wrapped: string; status: string }>(
        'SELECT id, wrapped, status FROM tenant_keys WHERE tenant_id = $1',
        [acme.id],
      );
      const result = await shredTenant(app, acme, 'cli');
      assert.ok(result.destroyedRootKeyIds.length >= 2);

      const user = await withTenant(app.db, acme.id, (tx) => app.users.get(tx, acme.id, acmeUsers[0]!));
      assert.equal(user.email, SHREDDED);
      await assert.rejects(
        withTenant(app.db, acme.id, (tx) =>
          app.users.create(tx, acme.id, { email: 'new@example.test' }, 'test'),
        ),
        (e) => isOrthIdError(e, 'crypto.shredded'),
      );
      await assert.rejects(app.oidc.get('acme'), (e) => isOrthIdError(e, 'crypto.shredded'));

      // As if an older backup were restored: the wrapped data keys come back, the root keys do not.
      await app.db.ownerTransaction(async (tx) => {
        for (const row of olderBackupRows.rows) {
          await tx.query(
            'UPDATE tenant_keys SET wrapped = $2, status = $3 WHERE tenant_id = $4 AND id = $1',
            [row.id, row.wrapped, row.status, acme.id],
          );
        }
      });
      app.tenantKeys.invalidate();
      const restored = await withTenant(app.db, acme.id, (tx) => app.users.get(tx, acme.id, acmeUsers[1]!));
      assert.equal(restored.email, SHREDDED);
      assert.equal(await allUsersOpen(app, globex), globexUsers.length);

      const tombstones = app.keystore.destroyedKeys();
      assert.deepEqual(tombstones.map((k) => k.id).sort(), [...result.destroyedRootKeyIds].sort());
      assert.ok(tombstones.every((k) => k.by === 'cli' && k.scope === acme.id));
      const system = await app.tenants.get(SYSTEM_TENANT_SLUG);
      const [event] = await withTenant(app.db, system.id, async (tx) =>
        readAudit(tx, await app.tenantKeys.forTenant(tx, system.id), { limit: 1 }),
      );
      assert.equal(event?.action, 'tenant.shredded');
      assert.equal(event?.actor, 'cli');
      assert.deepEqual(
        (event!.details as { destroyedRootKeyIds: string[] }).destroyedRootKeyIds,
        result.destroyedRootKeyIds,
      );
    });

    test('importing a keystore export taken before the shred does not bring the keys back', async () => {
      const contents = app.keystore.exportContents();
      const older = {
        ...contents,
        destroyedKeys: [],
        rootKeys: [
          ...contents.rootKeys,
          ...app.keystore.destroyedKeys().map((k) => ({
            id: k.id,
            key: Buffer.alloc(32, 7).toString('base64'),
            createdAt: k.destroyedAt,
            status: 'active' as const,
            scope: k.scope,
          })),
        ],
      };
      const merged = await ManagedKeystore.import(app.config.keystorePath, TEST_MASTER_KEY, older);
      const held = new Set(merged.rootKeyIds());
      for (const k of app.keystore.destroyedKeys()) assert.equal(held.has(k.id), false);
    });

    test('scheduled signing rotation replaces only keys older than the configured age, skipping shredded tenants', async () => {
      assert.deepEqual(await rotateAgedSigningKeys(app, 3_600_000), []);
      const before = await app.db.ownerQuery<{ kid: string; alg: string }>(
        `SELECT kid, alg FROM signing_keys WHERE tenant_id = $1 AND status = 'active'`,
        [globex.id],
      );
      assert.deepEqual(before.rows.map((r) => r.alg).sort(), ['ES256', 'EdDSA', 'RS256']);
      const rotated = await rotateAgedSigningKeys(app, 0);
      // Every algorithm's key of every live tenant, once.
      assert.deepEqual(
        rotated.map((r) => r.tenant).sort(),
        ['globex', 'globex', 'globex', SYSTEM_TENANT_SLUG, SYSTEM_TENANT_SLUG, SYSTEM_TENANT_SLUG].sort(),
      );
      const { rows } = await app.db.ownerQuery<{ kid: string; alg: string; status: string }>(
        `SELECT kid, alg, status FROM signing_keys WHERE tenant_id = $1 ORDER BY created_at`,
        [globex.id],
      );
      for (const { alg, kid } of before.rows) {
        assert.deepEqual(
          rows.filter((r) => r.alg === alg).map((r) => r.status),
          ['retiring', 'active'],
          `the previous ${alg} key keeps verifying tokens it signed`,
        );
        assert.equal(rows.find((r) => r.alg === alg)!.kid, kid);
      }
    });

    test('the system tenant cannot be shredded', async () => {
      await assert.rejects(shredTenant(app, await app.tenants.get(SYSTEM_TENANT_SLUG), 'cli'), (e) =>
        isOrthIdError(e, 'tenant.protected'),
      );
    });
  });
}
