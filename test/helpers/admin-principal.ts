// Gives a tenant a principal the admin API accepts: a client (by a chosen id) holding a role
// with orthid:admin on the tenant's admin API resource, or that role for a user through an
// organisation membership. The admin API checks both on every request, so a token minted for a
// principal that does not exist is refused.
import { randomUUID } from 'node:crypto';
import type { Queryable } from '../../src/core/sql.js';
import type { Database } from '../../src/storage/db/database.js';
import { withTenant } from '../../src/storage/db/database.js';
import { ADMIN_PERMISSION, adminResourceIndicator } from '../../src/tenancy/admin-resource.js';

const ROLE = 'test administrators';

async function adminRole(tx: Queryable, tenantId: string, publicUrl: string): Promise<string> {
  await tx.query('INSERT INTO roles (tenant_id, id, name) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [
    tenantId,
    randomUUID(),
    ROLE,
  ]);
  const { rows } = await tx.query<{ id: string }>('SELECT id FROM roles WHERE name = $1', [ROLE]);
  const roleId = rows[0]!.id;
  await tx.query(
    `INSERT INTO role_permissions (tenant_id, role_id, permission_id)
     SELECT $1, $2, p.id FROM permissions p JOIN api_resources r ON r.id = p.resource_id
      WHERE r.indicator = $3 AND p.name = $4
     ON CONFLICT DO NOTHING`,
    [tenantId, roleId, adminResourceIndicator(publicUrl), ADMIN_PERMISSION],
  );
  return roleId;
}

/** Makes `clientId` an administrator of the tenant (idempotent, not audited). */
export async function ensureAdminClient(
  db: Database,
  tenantId: string,
  clientId: string,
  publicUrl: string,
): Promise<void> {
  await withTenant(db, tenantId, async (tx) => {
    await tx.query(
      `INSERT INTO oidc_clients (tenant_id, client_id, name, metadata) VALUES ($1, $2, $2, '{}')
       ON CONFLICT DO NOTHING`,
      [tenantId, clientId],
    );
    const roleId = await adminRole(tx, tenantId, publicUrl);
    await tx.query(
      'INSERT INTO client_roles (tenant_id, client_id, role_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
      [tenantId, clientId, roleId],
    );
  });
}

/** Makes an existing user an administrator of the tenant, through a membership of a new organisation. */
export async function ensureAdminUser(
  db: Database,
  tenantId: string,
  userId: string,
  publicUrl: string,
): Promise<void> {
  await withTenant(db, tenantId, async (tx) => {
    const roleId = await adminRole(tx, tenantId, publicUrl);
    const organisationId = randomUUID();
    const membershipId = randomUUID();
    await tx.query('INSERT INTO organisations (tenant_id, id, name) VALUES ($1, $2, $3)', [
      tenantId,
      organisationId,
      `administrators ${organisationId}`,
    ]);
    await tx.query(
      'INSERT INTO memberships (tenant_id, id, organisation_id, user_id) VALUES ($1, $2, $3, $4)',
      [tenantId, membershipId, organisationId, userId],
    );
    await tx.query('INSERT INTO membership_roles (tenant_id, membership_id, role_id) VALUES ($1, $2, $3)', [
      tenantId,
      membershipId,
      roleId,
    ]);
  });
}
