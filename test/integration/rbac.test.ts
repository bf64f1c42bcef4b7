import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { isOrthIdError } from '../../src/core/errors.js';
import type { Queryable } from '../../src/core/sql.js';
import { withTenant } from '../../src/storage/db/database.js';
import {
  ADMIN_PERMISSION,
  adminResourceIndicator,
  ensureAdminResource,
} from '../../src/tenancy/admin-resource.js';
import { hasPermission, resolveGrants } from '../../src/tenancy/permissions.js';
import type { Tenant } from '../../src/tenancy/tenants.js';
import { createTestOrthId, DRIVERS, type TestOrthId } from '../helpers/orthid.js';

const ORDERS = 'https://orders.example.test';
const BILLING = 'https://billing.example.test';

/** A registered OIDC client row, as the clients service stores it (only what client_roles needs). */
async function insertClient(tx: Queryable, tenantId: string, clientId: string): Promise<void> {
  await tx.query(
    `INSERT INTO oidc_clients (tenant_id, client_id, name, metadata) VALUES ($1, $2, $3, '{}'::jsonb)`,
    [tenantId, clientId, clientId],
  );
}

async function auditCount(tx: Queryable): Promise<number> {
  const { rows } = await tx.query<{ n: string }>('SELECT count(*) AS n FROM audit_events');
  return Number(rows[0]!.n);
}

