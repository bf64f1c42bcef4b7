// SQL for passkeys: credentials (each with its user_factors row, which holds the name and the
// times), the per-user random handle, and single-use ceremony challenges (taken by DELETE ...
// RETURNING, so two replicas can never both accept one challenge).
import type { Queryable } from '../core/sql.js';

export interface PasskeyRow {
  id: string;
  user_id: string;
  credential_id: string;
  public_key: Buffer;
  sign_count: string;
  transports: string[];
  backup_eligible: boolean;
  backed_up: boolean;
  aaguid: string | null;
  name: string;
  created_at: Date;
  last_used_at: Date | null;
}

export interface NewPasskeyRow {
  tenant_id: string;
  id: string;
  user_id: string;
  credential_id: string;
  public_key: Uint8Array;
  sign_count: number;
  transports: string[];
  backup_eligible: boolean;
  backed_up: boolean;
  aaguid: string | null;
  name: string;
}

export interface ChallengeRow {
  challenge: string;
  user_id: string | null;
  /** A registration that makes its account: the handle its options gave the authenticator. */
  user_handle: string | null;
  expires_at: Date;
}

export type ChallengePurpose = 'register' | 'authenticate';

const COLUMNS = `f.id, c.user_id, c.credential_id, c.public_key, c.sign_count, c.transports, c.backup_eligible,
  c.backed_up, c.aaguid, f.name, f.created_at, f.last_used_at`;
const JOINED = 'passkey_credentials c JOIN user_factors f ON f.id = c.factor_id';

export function createPasskeysQueries(tx: Queryable) {
  return {
    async userHandle(userId: string): Promise<string | undefined> {
      const { rows } = await tx.query<{ handle: string }>(
        'SELECT handle FROM passkey_user_handles WHERE user_id = $1',
        [userId],
      );
      return rows[0]?.handle;
    },

    /** Stores `handle` unless the user has one already; returns the one that stands. */
    async ensureUserHandle(tenantId: string, userId: string, handle: string): Promise<string> {
      const { rows } = await tx.query<{ handle: string }>(
        `WITH ins AS (
           INSERT INTO passkey_user_handles (tenant_id, user_id, handle) VALUES ($1, $2, $3)
           ON CONFLICT (tenant_id, user_id) DO NOTHING RETURNING handle)
         SELECT handle FROM ins
         UNION ALL SELECT handle FROM passkey_user_handles WHERE user_id = $2
         LIMIT 1`,
        [tenantId, userId, handle],
      );
      return rows[0]!.handle;
    },

    async userByHandle(handle: string): Promise<string | undefined> {
      const { rows } = await tx.query<{ user_id: string }>(
        'SELECT user_id FROM passkey_user_handles WHERE handle = $1',
        [handle],
      );
      return rows[0]?.user_id;
    },

    async forUser(userId: string): Promise<PasskeyRow[]> {
      const { rows } = await tx.query<PasskeyRow>(
        `SELECT ${COLUMNS} FROM ${JOINED} WHERE c.user_id = $1 ORDER BY f.created_at, f.id`,
        [userId],
      );
      return rows;
    },

    async byCredentialId(credentialId: string, lock = false): Promise<PasskeyRow | undefined> {
      const { rows } = await tx.query<PasskeyRow>(
        `SELECT ${COLUMNS} FROM ${JOINED} WHERE c.credential_id = $1${lock ? ' FOR UPDATE OF c, f' : ''}`,
        [credentialId],
      );
      return rows[0];
    },

    /**
     * Inserts a credential and its factor row; undefined when its credential id is registered
     * already. A new factor clears the user's re-enrolment flag, as any completed enrolment does.
     */
    async insert(row: NewPasskeyRow, now: Date): Promise<PasskeyRow | undefined> {
      const { rows } = await tx.query<PasskeyRow>(
        `WITH f AS (
           INSERT INTO user_factors (tenant_id, id, user_id, kind, status, name, created_at, confirmed_at)
           SELECT $1, $2, $3, 'passkey', 'active', $11, $12, $12
            WHERE NOT EXISTS (SELECT 1 FROM passkey_credentials WHERE credential_id = $4)
           RETURNING id, name, created_at, last_used_at),
         c AS (
           INSERT INTO passkey_credentials (tenant_id, factor_id, user_id, credential_id, public_key, sign_count,
             transports, backup_eligible, backed_up, aaguid)
           SELECT $1, f.id, $3, $4, $5, $6, $7, $8, $9, $10 FROM f
           RETURNING *),
         u AS (UPDATE users SET mfa_reenrol = false WHERE id = $3 AND mfa_reenrol AND EXISTS (SELECT 1 FROM c))
         SELECT ${COLUMNS} FROM c JOIN f ON f.id = c.factor_id`,
        [
          row.tenant_id,
          row.id,
          row.user_id,
          row.credential_id,
          Buffer.from(row.public_key),
          row.sign_count,
          row.transports,
          row.backup_eligible,
          row.backed_up,
          row.aaguid,
          row.name,
          now,
        ],
      );
      return rows[0];
    },

    async recordUse(id: string, signCount: number, backedUp: boolean, now: Date): Promise<void> {
      await tx.query(
        `WITH c AS (UPDATE passkey_credentials SET sign_count = $2, backed_up = $3 WHERE factor_id = $1)
         UPDATE user_factors SET last_used_at = $4 WHERE id = $1`,
        [id, signCount, backedUp, now],
      );
    },

    /** Sets the one outstanding challenge for a binding and purpose, replacing an older one. */
    async putChallenge(
      tenantId: string,
      binding: string,
      purpose: ChallengePurpose,
      challenge: string,
      owner: { userId: string | null; userHandle?: string },
      expiresAt: Date,
    ): Promise<void> {
      await tx.query(
        `INSERT INTO passkey_challenges (tenant_id, binding, purpose, challenge, user_id, user_handle, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (tenant_id, binding, purpose) DO UPDATE SET
           (challenge, user_id, user_handle, expires_at) =
           (EXCLUDED.challenge, EXCLUDED.user_id, EXCLUDED.user_handle, EXCLUDED.expires_at)`,
        [tenantId, binding, purpose, challenge, owner.userId, owner.userHandle ?? null, expiresAt],
      );
    },

    /** Takes (deletes) the outstanding challenge; an expired one is deleted and not returned. */
    async takeChallenge(
      binding: string,
      purpose: ChallengePurpose,
      now: Date,
    ): Promise<ChallengeRow | undefined> {
      const { rows } = await tx.query<ChallengeRow>(
        `DELETE FROM passkey_challenges WHERE binding = $1 AND purpose = $2
         RETURNING challenge, user_id, user_handle, expires_at`,
        [binding, purpose],
      );
      const row = rows[0];
      return row && row.expires_at.getTime() > now.getTime() ? row : undefined;
    },

    /** Housekeeping: up to `batch` challenges nobody answered; returns how many went. */
    async deleteExpiredChallenges(now: Date, batch: number): Promise<number> {
      const { rowCount } = await tx.query(
        `DELETE FROM passkey_challenges WHERE ctid = ANY (ARRAY(
           SELECT ctid FROM passkey_challenges WHERE expires_at <= $1 LIMIT $2))`,
        [now, batch],
      );
      return rowCount;
    },
  };
}
