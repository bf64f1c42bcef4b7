// SQL for signing_keys: one row per key; the private JWK is sealed under the tenant's data key.
import type { Queryable } from '../core/sql.js';

export interface SigningKeyRow {
  kid: string;
  alg: 'EdDSA' | 'ES256' | 'RS256';
  public_jwk: Record<string, unknown>;
  private_jwk: string;
  status: 'active' | 'retiring' | 'retired';
  created_at: Date;
  retire_after: Date | null;
}

const COLUMNS = 'kid, alg, public_jwk, private_jwk, status, created_at, retire_after';

export function createSigningKeysQueries(tx: Queryable) {
  return {
    /** Keys that may still verify tokens: active and retiring, newest first. */
    async usable(now: Date): Promise<SigningKeyRow[]> {
      const { rows } = await tx.query<SigningKeyRow>(
        `SELECT ${COLUMNS} FROM signing_keys
          WHERE status = 'active' OR (status = 'retiring' AND retire_after > $1)
          ORDER BY (status = 'active') DESC, created_at DESC`,
        [now],
      );
      return rows;
    },
    async insert(tenantId: string, row: Omit<SigningKeyRow, 'created_at'>): Promise<void> {
      await tx.query(
        `INSERT INTO signing_keys (tenant_id, kid, alg, public_jwk, private_jwk, status, retire_after)
         VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [
          tenantId,
          row.kid,
          row.alg,
          JSON.stringify(row.public_jwk),
          row.private_jwk,
          row.status,
          row.retire_after,
        ],
      );
    },
    /**
     * Serialises scheduled rotation of this tenant's keys between replicas (until commit), then
     * says when the active key was created.
     */
    async lockActiveCreatedAt(tenantId: string): Promise<Date | undefined> {
      await tx.query(`SELECT pg_advisory_xact_lock(hashtextextended('orthid-signing:' || $1, 0))`, [
        tenantId,
      ]);
      const { rows } = await tx.query<{ created_at: Date }>(
        `SELECT created_at FROM signing_keys WHERE status = 'active' ORDER BY created_at DESC LIMIT 1`,
      );
      return rows[0]?.created_at;
    },
    /** Moves every active key to retiring; tokens it signed keep verifying until `retireAfter`. */
    async retireActive(retireAfter: Date): Promise<number> {
      const { rowCount } = await tx.query(
        `UPDATE signing_keys SET status = 'retiring', retire_after = $1 WHERE status = 'active'`,
        [retireAfter],
      );
      return rowCount;
    },
    async markRetired(now: Date): Promise<void> {
      await tx.query(
        `UPDATE signing_keys SET status = 'retired' WHERE status = 'retiring' AND retire_after <= $1`,
        [now],
      );
    },
  };
}
