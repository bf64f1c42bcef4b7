// An admin API token is only as good as its principal's standing: the admin API checks on every
// request that the token's client still exists and still holds orthid:admin, so revoking the
// role, removing the permission or deleting the client stops the very token already issued.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildServer } from '../../src/server/app.js';
import { withTenant } from '../../src/storage/db/database.js';
import { ADMIN_PERMISSION, adminResourceIndicator } from '../../src/tenancy/admin-resource.js';
import type { Tenant } from '../../src/tenancy/tenants.js';
import { createTestOrthId, type TestOrthId } from '../helpers/orthid.js';

describe('admin tokens after revocation', () => {
  let orthid: TestOrthId;
  let app: FastifyInstance;
  let acme: Tenant;
  let roleId: string;
  let permissionId: string;

  before(async () => {
    orthid = await createTestOrthId('postgres');
    acme = await orthid.tenants.create({ slug: 'acme', actor: 'test' });
    await withTenant(orthid.db, acme.id, async (tx) => {
      const { rows } = await tx.query<{ id: string }>(
        `SELECT p.id FROM permissions p JOIN api_resources r ON r.id = p.resource_id
          WHERE r.indicator = $1 AND p.name = $2`,
        [adminResourceIndicator(orthid.config.publicUrl), ADMIN_PERMISSION],
      );
      permissionId = rows[0]!.id;
      roleId = (await orthid.rbac.roles.create(tx, acme.id, { name: 'administrators' }, 'test')).id;
      await orthid.rbac.roles.addPermission(tx, acme.id, roleId, permissionId, 'test');
    });
    app = await buildServer(orthid);
  });

  after(async () => {
    await app?.close();
    await orthid?.close();
  });

  /** A client holding the administrators role, and a token for the admin API from the token endpoint. */
  async function adminClient(name: string) {
    const client = await withTenant(orthid.db, acme.id, async (tx) => {
      const created = await orthid.clients.create(
        tx,
        acme.id,
        {
          name,
          grantTypes: ['client_credentials'],
          resources: [adminResourceIndicator(orthid.config.publicUrl)],
        },
        'test',
      );
      await orthid.rbac.clientRoles.grant(tx, acme.id, created.clientId, roleId, 'test');
      return { id: created.clientId, secret: created.clientSecret! };
    });
    const response = await app.inject({
      method: 'POST',
      url: '/t/acme/token',
      headers: {
        authorization: `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      payload: new URLSearchParams({
        grant_type: 'client_credentials',
        scope: ADMIN_PERMISSION,
        resource: adminResourceIndicator(orthid.config.publicUrl),
      }).toString(),
    });
    assert.equal(response.statusCode, 200, response.body);
    const token = response.json().access_token as string;
    const call = (method: 'GET' | 'POST', path: string, body?: object) =>
      app.inject({
        method,
        url: `/api/v1/tenants/acme${path}`,
        headers: { authorization: `Bearer ${token}` },
        ...(body ? { payload: body } : {}),
      });
    return { ...client, call };
  }

  const codeOf = (response: { json(): unknown }) => (response.json() as { code: string }).code;

  test('revoking the role refuses the same token at once; granting it again lets it in', async () => {
    const admin = await adminClient('console');
    assert.equal((await admin.call('GET', '/roles')).statusCode, 200);
    assert.equal((await admin.call('POST', '/organisations', { name: 'Before' })).statusCode, 201);

    await withTenant(orthid.db, acme.id, (tx) =>
      orthid.rbac.clientRoles.revoke(tx, acme.id, admin.id, roleId, 'test'),
    );
    const read = await admin.call('GET', '/roles');
    assert.equal(read.statusCode, 403);
    assert.equal(codeOf(read), 'auth.forbidden');
    assert.match(String(read.headers['www-authenticate']), /error="insufficient_scope"/);
    const write = await admin.call('POST', '/organisations', { name: 'After revocation' });
    assert.equal(write.statusCode, 403);
    const names = await withTenant(orthid.db, acme.id, (tx) =>
      tx.query<{ name: string }>('SELECT name FROM organisations'),
    );
    assert.ok(!names.rows.some((r) => r.name === 'After revocation'), 'the refused write changed nothing');

    await withTenant(orthid.db, acme.id, (tx) =>
      orthid.rbac.clientRoles.grant(tx, acme.id, admin.id, roleId, 'test'),
    );
    assert.equal((await admin.call('GET', '/roles')).statusCode, 200);
  });

  test("removing orthid:admin from the principal's role refuses its token", async () => {
    const admin = await adminClient('auditor');
    assert.equal((await admin.call('GET', '/roles')).statusCode, 200);
    await withTenant(orthid.db, acme.id, (tx) =>
      orthid.rbac.roles.removePermission(tx, acme.id, roleId, permissionId, 'test'),
    );
    try {
      assert.equal((await admin.call('GET', '/roles')).statusCode, 403);
    } finally {
      await withTenant(orthid.db, acme.id, (tx) =>
        orthid.rbac.roles.addPermission(tx, acme.id, roleId, permissionId, 'test'),
      );
    }
    assert.equal((await admin.call('GET', '/roles')).statusCode, 200);
  });

  test('deleting the client refuses its token at once with 401', async () => {
    const admin = await adminClient('ops-bot');
    assert.equal((await admin.call('GET', '/roles')).statusCode, 200);
    await withTenant(orthid.db, acme.id, (tx) => orthid.clients.delete(tx, acme.id, admin.id, 'test'));
    for (const response of [
      await admin.call('GET', '/roles'),
      await admin.call('POST', '/organisations', { name: 'From a deleted client' }),
    ]) {
      assert.equal(response.statusCode, 401);
      assert.equal(codeOf(response), 'auth.unauthenticated');
      assert.match(String(response.headers['www-authenticate']), /error="invalid_token"/);
    }
  });
});
