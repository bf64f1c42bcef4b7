// SQL for registered OIDC clients. Secrets are stored only as a keyed hash.
import type { Queryable } from '../core/sql.js';

export interface ClientRow {
  client_id: string;
  name: string;
  secret_hash: string | null;
  metadata: Record<string, unknown>;
  disabled: boolean;
  created_at: Date;
}

const COLUMNS = 'client_id, name, secret_hash, metadata, disabled, created_at';

export function createClientsQueries(tx: Queryable) {
  return {
    async insert(tenantId: string, row: Omit<ClientRow, 'created_at' | 'disabled'>): Promise<void> {
      await tx.query(
        'INSERT INTO oidc_clients (tenant_id, client_id, name, secret_hash, metadata) VALUES ($1, $2, $3, $4, $5)',
        [tenantId, row.client_id, row.name, row.secret_hash, JSON.stringify(row.metadata)],
      );
    },
    async byId(clientId: string): Promise<ClientRow | undefined> {
      const { rows } = await tx.query<ClientRow>(`SELECT ${COLUMNS} FROM oidc_clients WHERE client_id = $1`, [
        clientId,
      ]);
      return rows[0];
    },
    async page(after: string | undefined, limit: number): Promise<ClientRow[]> {
      const { rows } = await tx.query<ClientRow>(
        `SELECT ${COLUMNS} FROM oidc_clients WHERE ($1::text IS NULL OR client_id > $1) ORDER BY client_id LIMIT $2`,
        [after ?? null, limit],
      );
      return rows;
    },
    async setMetadata(clientId: string, name: string, metadata: Record<string, unknown>): Promise<number> {
      const { rowCount } = await tx.query(
        'UPDATE oidc_clients SET name = $2, metadata = $3 WHERE client_id = $1',
        [clientId, name, JSON.stringify(metadata)],
      );
      return rowCount;
    },
    async setDisabled(clientId: string, disabled: boolean): Promise<number> {
      const { rowCount } = await tx.query('UPDATE oidc_clients SET disabled = $2 WHERE client_id = $1', [
        clientId,
        disabled,
      ]);
      return rowCount;
    },
    /** Replaces one resource indicator by another in every client's allowed resources; returns those changed. */
    async replaceResource(from: string, to: string): Promise<string[]> {
      const { rows } = await tx.query<{ client_id: string }>(
        `UPDATE oidc_clients
            SET metadata = jsonb_set(metadata, '{orthid_resources}',
                  (SELECT jsonb_agg(CASE WHEN r = to_jsonb($1::text) THEN to_jsonb($2::text) ELSE r END)
                     FROM jsonb_array_elements(metadata->'orthid_resources') AS r))
          WHERE jsonb_typeof(metadata->'orthid_resources') = 'array' AND metadata->'orthid_resources' ? $1
          RETURNING client_id`,
        [from, to],
      );
      return rows.map((r) => r.client_id);
    },
    async delete(clientId: string): Promise<number> {
      const { rowCount } = await tx.query('DELETE FROM oidc_clients WHERE client_id = $1', [clientId]);
      return rowCount;
    },
  };
}
