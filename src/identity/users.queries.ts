// SQL for users. Personal columns hold sealed ciphertext; email look-ups go through email_index.
import type { Queryable } from '../core/sql.js';

export interface UserRow {
  tenant_id: string;
  id: string;
  email_index: string;
  email: string;
  email_verified: boolean;
  /** Signed up on the hosted page and not yet verified: sign-in waits for the address. */
  awaiting_verification: boolean;
  name: string | null;
  phone: string | null;
  profile: string | null;
  password_hash: string | null;
  status: 'active' | 'disabled';
  failed_sign_ins: number;
  locked_at: Date | null;
  password_changed_at: Date | null;
  last_sign_in_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

export type NewUserRow = Omit<
  UserRow,
  'created_at' | 'updated_at' | 'failed_sign_ins' | 'locked_at' | 'last_sign_in_at'
>;

/** Sealed personal fields to change; an absent key leaves the column as it is. */
export interface UserFieldsPatch {
  email?: { index: string; sealed: string };
  name?: string | null;
  phone?: string | null;
}

const COLUMNS =
  'tenant_id, id, email_index, email, email_verified, awaiting_verification, name, phone, profile, password_hash, status, ' +
  'failed_sign_ins, locked_at, password_changed_at, last_sign_in_at, created_at, updated_at';

export function createUsersQueries(tx: Queryable) {
  const one = async (sql: string, params: readonly unknown[]): Promise<UserRow | undefined> =>
    (await tx.query<UserRow>(sql, params)).rows[0];

  return {
    async insert(row: NewUserRow): Promise<UserRow | undefined> {
      return one(
        `INSERT INTO users (tenant_id, id, email_index, email, email_verified, name, phone, profile, password_hash,
                            status, password_changed_at, awaiting_verification)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (tenant_id, email_index) DO NOTHING RETURNING ${COLUMNS}`,
        [
          row.tenant_id,
          row.id,
          row.email_index,
          row.email,
          row.email_verified,
          row.name,
          row.phone,
          row.profile,
          row.password_hash,
          row.status,
          row.password_changed_at,
          row.awaiting_verification,
        ],
      );
    },
    /** The address is proved: the account stops waiting and its e-mail counts as verified. */
    /** With `emailIndex`, only while the account still has the address that was proven. */
    async markEmailVerified(id: string, now: Date, emailIndex?: string): Promise<UserRow | undefined> {
      return one(
        `UPDATE users SET email_verified = true, awaiting_verification = false, updated_at = $2
         WHERE id = $1${emailIndex === undefined ? '' : ' AND email_index = $3'} RETURNING ${COLUMNS}`,
        emailIndex === undefined ? [id, now] : [id, now, emailIndex],
      );
    },
    /** `lock` holds the row until the transaction ends (sign-in's outcome, admin changes). */
    async byId(id: string, lock = false): Promise<UserRow | undefined> {
      return one(`SELECT ${COLUMNS} FROM users WHERE id = $1${lock ? ' FOR UPDATE' : ''}`, [id]);
    },
    async byEmailIndex(emailIndex: string): Promise<UserRow | undefined> {
      return one(`SELECT ${COLUMNS} FROM users WHERE email_index = $1`, [emailIndex]);
    },
    /**
     * Users in id order after `after` (before it, newest first, when `descending`), of one status
     * and only those awaiting verification when given.
     */
    async page(
      after: string | undefined,
      limit: number,
      filter: { status?: UserRow['status']; awaitingVerification?: boolean; descending?: boolean } = {},
    ): Promise<UserRow[]> {
      const descending = filter.descending === true;
      const { rows } = await tx.query<UserRow>(
        `SELECT ${COLUMNS} FROM users
          WHERE ($1::uuid IS NULL OR id ${descending ? '<' : '>'} $1::uuid) AND ($3::text IS NULL OR status = $3::text)
            AND ($4::boolean IS NULL OR awaiting_verification = $4::boolean)
          ORDER BY id ${descending ? 'DESC' : 'ASC'} LIMIT $2`,
        [after ?? null, limit, filter.status ?? null, filter.awaitingVerification ?? null],
      );
      return rows;
    },
    async count(): Promise<number> {
      const { rows } = await tx.query<{ n: string }>('SELECT count(*) AS n FROM users');
      return Number(rows[0]!.n);
    },
    /** Changes personal fields; a changed email resets email_verified. */
    async updateFields(id: string, patch: UserFieldsPatch, now: Date): Promise<UserRow | undefined> {
      return one(
        `UPDATE users SET
           email_verified = CASE WHEN $2::text IS NOT NULL AND $2 <> email_index THEN false ELSE email_verified END,
           email_index = coalesce($2, email_index),
           email = coalesce($3, email),
           name = CASE WHEN $4 THEN $5 ELSE name END,
           phone = CASE WHEN $6 THEN $7 ELSE phone END,
           updated_at = $8
         WHERE id = $1 RETURNING ${COLUMNS}`,
        [
          id,
          patch.email?.index ?? null,
          patch.email?.sealed ?? null,
          patch.name !== undefined,
          patch.name ?? null,
          patch.phone !== undefined,
          patch.phone ?? null,
          now,
        ],
      );
    },
    /** Marks the address verified, only while it is still the one a link proved (by its index). */
    /** Sets a new password hash; a new password also lifts a lock and clears the failure count. */
    async setPassword(id: string, passwordHash: string, now: Date): Promise<UserRow | undefined> {
      return one(
        `UPDATE users SET password_hash = $2, password_changed_at = $3, locked_at = NULL, failed_sign_ins = 0,
                          updated_at = $3
         WHERE id = $1 RETURNING ${COLUMNS}`,
        [id, passwordHash, now],
      );
    },
    async setStatus(id: string, status: UserRow['status'], now: Date): Promise<UserRow | undefined> {
      return one(`UPDATE users SET status = $2, updated_at = $3 WHERE id = $1 RETURNING ${COLUMNS}`, [
        id,
        status,
        now,
      ]);
    },
    async unlock(id: string, now: Date): Promise<UserRow | undefined> {
      return one(
        `UPDATE users SET locked_at = NULL, failed_sign_ins = 0, updated_at = $2 WHERE id = $1 RETURNING ${COLUMNS}`,
        [id, now],
      );
    },
    async delete(id: string): Promise<boolean> {
      return (await tx.query('DELETE FROM users WHERE id = $1', [id])).rowCount > 0;
    },
    /** Counts a failed sign-in; locks the account when the count reaches `lockAfter`. */
    async recordFailedSignIn(id: string, lockAfter: number, now: Date): Promise<UserRow | undefined> {
      return one(
        `UPDATE users SET
           failed_sign_ins = failed_sign_ins + 1,
           locked_at = CASE WHEN locked_at IS NULL AND failed_sign_ins + 1 >= $2 THEN $3 ELSE locked_at END
         WHERE id = $1 RETURNING ${COLUMNS}`,
        [id, lockAfter, now],
      );
    },
    /**
     * Records a successful sign-in; `rehash` replaces the stored hash only if it is still the one
     * that was verified (a concurrent password change wins).
     */
    async recordSignIn(
      id: string,
      now: Date,
      rehash?: { from: string; to: string },
    ): Promise<UserRow | undefined> {
      return one(
        `UPDATE users SET
           failed_sign_ins = 0,
           last_sign_in_at = $2,
           password_hash = CASE WHEN $3::text IS NOT NULL AND password_hash = $3 THEN $4 ELSE password_hash END
         WHERE id = $1 RETURNING ${COLUMNS}`,
        [id, now, rehash?.from ?? null, rehash?.to ?? null],
      );
    },
  };
}
