// Single-use, expiring proofs mailed to a person: the link's secret (and an optional short code
// for someone reading the mail on another device) exist only in the mail; the table keeps hashes.
// Issuing, checking and using a token happen in the caller's transaction, next to the change.
import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import { OrthIdError } from '../core/errors.js';
import { isUuid, newId } from '../core/ids.js';
import type { Queryable } from '../core/sql.js';
import type { TenantKeyring, TenantKeys } from '../crypto/tenant-keys.js';
import {
  type AccountTokenPurpose,
  type AccountTokenRow,
  createAccountTokenQueries,
} from './account-tokens.queries.js';
import { emailIndex } from './users.js';

export type { AccountTokenPurpose };

const TABLE = 'account_tokens';

/** Wrong codes a token accepts before it stops accepting any: 6 digits, 5 tries, 1 in 200 000. */
export const CODE_ATTEMPTS = 5;
const CODE_DIGITS = 6;
/** 256 bits, base64url: what a link carries. */
const SECRET = /^[A-Za-z0-9_-]{43}$/;

export interface IssueTokenInput {
  purpose: AccountTokenPurpose;
  /** The address the mail goes to; sealed, and indexed for throttles. */
  email: string;
  /** The account it is about; absent for an invitation or a sign-up of a new address. */
  userId?: string;
  /** The purpose's own fields (sealed with the address), e.g. an invitation's organisation. */
  data?: Record<string, string>;
  ttlSeconds: number;
  /** Also make a short numeric code that proves the same as the link. */
  withCode?: boolean;
  /** Who issued it (an audit actor), kept where a list shows it (invitations). */
  createdBy?: string;
}

export interface IssuedToken {
  /** Public handle: a form that asks for the code names the token by it. */
  id: string;
  /** The link's secret: goes into the mail and nowhere else. */
  secret: string;
  code?: string;
  expiresAt: Date;
}

export interface AccountToken {
  id: string;
  purpose: AccountTokenPurpose;
  email: string;
  userId?: string;
  data: Record<string, string>;
  createdAt: Date;
  expiresAt: Date;
}

export interface AccountTokens {
  issue(tx: Queryable, tenantId: string, input: IssueTokenInput): Promise<IssuedToken>;
  /**
   * The unused, unexpired token a link names, locked for the transaction; `account.link_invalid`
   * (unknown or forged), `account.link_expired`, `account.link_used`.
   */
  check(tx: Queryable, tenantId: string, purpose: AccountTokenPurpose, secret: string): Promise<AccountToken>;
  /** `check`, then marks the token used: it works once. */
  use(tx: Queryable, tenantId: string, purpose: AccountTokenPurpose, secret: string): Promise<AccountToken>;
  /**
   * Uses a token by its id and code. A wrong code is counted against the token and answered with
   * `undefined`, not thrown, so the caller's transaction commits the count before it reports
   * `account.code_invalid` (see `wrongCode`); past CODE_ATTEMPTS the token accepts no code at all.
   */
  useCode(
    tx: Queryable,
    tenantId: string,
    purpose: AccountTokenPurpose,
    id: string,
    code: string,
  ): Promise<AccountToken | undefined>;
  /** Ends a user's outstanding tokens of one purpose; returns how many. */
  revokeForUser(
    tx: Queryable,
    tenantId: string,
    userId: string,
    purpose: AccountTokenPurpose,
  ): Promise<number>;
  /** How many tokens of one purpose were issued for an address in the last `windowSeconds`. */
  issuedFor(
    tx: Queryable,
    tenantId: string,
    purpose: AccountTokenPurpose,
    email: string,
    windowSeconds: number,
  ): Promise<number>;
}

export interface AccountTokenDeps {
  tenantKeys: TenantKeys;
  clock: Clock;
}

const sha256 = (value: string) => createHash('sha256').update(value).digest();
/**
 * Six digits are guessed offline in a moment from a plain hash, so the code is keyed under the
 * tenant's index key (a dump alone cannot test guesses) and bound to its token's id.
 */
const codeHash = (keyring: TenantKeyring, id: string, code: string) =>
  Buffer.from(keyring.index('account_tokens.code', `${id}:${code}`), 'base64url');

/** What a wrong code is answered with, once the transaction that counted it has committed. */
export function wrongCode(): OrthIdError {
  return new OrthIdError(
    'account.code_invalid',
    'That code is not right. Check the latest mail and try again.',
  );
}

/** The address and fields a token carries, opened from its sealed payload. */
export function openTokenPayload(
  keyring: TenantKeyring,
  row: Pick<AccountTokenRow, 'id' | 'payload'>,
): { email: string; data: Record<string, string> } {
  return JSON.parse(keyring.open(row.payload, { table: TABLE, column: 'payload', rowId: row.id })) as {
    email: string;
    data: Record<string, string>;
  };
}

