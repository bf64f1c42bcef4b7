// SQL for second factors: user_factors (any kind, its secret sealed), user_recovery_codes (keyed
// hashes only), the users.mfa_reenrol flag, and who the tenant's policy scopes MFA to.
import type { Queryable } from '../core/sql.js';

export interface FactorRow {
  tenant_id: string;
  id: string;
  user_id: string;
  kind: string;
  status: 'pending' | 'active';
  name: string | null;
  secret: string | null;
  last_step: string | null;
  binding: string | null;
  created_at: Date;
  confirmed_at: Date | null;
  last_used_at: Date | null;
}

const COLUMNS =
  'tenant_id, id, user_id, kind, status, name, secret, last_step, binding, created_at, confirmed_at, last_used_at';

export function createMfaQueries(tx: Queryable) {
  return {
    async insertPending(row: {
      tenant_id: string;
      id: string;
      user_id: string;
      kind: string;
      name: string | null;
      secret: string | null;
      binding: string;
    }): Promise<void> {
      await tx.query(
        `INSERT INTO user_factors (tenant_id, id, user_id, kind, status, name, secret, binding)
         VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7)`,
        [row.tenant_id, row.id, row.user_id, row.kind, row.name, row.secret, row.binding],
      );
    },

    /** One factor; `lock` holds it until the transaction ends (replay state is read-modify-write). */
    async byId(id: string, lock = false): Promise<FactorRow | undefined> {
      const { rows } = await tx.query<FactorRow>(
        `SELECT ${COLUMNS} FROM user_factors WHERE id = $1${lock ? ' FOR UPDATE' : ''}`,
        [id],
      );
      return rows[0];
    },

    /** A user's factors, oldest first; `status` narrows to active or pending ones. */
    async ofUser(userId: string, status?: FactorRow['status'], lock = false): Promise<FactorRow[]> {
      const { rows } = await tx.query<FactorRow>(
        `SELECT ${COLUMNS} FROM user_factors WHERE user_id = $1 AND ($2::text IS NULL OR status = $2)
          ORDER BY created_at, id${lock ? ' FOR UPDATE' : ''}`,
        [userId, status ?? null],
      );
      return rows;
    },

    async confirm(id: string, step: number | null, now: Date): Promise<void> {
      await tx.query(
        `UPDATE user_factors SET status = 'active', binding = NULL, confirmed_at = $3, last_used_at = $3,
                last_step = $2 WHERE id = $1`,
        [id, step, now],
      );
    },

    async recordUse(id: string, step: number | null, now: Date): Promise<void> {
      await tx.query(
        'UPDATE user_factors SET last_step = coalesce($2, last_step), last_used_at = $3 WHERE id = $1',
        [id, step, now],
      );
    },

    /**
     * Pending enrolments of a user other than `keep`, or only those begun before `before` (an
     * abandoned one, whose interaction has expired).
     */
    async deletePending(userId: string, options: { keep?: string; before?: Date } = {}): Promise<void> {
      await tx.query(
        `DELETE FROM user_factors WHERE user_id = $1 AND status = 'pending' AND ($2::uuid IS NULL OR id <> $2)
            AND ($3::timestamptz IS NULL OR created_at < $3)`,
        [userId, options.keep ?? null, options.before ?? null],
      );
    },

    async delete(userId: string, id: string): Promise<FactorRow | undefined> {
      const { rows } = await tx.query<FactorRow>(
        `DELETE FROM user_factors WHERE user_id = $1 AND id = $2 RETURNING ${COLUMNS}`,
        [userId, id],
      );
      return rows[0];
    },

    async deleteAll(userId: string): Promise<FactorRow[]> {
      const { rows } = await tx.query<FactorRow>(
        `DELETE FROM user_factors WHERE user_id = $1 RETURNING ${COLUMNS}`,
        [userId],
      );
      return rows;
    },

    /** Replaces the user's recovery codes (a new set invalidates the old one). */
    async replaceRecoveryCodes(tenantId: string, userId: string, hashes: string[], now: Date): Promise<void> {
      await tx.query('DELETE FROM user_recovery_codes WHERE user_id = $1', [userId]);
      await tx.query(
        `INSERT INTO user_recovery_codes (tenant_id, user_id, code_hash, created_at)
         SELECT $1, $2, h, $4 FROM unnest($3::text[]) AS h`,
        [tenantId, userId, hashes, now],
      );
    },

    async deleteRecoveryCodes(userId: string): Promise<number> {
      const { rowCount } = await tx.query('DELETE FROM user_recovery_codes WHERE user_id = $1', [userId]);
      return rowCount ?? 0;
    },

    /**
     * Spends an unused code: 'spent' (and how many remain), 'used' when it was spent before,
     * 'unknown' when the user has no such code.
     */
    async spendRecoveryCode(
      userId: string,
      hash: string,
      now: Date,
    ): Promise<{ outcome: 'spent' | 'used' | 'unknown'; remaining: number }> {
      const { rows } = await tx.query<{ used_at: Date | null }>(
        'SELECT used_at FROM user_recovery_codes WHERE user_id = $1 AND code_hash = $2 FOR UPDATE',
        [userId, hash],
      );
      const remaining = async () =>
        Number(
          (
            await tx.query<{ n: string }>(
              'SELECT count(*) AS n FROM user_recovery_codes WHERE user_id = $1 AND used_at IS NULL',
              [userId],
            )
          ).rows[0]!.n,
        );
      if (!rows[0]) return { outcome: 'unknown', remaining: await remaining() };
      if (rows[0].used_at !== null) return { outcome: 'used', remaining: await remaining() };
      await tx.query('UPDATE user_recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2', [
        userId,
        hash,
        now,
      ]);
      return { outcome: 'spent', remaining: await remaining() };
    },

    async unusedRecoveryCodes(userId: string): Promise<number> {
      const { rows } = await tx.query<{ n: string }>(
        'SELECT count(*) AS n FROM user_recovery_codes WHERE user_id = $1 AND used_at IS NULL',
        [userId],
      );
      return Number(rows[0]!.n);
    },

    /** Whether the user must enrol again; undefined when there is no such user. */
    async reenrolFlag(userId: string): Promise<boolean | undefined> {
      const { rows } = await tx.query<{ mfa_reenrol: boolean }>(
        'SELECT mfa_reenrol FROM users WHERE id = $1',
        [userId],
      );
      return rows[0]?.mfa_reenrol;
    },

    async setReenrolFlag(userId: string, value: boolean): Promise<boolean> {
      const { rowCount } = await tx.query('UPDATE users SET mfa_reenrol = $2 WHERE id = $1', [userId, value]);
      return (rowCount ?? 0) > 0;
    },

    /** The tenant's settings as committed (its MFA policy among them), read in this transaction. */
    async tenantSettings(tenantId: string): Promise<Record<string, unknown>> {
      const { rows } = await tx.query<{ settings: Record<string, unknown> }>(
        'SELECT settings FROM tenants WHERE id = $1',
        [tenantId],
      );
      return rows[0]?.settings ?? {};
    },

    /** Whether the user belongs to one of `organisations` or holds one of `roles` through a membership. */
    async inScope(userId: string, organisations: string[], roles: string[]): Promise<boolean> {
      const { rows } = await tx.query<{ hit: boolean }>(
        `SELECT EXISTS (
           SELECT 1 FROM memberships m
             LEFT JOIN membership_roles mr ON mr.tenant_id = m.tenant_id AND mr.membership_id = m.id
            WHERE m.user_id = $1 AND (m.organisation_id = ANY($2::uuid[]) OR mr.role_id = ANY($3::uuid[]))
         ) AS hit`,
        [userId, organisations, roles],
      );
      return rows[0]!.hit;
    },

    async organisationIdsByName(names: string[]): Promise<{ id: string; name: string }[]> {
      const { rows } = await tx.query<{ id: string; name: string }>(
        'SELECT id, name FROM organisations WHERE name = ANY($1::text[]) OR id::text = ANY($1::text[])',
        [names],
      );
      return rows;
    },

    async roleIdsByName(names: string[]): Promise<{ id: string; name: string }[]> {
      const { rows } = await tx.query<{ id: string; name: string }>(
        'SELECT id, name FROM roles WHERE name = ANY($1::text[]) OR id::text = ANY($1::text[])',
        [names],
      );
      return rows;
    },
  };
}

export type MfaQueries = ReturnType<typeof createMfaQueries>;
