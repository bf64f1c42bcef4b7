// SQL over the provider's stored Session and Grant models (oidc_payloads) for one account.
// A Session row's id is a keyed hash of its cookie value and opens nothing; sessions are named by uid.
import type { Queryable } from '../core/sql.js';

export interface SessionRow {
  uid: string;
  payload: Record<string, unknown>;
  expires_at: Date | null;
}

export function createUserSessionsQueries(tx: Queryable) {
  return {
    /** The account's unexpired sessions in uid order after `after`. */
    async page(
      accountId: string,
      now: Date,
      after: string | undefined,
      limit: number,
    ): Promise<SessionRow[]> {
      const { rows } = await tx.query<SessionRow>(
        `SELECT uid, payload, expires_at FROM oidc_payloads
          WHERE model = 'Session' AND account_id = $1 AND uid IS NOT NULL
            AND (expires_at IS NULL OR expires_at > $2)
            AND ($3::text IS NULL OR uid > $3::text)
          ORDER BY uid LIMIT $4`,
        [accountId, now, after ?? null, limit],
      );
      return rows;
    },
    /** Deletes one session; its payload (for the grants it names), or undefined when absent. */
    async deleteOne(accountId: string, uid: string): Promise<SessionRow | undefined> {
      const { rows } = await tx.query<SessionRow>(
        `DELETE FROM oidc_payloads WHERE model = 'Session' AND account_id = $1 AND uid = $2
         RETURNING uid, payload, expires_at`,
        [accountId, uid],
      );
      return rows[0];
    },
    /** Deletes every session of the account; returns how many there were. */
    async deleteAll(accountId: string): Promise<number> {
      const { rowCount } = await tx.query(
        `DELETE FROM oidc_payloads WHERE model = 'Session' AND account_id = $1`,
        [accountId],
      );
      return rowCount;
    },
    /** Deletes every session of the account but one; returns how many went. */
    async deleteAllBut(accountId: string, keepUid: string): Promise<number> {
      const { rowCount } = await tx.query(
        `DELETE FROM oidc_payloads WHERE model = 'Session' AND account_id = $1 AND uid IS DISTINCT FROM $2`,
        [accountId, keepUid],
      );
      return rowCount;
    },
    /** Ids of every grant the account holds: Grant rows and the grants its tokens were issued under. */
    async grantIdsOf(accountId: string): Promise<string[]> {
      const { rows } = await tx.query<{ grant_id: string }>(
        `SELECT id AS grant_id FROM oidc_payloads WHERE model = 'Grant' AND account_id = $1
         UNION
         SELECT grant_id FROM oidc_payloads WHERE account_id = $1 AND grant_id IS NOT NULL`,
        [accountId],
      );
      return rows.map((r) => r.grant_id);
    },
    /** Revokes grants: the Grant rows and every code and token issued under them. */
    async revokeGrants(grantIds: string[]): Promise<number> {
      if (grantIds.length === 0) return 0;
      const { rowCount } = await tx.query(
        `DELETE FROM oidc_payloads WHERE grant_id = ANY($1::text[]) OR (model = 'Grant' AND id = ANY($1::text[]))`,
        [grantIds],
      );
      return rowCount;
    },
  };
}
