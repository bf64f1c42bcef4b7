// Who can open the admin console: its public client, registered with the system tenant at the
// first start and with each tenant `tenant create` makes, repaired on start; and the operator
// `user create --admin` makes, whose sign-in carries orthid:admin.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readAudit } from '../../src/audit/audit-log.js';
import { createClientsQueries } from '../../src/oidc/clients.queries.js';
import { CONSOLE_CLIENT_ID } from '../../src/oidc/console-client.js';
import { bootstrap } from '../../src/ops/bootstrap.js';
import { repairConsoleClients } from '../../src/ops/console-access.js';
import { runOperation } from '../../src/ops/operations.js';
import { withTenant } from '../../src/storage/db/database.js';
import {
  ADMIN_PERMISSION,
  adminResourceIndicator,
  SYSTEM_TENANT_SLUG,
} from '../../src/tenancy/admin-resource.js';
import { resolveGrants } from '../../src/tenancy/permissions.js';
import { createTestOrthId, DRIVERS, type TestOrthId } from '../helpers/orthid.js';

const PUBLIC_URL = 'https://id.example.test';

for (const driver of DRIVERS) {
  describe(`admin console access (${driver})`, () => {
    let app: TestOrthId;

    before(async () => {
      app = await createTestOrthId(driver, { env: { ORTHID_PUBLIC_URL: PUBLIC_URL } });
      await bootstrap(app, join(app.dataDir, 'admin-credentials.json'));
    });
    after(() => app.close());

    const consoleClient = async (slug: string) => {
      const tenant = await app.tenants.get(slug);
      return withTenant(app.db, tenant.id, (tx) => app.clients.get(tx, CONSOLE_CLIENT_ID));
    };

    test('the first start registers the console as a public, first-party client of the system tenant', async () => {
      const client = await consoleClient(SYSTEM_TENANT_SLUG);
      assert.equal(client.public, true);
      assert.equal(client.tokenEndpointAuthMethod, 'none');
      assert.equal(client.firstParty, true);
      assert.deepEqual(client.grantTypes, ['authorization_code']);
      assert.deepEqual(client.redirectUris, [`${PUBLIC_URL}/console/callback`]);
      assert.deepEqual(client.resources, [adminResourceIndicator(PUBLIC_URL)]);
    });

    test('a tenant created by `tenant create` gets the console client, so its own administrators can sign in', async () => {
      await runOperation(app, 'tenant.create', { slug: 'acme' });
      assert.deepEqual((await consoleClient('acme')).redirectUris, [`${PUBLIC_URL}/console/callback`]);
    });

    test('a start repairs a console client that is missing or out of date, audited, and otherwise changes nothing', async () => {
      assert.equal(await repairConsoleClients(app), 0);
      const system = await app.tenants.get(SYSTEM_TENANT_SLUG);
      const acme = await app.tenants.get('acme');
      await withTenant(app.db, system.id, (tx) =>
        createClientsQueries(tx).replace({
          client_id: CONSOLE_CLIENT_ID,
          name: 'OrthID admin console',
          secret_hash: null,
          metadata: {
            client_id: CONSOLE_CLIENT_ID,
            redirect_uris: ['https://old.example.test/console/callback'],
            grant_types: ['authorization_code'],
            token_endpoint_auth_method: 'none',
          },
        }),
      );
      await withTenant(app.db, acme.id, (tx) => createClientsQueries(tx).delete(CONSOLE_CLIENT_ID));

      assert.equal(await repairConsoleClients(app), 2);
      assert.deepEqual((await consoleClient(SYSTEM_TENANT_SLUG)).redirectUris, [
        `${PUBLIC_URL}/console/callback`,
      ]);
      assert.equal((await consoleClient(SYSTEM_TENANT_SLUG)).public, true);
      assert.deepEqual((await consoleClient('acme')).redirectUris, [`${PUBLIC_URL}/console/callback`]);
      const actions = await withTenant(app.db, system.id, async (tx) =>
        (await readAudit(tx, await app.tenantKeys.forTenant(tx, system.id), { limit: 5 })).map(
          (e) => e.action,
        ),
      );
      assert.ok(actions.includes('client.updated'));
      assert.equal(await repairConsoleClients(app), 0);
    });

    test('`user create --admin` makes a user whose grants on the admin API hold orthid:admin', async () => {
      const user = (await runOperation(app, 'user.create', {
        tenant: SYSTEM_TENANT_SLUG,
        email: 'olive@operators.test',
        password: 'a long enough operator passphrase',
        admin: true,
      })) as { id: string };
      const second = (await runOperation(app, 'user.create', {
        tenant: SYSTEM_TENANT_SLUG,
        email: 'sam@operators.test',
        admin: true,
      })) as { id: string };
      const plain = (await runOperation(app, 'user.create', {
        tenant: SYSTEM_TENANT_SLUG,
        email: 'pat@operators.test',
      })) as { id: string };
      const system = await app.tenants.get(SYSTEM_TENANT_SLUG);
      const grants = (userId: string) =>
        withTenant(app.db, system.id, (tx) =>
          resolveGrants(tx, { kind: 'user', userId }, adminResourceIndicator(PUBLIC_URL)),
        );
      assert.ok((await grants(user.id)).permissions.includes(ADMIN_PERMISSION));
      assert.deepEqual((await grants(second.id)).roles, ['administrator']);
      assert.deepEqual((await grants(plain.id)).permissions, []);
      // Both administrators share one role and one organisation.
      const names = await withTenant(app.db, system.id, async (tx) => ({
        roles: (await app.rbac.roles.list(tx, { limit: 200 })).items.map((r) => r.name),
        organisations: (await app.rbac.organisations.list(tx, { limit: 200 })).items.map((o) => o.name),
      }));
      assert.equal(names.roles.filter((n) => n === 'administrator').length, 1);
      assert.deepEqual(names.organisations, ['Administrators']);
    });

    test('`user create --admin` in another tenant makes an administrator of that tenant only', async () => {
      const user = (await runOperation(app, 'user.create', {
        tenant: 'acme',
        email: 'ann@acme.test',
        admin: true,
      })) as { id: string };
      const acme = await app.tenants.get('acme');
      const grants = await withTenant(app.db, acme.id, (tx) =>
        resolveGrants(tx, { kind: 'user', userId: user.id }, adminResourceIndicator(PUBLIC_URL)),
      );
      assert.deepEqual(grants.permissions, [ADMIN_PERMISSION]);
    });
  });
}
