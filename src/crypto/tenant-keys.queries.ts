// SQL for the tenant_keys table: wrapped data and blind-index keys, one row per key version.
import type { Queryable } from '../core/sql.js';

export interface TenantKeyRow {
  id: string;
  purpose: 'data' | 'index';
  version: number;
  custody: string;
  root_key_id: string;
  wrapped: string;
  status: 'active' | 'decrypt_only' | 'destroyed';
}

export function createTenantKeysQueries(tx: Queryable) {
  return {
    async list(): Promise<TenantKeyRow[]> {
      const { rows } = await tx.query<TenantKeyRow>(
        `SELECT id, purpose, version, custody, root_key_id, wrapped, status
           FROM tenant_keys ORDER BY purpose, version`,
      );
      return rows;
    },
    async insert(tenantId: string, row: TenantKeyRow): Promise<void> {
      await tx.query(
        `INSERT INTO tenant_keys (tenant_id, id, purpose, version, custody, root_key_id, wrapped, status)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
        [tenantId, row.id, row.purpose, row.version, row.custody, row.root_key_id, row.wrapped, row.status],
      );
    },
  };
}
