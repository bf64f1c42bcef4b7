// SQL for organisations: groups of users inside a tenant, within which roles are granted.
import type { Queryable } from '../core/sql.js';

export interface OrganisationRow {
  id: string;
  name: string;
  created_at: Date;
}

const COLUMNS = 'id, name, created_at';

/** The orders an organisation list can be read in; `-` is descending. Names are stored in clear. */
export const ORGANISATION_SORTS = ['created', '-created', 'name', '-name'] as const;
export type OrganisationSort = (typeof ORGANISATION_SORTS)[number];

const ORDERS: Record<OrganisationSort, { after: string; order: string }> = {
  created: { after: 'id > $1::uuid', order: 'id' },
  '-created': { after: 'id < $1::uuid', order: 'id DESC' },
  name: { after: '(name, id) > ($1, $2::uuid)', order: 'name, id' },
  '-name': { after: '(name, id) < ($1, $2::uuid)', order: 'name DESC, id DESC' },
};

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
    /**
     * In `sort` order after `after` (the previous page's last key); fetches `limit` rows. Ids are
     * time-ordered, so id order is creation order.
     */
    async page(
      sort: OrganisationSort,
      after: string[] | undefined,
      limit: number,
    ): Promise<OrganisationRow[]> {
      const { after: where, order } = ORDERS[sort];
      const params = after ? [...after, limit] : [limit];
      const { rows } = await tx.query<OrganisationRow>(
        `SELECT ${COLUMNS} FROM organisations ${after ? `WHERE ${where}` : ''} ORDER BY ${order} LIMIT $${params.length}`,
        params,
      );
      return rows;
    },
  };
}
