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

/** The orders a client list can be read in; `-` is descending. */
export const CLIENT_SORTS = ['client_id', '-client_id', 'created', '-created'] as const;
export type ClientSort = (typeof CLIENT_SORTS)[number];

/**
 * Each order's keyset: rows after the cursor's key, in that order. `created_at` is compared at
 * its full microsecond precision (created_key), which a JavaScript Date would lose.
 */
const ORDERS: Record<ClientSort, { after: string; order: string }> = {
  client_id: { after: 'client_id > $1', order: 'client_id' },
  '-client_id': { after: 'client_id < $1', order: 'client_id DESC' },
  created: { after: '(created_at, client_id) > ($1::timestamptz, $2)', order: 'created_at, client_id' },
  '-created': {
    after: '(created_at, client_id) < ($1::timestamptz, $2)',
    order: 'created_at DESC, client_id DESC',
  },
};

export interface SortedClientRow extends ClientRow {
  /** created_at in UTC with microseconds: the exact key a cursor carries. */
  created_key: string;
}

export function createClientsQueries(tx: Queryable) {
  return {
    async insert(tenantId: string, row: Omit<ClientRow, 'created_at' | 'disabled'>): Promise<void> {
      await tx.query(
        'INSERT INTO oidc_clients (tenant_id, client_id, name, secret_hash, metadata) VALUES ($1, $2, $3, $4, $5)',
        [tenantId, row.client_id, row.name, row.secret_hash, JSON.stringify(row.metadata)],
      );
    },
    /** Rewrites a client's name, secret hash and metadata (a built-in client brought up to date). */
    async replace(row: Omit<ClientRow, 'created_at' | 'disabled'>): Promise<void> {
      await tx.query(
        'UPDATE oidc_clients SET name = $2, secret_hash = $3, metadata = $4 WHERE client_id = $1',
        [row.client_id, row.name, row.secret_hash, JSON.stringify(row.metadata)],
      );
    },
    async byId(clientId: string): Promise<ClientRow | undefined> {
      const { rows } = await tx.query<ClientRow>(`SELECT ${COLUMNS} FROM oidc_clients WHERE client_id = $1`, [
        clientId,
      ]);
      return rows[0];
    },
    /** A page in `sort` order after `after` (the key of the previous page's last row). */
    async page(sort: ClientSort, after: string[] | undefined, limit: number): Promise<SortedClientRow[]> {
      const { after: where, order } = ORDERS[sort];
      const key = sort.endsWith('created') ? 2 : 1;
      const params = after ? [...after.slice(0, key), limit] : [limit];
      const { rows } = await tx.query<SortedClientRow>(
        `SELECT ${COLUMNS}, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_key
           FROM oidc_clients ${after ? `WHERE ${where}` : ''} ORDER BY ${order} LIMIT $${params.length}`,
        params,
      );
      return rows;
    },
    /** The client's row, locked to the end of the transaction (a change checked against its version). */
    async lockById(clientId: string): Promise<ClientRow | undefined> {
      const { rows } = await tx.query<ClientRow>(
        `SELECT ${COLUMNS} FROM oidc_clients WHERE client_id = $1 FOR UPDATE`,
        [clientId],
      );
      return rows[0];
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