function invalid(): OrthIdError {
  return new OrthIdError(
    'account.link_invalid',
    'This link is not valid. Open the link from the most recent mail, or ask for a new one.',
  );
}

export function createAccountTokens(deps: AccountTokenDeps): AccountTokens {
  const { clock } = deps;

  async function open(tx: Queryable, tenantId: string, row: AccountTokenRow): Promise<AccountToken> {
    const payload = openTokenPayload(await deps.tenantKeys.forTenant(tx, tenantId), row);
    return {
      id: row.id,
      purpose: row.purpose,
      email: payload.email,
      ...(row.user_id ? { userId: row.user_id } : {}),
      data: payload.data,
      createdAt: new Date(row.created_at),
      expiresAt: new Date(row.expires_at),
    };
  }

  function usable(row: AccountTokenRow | undefined, purpose: AccountTokenPurpose): AccountTokenRow {
    // A token of another purpose is as unknown as a forged one: a reset link never verifies an address.
    if (!row || row.purpose !== purpose) throw invalid();
    // Before `used_at`: a revocation says so, whatever else happened to the link.
    if (row.revoked_at) {
      throw new OrthIdError(
        'account.link_revoked',
        'This link was withdrawn by an administrator. Ask them for a new invitation if you still need one.',
      );
    }
    if (row.used_at) {
      throw new OrthIdError(
        'account.link_used',
        'This link was already used. Ask for a new one if you still need it.',
      );
    }
    if (new Date(row.expires_at) <= clock.now()) {
      throw new OrthIdError('account.link_expired', 'This link has expired. Ask for a new one.');
    }
    return row;
  }

  async function check(tx: Queryable, tenantId: string, purpose: AccountTokenPurpose, secret: string) {
    if (!SECRET.test(secret)) throw invalid();
    const row = usable(await createAccountTokenQueries(tx).bySecretHash(sha256(secret)), purpose);
    return open(tx, tenantId, row);
  }

  return {
    async issue(tx, tenantId, input) {
      const keyring = await deps.tenantKeys.forTenant(tx, tenantId);
      const id = newId();
      const secret = randomBytes(32).toString('base64url');
      const code = input.withCode
        ? String(randomInt(0, 10 ** CODE_DIGITS)).padStart(CODE_DIGITS, '0')
        : undefined;
      const now = clock.now();
      const expiresAt = new Date(now.getTime() + input.ttlSeconds * 1000);
      const payload = JSON.stringify({ email: input.email, data: input.data ?? {} });
      await createAccountTokenQueries(tx).insert(tenantId, {
        id,
        purpose: input.purpose,
        secret_hash: sha256(secret),
        code_hash: code === undefined ? null : codeHash(keyring, id, code),
        user_id: input.userId ?? null,
        email_index: emailIndex(keyring, input.email),
        payload: keyring.seal(payload, { table: TABLE, column: 'payload', rowId: id }),
        created_at: now,
        expires_at: expiresAt,
        created_by: input.createdBy ?? null,
      });
      return { id, secret, ...(code === undefined ? {} : { code }), expiresAt };
    },

    check,

    async use(tx, tenantId, purpose, secret) {
      const token = await check(tx, tenantId, purpose, secret);
      await createAccountTokenQueries(tx).markUsed(token.id, clock.now());
      return token;
    },

    async useCode(tx, tenantId, purpose, id, code) {
      const queries = createAccountTokenQueries(tx);
      const row = usable(isUuid(id) ? await queries.byId(id) : undefined, purpose);
      if (!row.code_hash || row.code_attempts >= CODE_ATTEMPTS) return undefined;
      const keyring = await deps.tenantKeys.forTenant(tx, tenantId);
      const given = codeHash(keyring, row.id, code.replace(/\s+/g, ''));
      if (!timingSafeEqual(given, row.code_hash)) {
        await queries.countCodeAttempt(row.id);
        return undefined;
      }
      await queries.markUsed(row.id, clock.now());
      return open(tx, tenantId, row);
    },

    async revokeForUser(tx, _tenantId, userId, purpose) {
      return createAccountTokenQueries(tx).revokeForUser(userId, purpose, clock.now());
    },

    async issuedFor(tx, tenantId, purpose, email, windowSeconds) {
      const keyring = await deps.tenantKeys.forTenant(tx, tenantId);
      const since = new Date(clock.now().getTime() - windowSeconds * 1000);
      return createAccountTokenQueries(tx).countIssuedFor(emailIndex(keyring, email), purpose, since);
    },
  };
}
