// SQL for organisations: groups of users inside a tenant, within which roles are granted.
import type { Queryable } from '../core/sql.js';

export interface OrganisationRow {
  id: string;
  name: string;
  created_at: Date;
}

const COLUMNS = 'id, name, created_at';

export function createOrganisationsQueries(tx: Queryable) {
  return {
    /** Undefined when the name is taken. */
    async insert(tenantId: string, id: string, name: string): Promise<OrganisationRow | undefined> {
      const { rows } = await tx.query<OrganisationRow>(
        `INSERT INTO organisations (tenant_id, id, name) VALUES ($1, $2, $3)
         ON CONFLICT (tenant_id, name) DO NOTHING RETURNING ${COLUMNS}`,
        [tenantId, id, name],
      );
      return rows[0];
    },
    async byId(id: string): Promise<OrganisationRow | undefined> {
      const { rows } = await tx.query<OrganisationRow>(`SELECT ${COLUMNS} FROM organisations WHERE id = $1`, [
        id,
      ]);
      return rows[0];
    },
    async byName(name: string): Promise<OrganisationRow | undefined> {
      const { rows } = await tx.query<OrganisationRow>(
        `SELECT ${COLUMNS} FROM organisations WHERE name = $1`,
        [name],
      );
      return rows[0];
    },
    async rename(id: string, name: string): Promise<OrganisationRow | undefined> {
      const { rows } = await tx.query<OrganisationRow>(
        `UPDATE organisations SET name = $2 WHERE id = $1 RETURNING ${COLUMNS}`,
        [id, name],
      );
      return rows[0];
    },
    async delete(id: string): Promise<boolean> {
      const { rowCount } = await tx.query('DELETE FROM organisations WHERE id = $1', [id]);
      return rowCount > 0;
    },
    /** In id (creation) order after `after`; fetches `limit` rows. */
    async page(after: string | undefined, limit: number): Promise<OrganisationRow[]> {
      const { rows } = await tx.query<OrganisationRow>(
        `SELECT ${COLUMNS} FROM organisations WHERE ($1::uuid IS NULL OR id > $1::uuid) ORDER BY id LIMIT $2`,
        [after ?? null, limit],
      );
      return rows;
    },
  };
}
