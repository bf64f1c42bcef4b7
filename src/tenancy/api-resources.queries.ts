// SQL for API resources: audiences named by a resource indicator URI (RFC 8707).
import type { Queryable } from '../core/sql.js';

export interface ApiResourceRow {
  id: string;
  indicator: string;
  name: string;
  access_token_alg: 'EdDSA' | 'ES256' | 'RS256' | null;
  created_at: Date;
}

const COLUMNS = 'id, indicator, name, access_token_alg, created_at';

export function createApiResourcesQueries(tx: Queryable) {
  return {
    /** Undefined when the indicator is taken. */
    async insert(
      tenantId: string,
      row: Pick<ApiResourceRow, 'id' | 'indicator' | 'name' | 'access_token_alg'>,
    ): Promise<ApiResourceRow | undefined> {
      const { rows } = await tx.query<ApiResourceRow>(
        `INSERT INTO api_resources (tenant_id, id, indicator, name, access_token_alg) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (tenant_id, indicator) DO NOTHING RETURNING ${COLUMNS}`,
        [tenantId, row.id, row.indicator, row.name, row.access_token_alg],
      );
      return rows[0];
    },
    async byId(id: string): Promise<ApiResourceRow | undefined> {
      const { rows } = await tx.query<ApiResourceRow>(`SELECT ${COLUMNS} FROM api_resources WHERE id = $1`, [
        id,
      ]);
      return rows[0];
    },
    async byIndicator(indicator: string): Promise<ApiResourceRow | undefined> {
      const { rows } = await tx.query<ApiResourceRow>(
        `SELECT ${COLUMNS} FROM api_resources WHERE indicator = $1`,
        [indicator],
      );
      return rows[0];
    },
    /**
     * Where the admin API is registered in this tenant under another address: resources at
     * `…/api` that hold `permission`, other than `current`.
     */
    async elsewhereWith(permission: string, current: string): Promise<ApiResourceRow[]> {
      const { rows } = await tx.query<ApiResourceRow>(
        `SELECT r.id, r.indicator, r.name, r.access_token_alg, r.created_at
           FROM api_resources r
          WHERE r.indicator LIKE '%/api' AND r.indicator <> $2
            AND EXISTS (SELECT 1 FROM permissions p WHERE p.resource_id = r.id AND p.name = $1)
          ORDER BY r.created_at`,
        [permission, current],
      );
      return rows;
    },
    /** Moves a resource to another indicator, unless another writer moved it first. */
    async moveIndicator(id: string, from: string, to: string): Promise<boolean> {
      const { rowCount } = await tx.query(
        'UPDATE api_resources SET indicator = $3 WHERE id = $1 AND indicator = $2',
        [id, from, to],
      );
      return rowCount > 0;
    },
    async rename(id: string, name: string): Promise<ApiResourceRow | undefined> {
      const { rows } = await tx.query<ApiResourceRow>(
        `UPDATE api_resources SET name = $2 WHERE id = $1 RETURNING ${COLUMNS}`,
        [id, name],
      );
      return rows[0];
    },
    async delete(id: string): Promise<boolean> {
      const { rowCount } = await tx.query('DELETE FROM api_resources WHERE id = $1', [id]);
      return rowCount > 0;
    },
    async page(after: string | undefined, limit: number): Promise<ApiResourceRow[]> {
      const { rows } = await tx.query<ApiResourceRow>(
        `SELECT ${COLUMNS} FROM api_resources WHERE ($1::uuid IS NULL OR id > $1::uuid) ORDER BY id LIMIT $2`,
        [after ?? null, limit],
      );
      return rows;
    },
  };
}
