// SQL the password reset needs beyond the account tokens' own: how many reset links one account
// was sent lately (the per-account throttle). Runs in the tenant's transaction, under RLS.
import type { Queryable } from '../core/sql.js';

export function createPasswordResetQueries(tx: Queryable) {
  return {
    /** Reset tokens issued for one user since a moment, whatever address they went to. */
    async countIssuedForUser(userId: string, since: Date): Promise<number> {
      const { rows } = await tx.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM account_tokens
          WHERE user_id = $1 AND purpose = 'password_reset' AND created_at >= $2`,
        [userId, since],
      );
      return rows[0]?.n ?? 0;
    },
  };
}
