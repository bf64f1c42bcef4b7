// SQL for permissions: the scopes an API resource accepts, e.g. `orders:read`.
import type { Queryable } from '../core/sql.js';

export interface PermissionRow {
  id: string;
  resource_id: string;
  resource_indicator: string;
  name: string;
  description: string;
}

const COLUMNS = `p.id, p.resource_id, r.indicator AS resource_indicator, p.name, p.description`;
const FROM = 'permissions p JOIN api_resources r ON r.tenant_id = p.tenant_id AND r.id = p.resource_id';

export function createResourcePermissionsQueries(tx: Queryable) {
  return {
    /** False when the resource already has a permission of that name. */
    async insert(
      tenantId: string,
      row: Pick<PermissionRow, 'id' | 'resource_id' | 'name' | 'description'>,
    ): Promise<boolean> {
      const { rowCount } = await tx.query(
        `INSERT INTO permissions (tenant_id, id, resource_id, name, description) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (tenant_id, resource_id, name) DO NOTHING`,
        [tenantId, row.id, row.resource_id, row.name, row.description],
      );
      return rowCount > 0;
    },
    async byId(id: string): Promise<PermissionRow | undefined> {
      const { rows } = await tx.query<PermissionRow>(`SELECT ${COLUMNS} FROM ${FROM} WHERE p.id = $1`, [id]);
      return rows[0];
    },
    async byName(resourceId: string, name: string): Promise<PermissionRow | undefined> {
      const { rows } = await tx.query<PermissionRow>(
        `SELECT ${COLUMNS} FROM ${FROM} WHERE p.resource_id = $1 AND p.name = $2`,
        [resourceId, name],
      );
      return rows[0];
    },
    async setDescription(id: string, description: string): Promise<void> {
      await tx.query('UPDATE permissions SET description = $2 WHERE id = $1', [id, description]);
    },
    async delete(id: string): Promise<boolean> {
      const { rowCount } = await tx.query('DELETE FROM permissions WHERE id = $1', [id]);
      return rowCount > 0;
    },
    async page(resourceId: string, after: string | undefined, limit: number): Promise<PermissionRow[]> {
      const { rows } = await tx.query<PermissionRow>(
        `SELECT ${COLUMNS} FROM ${FROM}
          WHERE p.resource_id = $1 AND ($2::uuid IS NULL OR p.id > $2::uuid) ORDER BY p.id LIMIT $3`,
        [resourceId, after ?? null, limit],
      );
      return rows;
    },
  };
}
