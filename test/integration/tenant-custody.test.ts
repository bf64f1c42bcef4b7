// A tenant that brings its own key (an AWS KMS key, here on moto_server: a stand-in KMS-protocol
// server, not AWS) beside tenants on the deployment's managed custody.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { isOrthIdError } from '../../src/core/errors.js';
import { withTenant } from '../../src/storage/db/database.js';
import type { Tenant } from '../../src/tenancy/tenants.js';
import { type KmsTestServer, startKmsServer, TEST_CREDENTIALS } from '../helpers/kms-server.js';
import { createTestOrthId, type TestOrthId } from '../helpers/orthid.js';

describe('per-tenant key custody (bring your own key; KMS on moto_server, a stand-in)', () => {
  let app: TestOrthId;
  let kms: KmsTestServer;
  let byok: Tenant;
  let plain: Tenant;
  let custodyUri: string;
  const users: Record<string, string> = {};

  before(async () => {
    kms = await startKmsServer();
    // The standard AWS chain: what the pods' role or the operator's profile provides.
    process.env.AWS_ACCESS_KEY_ID = TEST_CREDENTIALS.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = TEST_CREDENTIALS.secretAccessKey;
    custodyUri = `awskms:${kms.alias}?region=${kms.region}&endpoint=${kms.endpoint}`;
    app = await createTestOrthId('pglite');
    byok = await app.tenants.create({ slug: 'byok', keyCustody: custodyUri, actor: 'test' });
    plain = await app.tenants.create({ slug: 'plain', actor: 'test' });
    for (const tenant of [byok, plain]) {
      users[tenant.slug] = await withTenant(app.db, tenant.id, async (tx) => {
        const user = await app.users.create(tx, tenant.id, { email: `ann@${tenant.slug}.example` }, 'test');
        return user.id;
      });
    }
  });
  after(async () => {
    await app?.close();
    await kms?.stop();
  });

  test("the tenant's keys are wrapped by KMS; the other tenant's by the managed keystore", async () => {
    const { rows } = await app.db.ownerQuery<{ slug: string; custody: string; root_key_id: string }>(
      `SELECT t.slug, k.custody, k.root_key_id FROM tenant_keys k JOIN tenants t ON t.id = k.tenant_id
        WHERE t.slug IN ('byok', 'plain') ORDER BY t.slug`,
    );
    const byTenant = (slug: string) => rows.filter((r) => r.slug === slug);
    assert.ok(byTenant('byok').length >= 2);
    for (const row of byTenant('byok')) {
      assert.equal(row.custody, 'awskms');
      assert.match(row.root_key_id, /^arn:aws:kms:/);
    }
    for (const row of byTenant('plain')) assert.equal(row.custody, 'managed');
    const user = await withTenant(app.db, byok.id, (tx) => app.users.get(tx, byok.id, users.byok!));
    assert.equal(user.email, 'ann@byok.example');
  });

  test('a tenant whose custody cannot be reached is not created, and nothing of it remains', async () => {
    await assert.rejects(
      app.tenants.create({
        slug: 'unreachable',
        keyCustody: `awskms:${kms.alias}?region=${kms.region}&endpoint=http://127.0.0.1:9`,
        actor: 'test',
      }),
      (e) => isOrthIdError(e, 'keystore.custody_unavailable'),
    );
    const { rows } = await app.db.ownerQuery(`SELECT 1 FROM tenants WHERE slug = 'unreachable'`);
    assert.equal(rows.length, 0);
  });

  test("when the tenant's KMS is down, its requests fail with keystore.custody_unavailable; others go on", async () => {
    await kms.stop();
    app.tenantKeys.invalidate();
    await assert.rejects(
      withTenant(app.db, byok.id, (tx) => app.users.get(tx, byok.id, users.byok!)),
      (e) => isOrthIdError(e, 'keystore.custody_unavailable'),
    );
    const user = await withTenant(app.db, plain.id, (tx) => app.users.get(tx, plain.id, users.plain!));
    assert.equal(user.email, 'ann@plain.example');
  });
});
