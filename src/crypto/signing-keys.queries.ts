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
     * Serialises changes to this tenant's active keys between replicas (until commit): a
     * scheduled rotation, or a provider adding the key of an algorithm it lacks.
     */
    async lock(tenantId: string): Promise<void> {
      await tx.query(`SELECT pg_advisory_xact_lock(hashtextextended('orthid-signing:' || $1, 0))`, [
        tenantId,
      ]);
    },
    /** When each algorithm's active key was created (the newest, should there be two). */
    async activeCreatedAt(): Promise<Map<SigningKeyRow['alg'], Date>> {
      const { rows } = await tx.query<{ alg: SigningKeyRow['alg']; created_at: Date }>(
        `SELECT alg, max(created_at) AS created_at FROM signing_keys WHERE status = 'active' GROUP BY alg`,
      );
      return new Map(rows.map((r) => [r.alg, new Date(r.created_at)]));
    },
    /** Moves the active key of `alg` to retiring; tokens it signed keep verifying until `retireAfter`. */
    async retireActive(alg: SigningKeyRow['alg'], retireAfter: Date): Promise<number> {
      const { rowCount } = await tx.query(
        `UPDATE signing_keys SET status = 'retiring', retire_after = $1 WHERE status = 'active' AND alg = $2`,
        [retireAfter, alg],
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
