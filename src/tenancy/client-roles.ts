// Roles held by machine clients: what a client-credentials token may do, tenant-wide (a client
// belongs to no organisation). Granting and revoking are audited in the same transaction.
import { OrthIdError } from '../core/errors.js';
import type { Queryable } from '../core/sql.js';
import { createClientRolesQueries } from './client-roles.queries.js';
import { type Page, type PageRequest, pageOf } from './page.js';
import { type RbacDeps, recordChange } from './record-change.js';
import { findRole, presentRole, type Role } from './roles.js';

async function requireClient(tx: Queryable, clientId: string): Promise<void> {
  if (!(await createClientRolesQueries(tx).clientExists(clientId))) {
    throw new OrthIdError('client.not_found', `No client "${clientId}" in this tenant.`);
  }
}

export function createClientRoles(deps: RbacDeps) {
  return {
    /** Throws `client.not_found` unless the tenant has this client. */
    requireClient,

    /** Grants a role to the client; granting it again changes and records nothing. */
    async grant(
      tx: Queryable,
      tenantId: string,
      clientId: string,
      roleId: string,
      actor: string,
    ): Promise<void> {
      await requireClient(tx, clientId);
      const role = await findRole(tx, roleId);
      if (!(await createClientRolesQueries(tx).grant(tenantId, clientId, roleId))) return;
      await recordChange(deps, tx, tenantId, {
        actor,
        action: 'client.role_granted',
        target: `client:${clientId}`,
        details: { role: role.name, roleId },
      });
    },

    /** Revokes a role; revoking one the client lacks changes and records nothing. */
    async revoke(
      tx: Queryable,
      tenantId: string,
      clientId: string,
      roleId: string,
      actor: string,
    ): Promise<void> {
      await requireClient(tx, clientId);
      const role = await findRole(tx, roleId);
      if (!(await createClientRolesQueries(tx).revoke(clientId, roleId))) return;
      await recordChange(deps, tx, tenantId, {
        actor,
        action: 'client.role_revoked',
        target: `client:${clientId}`,
        details: { role: role.name, roleId },
      });
    },

    async list(tx: Queryable, clientId: string, page: PageRequest): Promise<Page<Role>> {
      await requireClient(tx, clientId);
      const rows = await createClientRolesQueries(tx).rolesPage(clientId, page.after, page.limit + 1);
      return pageOf(rows, page.limit, (r) => r.id, presentRole);
    },
  };
}

export type ClientRoles = ReturnType<typeof createClientRoles>;
