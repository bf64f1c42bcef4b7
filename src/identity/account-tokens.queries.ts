// SQL of the account tokens (mailed single-use links and codes). Every statement runs in the
// tenant's transaction: row-level security shows one tenant's tokens.
import type { Queryable } from '../core/sql.js';

export type AccountTokenPurpose = 'password_reset' | 'email_verification' | 'email_change' | 'invitation';

export interface AccountTokenRow {
  id: string;
  purpose: AccountTokenPurpose;
  code_hash: Buffer | null;
  code_attempts: number;
  user_id: string | null;
  email_index: string | null;
  payload: string;
  created_at: Date;
  expires_at: Date;
  used_at: Date | null;
  /** Revoked by an administrator (invitations): refused like a used link, told apart from one. */
  revoked_at: Date | null;
  /** Who issued it (an audit actor), where it was recorded. */
  created_by: string | null;
}

const COLUMNS =
  'id, purpose, code_hash, code_attempts, user_id, email_index, payload, created_at, expires_at, used_at, ' +
  'revoked_at, created_by';

export function createAccountTokenQueries(tx: Queryable) {
  return {
    async insert(
      tenantId: string,
      row: Omit<AccountTokenRow, 'code_attempts' | 'used_at' | 'revoked_at'> & { secret_hash: Buffer },
    ): Promise<void> {
      await tx.query(
        `INSERT INTO account_tokens
           (tenant_id, id, purpose, secret_hash, code_hash, user_id, email_index, payload, created_at, expires_at,
            created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
        [
          tenantId,
          row.id,
          row.purpose,
          row.secret_hash,
          row.code_hash,
          row.user_id,
          row.email_index,
          row.payload,
          row.created_at,
          row.expires_at,
          row.created_by,
        ],
      );
    },
    /** Locks the row: two requests with one link cannot both use it. */
    async bySecretHash(secretHash: Buffer): Promise<AccountTokenRow | undefined> {
      const { rows } = await tx.query<AccountTokenRow>(
        `SELECT ${COLUMNS} FROM account_tokens WHERE secret_hash = $1 FOR UPDATE`,
        [secretHash],
      );
      return rows[0];
    },
    async byId(id: string): Promise<AccountTokenRow | undefined> {
      const { rows } = await tx.query<AccountTokenRow>(
        `SELECT ${COLUMNS} FROM account_tokens WHERE id = $1 FOR UPDATE`,
        [id],
      );
      return rows[0];
    },
    /** Tokens of one purpose in id (creation) order after `after`, newest first when `descending`. */
    async page(
      purpose: AccountTokenPurpose,
      after: string | undefined,
      limit: number,
      descending = false,
    ): Promise<AccountTokenRow[]> {
      const { rows } = await tx.query<AccountTokenRow>(
        `SELECT ${COLUMNS} FROM account_tokens
          WHERE purpose = $1 AND ($2::uuid IS NULL OR id ${descending ? '<' : '>'} $2::uuid)
          ORDER BY id ${descending ? 'DESC' : ''} LIMIT $3`,
        [purpose, after ?? null, limit],
      );
      return rows;
    },
    /** Revokes an unused token; false when it was used or revoked already (or is unknown). */
    async revoke(id: string, at: Date): Promise<boolean> {
      const { rowCount } = await tx.query(
        'UPDATE account_tokens SET revoked_at = $2 WHERE id = $1 AND used_at IS NULL AND revoked_at IS NULL',
        [id, at],
      );
      return (rowCount ?? 0) > 0;
    },
    async markUsed(id: string, at: Date): Promise<void> {
      await tx.query('UPDATE account_tokens SET used_at = $2 WHERE id = $1', [id, at]);
    },
    async countCodeAttempt(id: string): Promise<void> {
      await tx.query('UPDATE account_tokens SET code_attempts = code_attempts + 1 WHERE id = $1', [id]);
    },
    /** Ends a user's outstanding tokens of one purpose (a newer one replaces them, or they are moot). */
    async revokeForUser(userId: string, purpose: AccountTokenPurpose, at: Date): Promise<number> {
      const { rowCount } = await tx.query(
        `UPDATE account_tokens SET used_at = $3
          WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL`,
        [userId, purpose, at],
      );
      return rowCount ?? 0;
    },
    /** Tokens of one purpose issued for an address since a moment: what a per-address throttle counts. */
    async countIssuedFor(emailIndex: string, purpose: AccountTokenPurpose, since: Date): Promise<number> {
      const { rows } = await tx.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM account_tokens
          WHERE email_index = $1 AND purpose = $2 AND created_at >= $3`,
        [emailIndex, purpose, since],
      );
      return rows[0]?.n ?? 0;
    },
    /** Removes tokens expired or used before `before` (housekeeping). */
    async deleteFinished(before: Date, limit: number): Promise<number> {
      const { rowCount } = await tx.query(
        `DELETE FROM account_tokens WHERE id IN (
           SELECT id FROM account_tokens
            WHERE expires_at < $1 OR used_at < $1 OR revoked_at < $1 LIMIT $2)`,
        [before, limit],
      );
      return rowCount ?? 0;
    },
  };
}
