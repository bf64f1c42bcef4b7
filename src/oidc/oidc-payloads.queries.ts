// SQL behind the provider's adapter contract: one row per stored model instance, scoped to the
// tenant by row-level security.
import type { Queryable } from '../core/sql.js';

export interface PayloadRow {
  payload: Record<string, unknown>;
  consumed_at: Date | null;
}

/** A token row with the grant it belongs to, read together. */
export interface TokenWithGrantRow extends PayloadRow {
  grant_payload: Record<string, unknown> | null;
  grant_consumed_at: Date | null;
}

export interface PayloadWrite {
  model: string;
  /** The row id: a keyed hash of the model's id, except for grants (stored-secrets.ts). */
  id: string;
  payload: Record<string, unknown>;
  grantId: string | null;
  uid: string | null;
  userCode: string | null;
  accountId: string | null;
  expiresAt: Date | null;
}

const LIVE = '(expires_at IS NULL OR expires_at > now())';

export function createOidcPayloadsQueries(tx: Queryable) {
  return {
    async upsert(tenantId: string, w: PayloadWrite): Promise<void> {
      await tx.query(
        `INSERT INTO oidc_payloads (tenant_id, model, id, payload, grant_id, uid, user_code, account_id, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (tenant_id, model, id) DO UPDATE SET
           payload = EXCLUDED.payload, grant_id = EXCLUDED.grant_id, uid = EXCLUDED.uid,
           user_code = EXCLUDED.user_code, account_id = EXCLUDED.account_id, expires_at = EXCLUDED.expires_at`,
        [
          tenantId,
          w.model,
          w.id,
          JSON.stringify(w.payload),
          w.grantId,
          w.uid,
          w.userCode,
          w.accountId,
          w.expiresAt,
        ],
      );
    },
    async find(model: string, id: string): Promise<PayloadRow | undefined> {
      const { rows } = await tx.query<PayloadRow>(
        `SELECT payload, consumed_at FROM oidc_payloads WHERE model = $1 AND id = $2 AND ${LIVE}`,
        [model, id],
      );
      return rows[0];
    },
    /**
     * A token-like row (it names a grant) and its live grant in one statement: the provider
     * looks the grant up right after the token on every token, refresh, introspection and
     * userinfo request. The grant is a LATERAL subquery with LIMIT so that its id is always an
     * index condition: as a plain join, a table without statistics yet (new, or just restored)
     * got a plan that read every grant of the tenant and filtered on the id afterwards.
     */
    async findWithGrant(model: string, id: string): Promise<TokenWithGrantRow | undefined> {
      const { rows } = await tx.query<TokenWithGrantRow>(
        `SELECT t.payload, t.consumed_at, g.payload AS grant_payload, g.consumed_at AS grant_consumed_at
           FROM oidc_payloads t
           LEFT JOIN LATERAL (
             SELECT payload, consumed_at FROM oidc_payloads
              WHERE model = 'Grant' AND id = t.grant_id AND ${LIVE}
              LIMIT 1
           ) AS g ON true
          WHERE t.model = $1 AND t.id = $2 AND (t.expires_at IS NULL OR t.expires_at > now())`,
        [model, id],
      );
      return rows[0];
    },
    async findBy(model: string, column: 'uid' | 'user_code', value: string): Promise<PayloadRow | undefined> {
      const { rows } = await tx.query<PayloadRow>(
        `SELECT payload, consumed_at FROM oidc_payloads WHERE model = $1 AND ${column} = $2 AND ${LIVE}`,
        [model, value],
      );
      return rows[0];
    },
    /**
     * Marks the row consumed unless it already is; false when it was (or is gone). Of two
     * concurrent calls, the second waits for the first's row lock and then sees it consumed.
     */
    async consumeOnce(model: string, id: string): Promise<boolean> {
      const { rowCount } = await tx.query(
        'UPDATE oidc_payloads SET consumed_at = now() WHERE model = $1 AND id = $2 AND consumed_at IS NULL',
        [model, id],
      );
      return rowCount > 0;
    },
    async destroy(model: string, id: string): Promise<void> {
      await tx.query('DELETE FROM oidc_payloads WHERE model = $1 AND id = $2', [model, id]);
    },
    async revokeByGrantId(grantId: string): Promise<void> {
      await tx.query('DELETE FROM oidc_payloads WHERE grant_id = $1', [grantId]);
    },
    /** Deletes up to `limit` rows past their expiry (reads already ignore them); returns how many. */
    async deleteExpired(limit: number): Promise<number> {
      const { rowCount } = await tx.query(
        `DELETE FROM oidc_payloads WHERE ctid = ANY(ARRAY(
           SELECT ctid FROM oidc_payloads WHERE expires_at < now() LIMIT $1))`,
        [limit],
      );
      return rowCount;
    },
  };
}
