// SQL for the tenant_keys table: wrapped data and blind-index keys, one row per key version.
import type { Queryable } from '../core/sql.js';
import type { WrappedKey } from './key-custody.js';

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
    /** The tenant's own custody URI (BYOK), or undefined for the deployment's. */
    async custodyOf(tenantId: string): Promise<string | undefined> {
      const { rows } = await tx.query<{ key_custody: string | null }>(
        'SELECT key_custody FROM tenants WHERE id = $1',
        [tenantId],
      );
      return rows[0]?.key_custody ?? undefined;
    },
    async setStatus(
      purpose: TenantKeyRow['purpose'],
      from: TenantKeyRow['status'],
      to: TenantKeyRow['status'],
    ) {
      await tx.query('UPDATE tenant_keys SET status = $3 WHERE purpose = $1 AND status = $2', [
        purpose,
        from,
        to,
      ]);
    },
    async rewrap(id: string, wrapped: WrappedKey): Promise<void> {
      await tx.query('UPDATE tenant_keys SET custody = $2, root_key_id = $3, wrapped = $4 WHERE id = $1', [
        id,
        wrapped.custody,
        wrapped.rootKeyId,
        wrapped.wrapped,
      ]);
    },
    /** Erases the wrapped material of key versions for good; the rows stay as a record. */
    async destroy(ids: readonly string[]): Promise<void> {
      await tx.query(`UPDATE tenant_keys SET status = 'destroyed', wrapped = '' WHERE id = ANY($1::uuid[])`, [
        ids,
      ]);
    },
  };
}