for (const driver of DRIVERS) {
  describe(`organisations and RBAC (${driver})`, () => {
    let app: TestOrthId;
    let tenant: Tenant;
    let other: Tenant;
    const ids: Record<string, string> = {};
    const in_ = <T>(fn: (tx: Queryable) => Promise<T>) => withTenant(app.db, tenant.id, fn);

    before(async () => {
      app = await createTestOrthId(driver);
      tenant = await app.tenants.create({ slug: 'acme', actor: 'test' });
      other = await app.tenants.create({ slug: 'globex', actor: 'test' });
      const { rbac, users } = app;
      await in_(async (tx) => {
        ids.ann = (await users.create(tx, tenant.id, { email: 'ann@acme.test' }, 'test')).id;
        ids.north = (await rbac.organisations.create(tx, tenant.id, { name: 'North' }, 'test')).id;
        ids.south = (await rbac.organisations.create(tx, tenant.id, { name: 'South' }, 'test')).id;
        const orders = await rbac.resources.create(
          tx,
          tenant.id,
          { indicator: ORDERS, name: 'Orders' },
          'test',
        );
        const billing = await rbac.resources.create(
          tx,
          tenant.id,
          { indicator: BILLING, name: 'Billing' },
          'test',
        );
        ids.orders = orders.id;
        const perm = async (resourceId: string, name: string) =>
          (await rbac.permissions.create(tx, tenant.id, resourceId, { name }, 'test')).id;
        const read = await perm(orders.id, 'orders:read');
        const write = await perm(orders.id, 'orders:write');
        const refund = await perm(orders.id, 'orders:refund');
        const invoices = await perm(billing.id, 'invoices:read');
        const role = async (name: string, permissionIds: string[]) => {
          const created = await rbac.roles.create(tx, tenant.id, { name }, 'test');
          for (const p of permissionIds) await rbac.roles.addPermission(tx, tenant.id, created.id, p, 'test');
          return created.id;
        };
        ids.viewer = await role('viewer', [read, invoices]);
        ids.clerk = await role('clerk', [read, write]);
        ids.auditor = await role('auditor', [invoices]);
        ids.support = await role('support', [refund, read]);
        const north = await rbac.memberships.add(tx, tenant.id, ids.north!, ids.ann!, 'test');
        const south = await rbac.memberships.add(tx, tenant.id, ids.south!, ids.ann!, 'test');
        ids.northMembership = north.id;
        await rbac.memberships.grantRole(tx, tenant.id, north.id, ids.viewer!, 'test');
        await rbac.memberships.grantRole(tx, tenant.id, south.id, ids.clerk!, 'test');
        await rbac.memberships.grantRole(tx, tenant.id, south.id, ids.auditor!, 'test');
        await insertClient(tx, tenant.id, 'reporting-job');
        await rbac.clientRoles.grant(tx, tenant.id, 'reporting-job', ids.support!, 'test');
      });
    });
    after(() => app.close());

    test("a user's grants within one organisation come only from the roles granted there", async () => {
      const north = await in_((tx) =>
        resolveGrants(tx, { kind: 'user', userId: ids.ann!, organisationId: ids.north }, ORDERS),
      );
      assert.deepEqual(north, {
        permissions: ['orders:read'],
        roles: ['viewer'],
        organisations: [ids.north],
        organisationId: ids.north,
      });
      const south = await in_((tx) =>
        resolveGrants(tx, { kind: 'user', userId: ids.ann!, organisationId: ids.south }, ORDERS),
      );
      assert.deepEqual(south, {
        permissions: ['orders:read', 'orders:write'],
        roles: ['auditor', 'clerk'],
        organisations: [ids.south],
        organisationId: ids.south,
      });
    });

    test("without an organisation a user's grants are the union over all their memberships, sorted and unique", async () => {
      const all = await in_((tx) => resolveGrants(tx, { kind: 'user', userId: ids.ann! }, ORDERS));
      assert.deepEqual(all, {
        permissions: ['orders:read', 'orders:write'],
        roles: ['auditor', 'clerk', 'viewer'],
        organisations: [ids.north!, ids.south!].sort(),
      });
      assert.ok(hasPermission(all, 'orders:write'));
      assert.ok(!hasPermission(all, 'orders:refund'));
    });

    test('only permissions of the requested resource are returned', async () => {
      const billing = await in_((tx) => resolveGrants(tx, { kind: 'user', userId: ids.ann! }, BILLING));
      assert.deepEqual(billing.permissions, ['invoices:read']);
      const unknown = await in_((tx) =>
        resolveGrants(tx, { kind: 'user', userId: ids.ann! }, 'https://nowhere.test'),
      );
      assert.deepEqual(unknown.permissions, []);
    });

    test('a client holds the permissions of its client roles', async () => {
      const grants = await in_((tx) =>
        resolveGrants(tx, { kind: 'client', clientId: 'reporting-job' }, ORDERS),
      );
      assert.deepEqual(grants, { permissions: ['orders:read', 'orders:refund'], roles: ['support'] });
      const none = await in_((tx) => resolveGrants(tx, { kind: 'client', clientId: 'nobody' }, ORDERS));
      assert.deepEqual(none, { permissions: [], roles: [] });
    });

    test('an organisation the user is not a member of grants nothing and is not echoed', async () => {
      const stranger = await in_((tx) =>
        app.rbac.organisations.create(tx, tenant.id, { name: 'Elsewhere' }, 'test'),
      );
      const grants = await in_((tx) =>
        resolveGrants(tx, { kind: 'user', userId: ids.ann!, organisationId: stranger.id }, ORDERS),
      );
      assert.deepEqual(grants, { permissions: [], roles: [] });
      const notAnId = await in_((tx) => resolveGrants(tx, { kind: 'user', userId: 'not-a-uuid' }, ORDERS));
      assert.deepEqual(notAnId, { permissions: [], roles: [] });
    });

    test("another tenant's transaction sees none of these grants", async () => {
      const grants = await withTenant(app.db, other.id, (tx) =>
        resolveGrants(tx, { kind: 'client', clientId: 'reporting-job' }, ORDERS),
      );
      assert.deepEqual(grants, { permissions: [], roles: [] });
      const rows = await withTenant(app.db, other.id, (tx) => tx.query('SELECT 1 FROM client_roles'));
      assert.equal(rows.rowCount, 0);
    });

    test('revoking a role, removing a permission or deleting a role takes effect on the next resolution', async () => {
      const { rbac } = app;
      await in_((tx) =>
        rbac.memberships.revokeRole(tx, tenant.id, ids.northMembership!, ids.viewer!, 'test'),
      );
      const north = await in_((tx) =>
        resolveGrants(tx, { kind: 'user', userId: ids.ann!, organisationId: ids.north }, ORDERS),
      );
      assert.deepEqual(north, { permissions: [], roles: [], organisationId: ids.north });

      const temp = await in_(async (tx) => {
        const role = await rbac.roles.create(tx, tenant.id, { name: 'temporary' }, 'test');
        await rbac.clientRoles.grant(tx, tenant.id, 'reporting-job', role.id, 'test');
        return role;
      });
      let grants = await in_((tx) =>
        resolveGrants(tx, { kind: 'client', clientId: 'reporting-job' }, ORDERS),
      );
      assert.deepEqual(grants.roles, ['support', 'temporary']);
      await in_((tx) => rbac.roles.delete(tx, tenant.id, temp.id, 'test'));
      grants = await in_((tx) => resolveGrants(tx, { kind: 'client', clientId: 'reporting-job' }, ORDERS));
      assert.deepEqual(grants.roles, ['support']);
      await in_((tx) => rbac.memberships.grantRole(tx, tenant.id, ids.northMembership!, ids.viewer!, 'test'));
    });

    test('every tenant has the admin API resource with orthid:admin, and ensuring it again changes nothing', async () => {
      const indicator = adminResourceIndicator(app.config.publicUrl);
      assert.equal(indicator, `${app.config.publicUrl}/api`);
      const count = async () =>
        in_(async (tx) => {
          await ensureAdminResource(tx, tenant.id, app.config.publicUrl);
          await ensureAdminResource(tx, tenant.id, app.config.publicUrl);
          const { rows } = await tx.query<{ name: string }>(
            `SELECT p.name FROM permissions p JOIN api_resources r ON r.id = p.resource_id WHERE r.indicator = $1`,
            [indicator],
          );
          return rows.map((r) => r.name);
        });
      assert.deepEqual(await count(), [ADMIN_PERMISSION]);
      assert.deepEqual(await count(), [ADMIN_PERMISSION]);
    });

    test('the admin API resource and its orthid:admin permission cannot be deleted', async () => {
      const { rbac } = app;
      await in_(async (tx) => {
        const resources = await rbac.resources.list(tx, { limit: 200 });
        const admin = resources.items.find(
          (r) => r.indicator === adminResourceIndicator(app.config.publicUrl),
        )!;
        await assert.rejects(rbac.resources.delete(tx, tenant.id, admin.id, 'test'), (e) =>
          isOrthIdError(e, 'api_resource.protected'),
        );
        const permission = (await rbac.permissions.list(tx, admin.id, { limit: 200 })).items[0]!;
        await assert.rejects(rbac.permissions.delete(tx, tenant.id, admin.id, permission.id, 'test'), (e) =>
          isOrthIdError(e, 'api_resource.protected'),
        );
      });
    });

    test('names that are taken, unknown ids and invalid names are refused with their codes and record nothing', async () => {
      const { rbac } = app;
      const before = await in_(auditCount);
      await in_(async (tx) => {
        const expect = async (promise: Promise<unknown>, code: string) => {
          await assert.rejects(promise, (e) => isOrthIdError(e) && e.code === code);
        };
        await expect(
          rbac.organisations.create(tx, tenant.id, { name: 'North' }, 'test'),
          'organisation.name_taken',
        );
        await expect(rbac.roles.create(tx, tenant.id, { name: 'viewer' }, 'test'), 'role.name_taken');
        await expect(
          rbac.resources.create(tx, tenant.id, { indicator: ORDERS, name: 'x' }, 'test'),
          'api_resource.indicator_taken',
        );
        await expect(
          rbac.resources.create(tx, tenant.id, { indicator: 'not a uri', name: 'x' }, 'test'),
          'api_resource.indicator_invalid',
        );
        await expect(
          rbac.resources.create(tx, tenant.id, { indicator: `${ORDERS}/#frag`, name: 'x' }, 'test'),
          'api_resource.indicator_invalid',
        );
        await expect(
          rbac.permissions.create(tx, tenant.id, ids.orders!, { name: 'orders read' }, 'test'),
          'permission.name_invalid',
        );
        await expect(
          rbac.permissions.create(tx, tenant.id, ids.orders!, { name: 'orders:read' }, 'test'),
          'permission.name_taken',
        );
        await expect(rbac.memberships.add(tx, tenant.id, ids.north!, ids.ann!, 'test'), 'membership.exists');
        await expect(rbac.memberships.add(tx, tenant.id, ids.north!, ids.viewer!, 'test'), 'user.not_found');
        await expect(
          rbac.organisations.rename(tx, tenant.id, ids.north!, 'South', 'test'),
          'organisation.name_taken',
        );
        await expect(
          rbac.clientRoles.grant(tx, tenant.id, 'nobody', ids.viewer!, 'test'),
          'client.not_found',
        );
        await expect(
          rbac.clientRoles.grant(tx, tenant.id, 'reporting-job', ids.north!, 'test'),
          'role.not_found',
        );
        await expect(rbac.organisations.get(tx, ids.viewer!), 'organisation.not_found');
      });
      assert.equal(await in_(auditCount), before);
    });

    test('each change appends one audit event naming the actor, and repeating a grant records nothing', async () => {
      const { rbac } = app;
      const before = await in_(auditCount);
      const role = await in_((tx) => rbac.roles.create(tx, tenant.id, { name: 'observer' }, 'user:admin'));
      await in_((tx) => rbac.roles.update(tx, tenant.id, role.id, { description: 'Looks' }, 'user:admin'));
      await in_((tx) =>
        rbac.memberships.grantRole(tx, tenant.id, ids.northMembership!, role.id, 'user:admin'),
      );
      await in_((tx) =>
        rbac.memberships.grantRole(tx, tenant.id, ids.northMembership!, role.id, 'user:admin'),
      );
      await in_((tx) => rbac.roles.delete(tx, tenant.id, role.id, 'user:admin'));
      const events = await in_(async (tx) => {
        const { rows } = await tx.query<{ action: string; actor: string; target: string }>(
          'SELECT action, actor, target FROM audit_events WHERE seq > $1 ORDER BY seq',
          [before],
        );
        return rows;
      });
      assert.deepEqual(
        events.map((e) => e.action),
        ['role.created', 'role.updated', 'membership.role_granted', 'role.deleted'],
      );
      assert.ok(events.every((e) => e.actor === 'user:admin'));
      assert.equal(events[0]!.target, `role:${role.id}`);
    });

    test('lists page through every item exactly once', async () => {
      const { rbac } = app;
      await in_(async (tx) => {
        for (let i = 0; i < 7; i++) await rbac.roles.create(tx, tenant.id, { name: `paged-${i}` }, 'test');
      });
      const seen: string[] = [];
      let after: string | undefined;
      let pages = 0;
      do {
        const page = await in_((tx) => rbac.roles.list(tx, { limit: 3, ...(after ? { after } : {}) }));
        seen.push(...page.items.map((r) => r.id));
        after = page.next ?? undefined;
        pages += 1;
      } while (after);
      const all = await in_((tx) => rbac.roles.list(tx, { limit: 200 }));
      assert.equal(all.next, null);
      assert.deepEqual(
        seen,
        all.items.map((r) => r.id),
      );
      assert.equal(new Set(seen).size, seen.length);
      assert.equal(pages, Math.ceil(all.items.length / 3));
    });
  });
}
