// SQL for client_roles: roles held by machine clients (client credentials), tenant-wide.
import type { Queryable } from '../core/sql.js';
import type { RoleRow } from './roles.queries.js';

export function createClientRolesQueries(tx: Queryable) {
  return {
    async clientExists(clientId: string): Promise<boolean> {
      const { rowCount } = await tx.query('SELECT 1 FROM oidc_clients WHERE client_id = $1', [clientId]);
      return rowCount > 0;
    },
    /** True when the role was newly granted. */
    async grant(tenantId: string, clientId: string, roleId: string): Promise<boolean> {
      const { rowCount } = await tx.query(
        `INSERT INTO client_roles (tenant_id, client_id, role_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
        [tenantId, clientId, roleId],
      );
      return rowCount > 0;
    },
    /** True when the client had the role. */
    async revoke(clientId: string, roleId: string): Promise<boolean> {
      const { rowCount } = await tx.query('DELETE FROM client_roles WHERE client_id = $1 AND role_id = $2', [
        clientId,
        roleId,
      ]);
      return rowCount > 0;
    },
    async rolesPage(clientId: string, after: string | undefined, limit: number): Promise<RoleRow[]> {
      const { rows } = await tx.query<RoleRow>(
        `SELECT r.id, r.name, r.description
           FROM client_roles cr JOIN roles r ON r.tenant_id = cr.tenant_id AND r.id = cr.role_id
          WHERE cr.client_id = $1 AND ($2::uuid IS NULL OR r.id > $2::uuid) ORDER BY r.id LIMIT $3`,
        [clientId, after ?? null, limit],
      );
      return rows;
    },
  };
}
