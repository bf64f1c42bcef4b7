// SQL for roles (tenant-wide definitions) and the permissions each role carries.
import type { Queryable } from '../core/sql.js';
import type { PermissionRow } from './resource-permissions.queries.js';

export interface RoleRow {
  id: string;
  name: string;
  description: string;
}

const COLUMNS = 'id, name, description';

export function createRolesQueries(tx: Queryable) {
  return {
    /** Undefined when the name is taken. */
    async insert(tenantId: string, row: RoleRow): Promise<RoleRow | undefined> {
      const { rows } = await tx.query<RoleRow>(
        `INSERT INTO roles (tenant_id, id, name, description) VALUES ($1, $2, $3, $4)
         ON CONFLICT (tenant_id, name) DO NOTHING RETURNING ${COLUMNS}`,
        [tenantId, row.id, row.name, row.description],
      );
      return rows[0];
    },
    async byId(id: string): Promise<RoleRow | undefined> {
      const { rows } = await tx.query<RoleRow>(`SELECT ${COLUMNS} FROM roles WHERE id = $1`, [id]);
      return rows[0];
    },
    /** The role, its row locked to the end of the transaction (a compare-and-set's read). */
    async lockById(id: string): Promise<RoleRow | undefined> {
      const { rows } = await tx.query<RoleRow>(`SELECT ${COLUMNS} FROM roles WHERE id = $1 FOR UPDATE`, [id]);
      return rows[0];
    },
    /** Every permission id the role carries, in order. */
    async permissionIds(roleId: string): Promise<string[]> {
      const { rows } = await tx.query<{ permission_id: string }>(
        'SELECT permission_id FROM role_permissions WHERE role_id = $1 ORDER BY permission_id',
        [roleId],
      );
      return rows.map((r) => r.permission_id);
    },
    async byName(name: string): Promise<RoleRow | undefined> {
      const { rows } = await tx.query<RoleRow>(`SELECT ${COLUMNS} FROM roles WHERE name = $1`, [name]);
      return rows[0];
    },
    async update(row: RoleRow): Promise<RoleRow | undefined> {
      const { rows } = await tx.query<RoleRow>(
        `UPDATE roles SET name = $2, description = $3 WHERE id = $1 RETURNING ${COLUMNS}`,
        [row.id, row.name, row.description],
      );
      return rows[0];
    },
    async delete(id: string): Promise<boolean> {
      const { rowCount } = await tx.query('DELETE FROM roles WHERE id = $1', [id]);
      return rowCount > 0;
    },
    async page(after: string | undefined, limit: number): Promise<RoleRow[]> {
      const { rows } = await tx.query<RoleRow>(
        `SELECT ${COLUMNS} FROM roles WHERE ($1::uuid IS NULL OR id > $1::uuid) ORDER BY id LIMIT $2`,
        [after ?? null, limit],
      );
      return rows;
    },
    /** True when the permission was newly added to the role. */
    async addPermission(tenantId: string, roleId: string, permissionId: string): Promise<boolean> {
      const { rowCount } = await tx.query(
        `INSERT INTO role_permissions (tenant_id, role_id, permission_id) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING`,
        [tenantId, roleId, permissionId],
      );
      return rowCount > 0;
    },
    /** True when the role had the permission. */
    async removePermission(roleId: string, permissionId: string): Promise<boolean> {
      const { rowCount } = await tx.query(
        'DELETE FROM role_permissions WHERE role_id = $1 AND permission_id = $2',
        [roleId, permissionId],
      );
      return rowCount > 0;
    },
    /** The role's permissions (with their resource's indicator) in permission id order. */
    async permissionsPage(
      roleId: string,
      after: string | undefined,
      limit: number,
    ): Promise<PermissionRow[]> {
      const { rows } = await tx.query<PermissionRow>(
        `SELECT p.id, p.resource_id, r.indicator AS resource_indicator, p.name, p.description
           FROM role_permissions rp
           JOIN permissions p ON p.tenant_id = rp.tenant_id AND p.id = rp.permission_id
           JOIN api_resources r ON r.tenant_id = p.tenant_id AND r.id = p.resource_id
          WHERE rp.role_id = $1 AND ($2::uuid IS NULL OR p.id > $2::uuid)
          ORDER BY p.id LIMIT $3`,
        [roleId, after ?? null, limit],
      );
      return rows;
    },
  };
}
