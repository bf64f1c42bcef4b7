// Password reset by a mailed single-use link: asking for one answers the same whether or not the
// address has an account, and is throttled per address, per account and per client address;
// using one sets the password under the tenant's policy, ends every session and refresh token,
// lifts a sign-in lock and tells the user by mail. It never signs anyone in.
import { createHash, randomBytes } from 'node:crypto';
import { appendAudit } from '../audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import { OrthIdError } from '../core/errors.js';
import type { Queryable } from '../core/sql.js';
import { normaliseEmail } from '../crypto/blind-index.js';
import type { TenantKeyring, TenantKeys } from '../crypto/tenant-keys.js';
import type { InlineImageRef, Mail } from '../mail/mail.js';
import { type Database, withTenant } from '../storage/db/database.js';
import type { UserSessions } from '../tenancy/user-sessions.js';
import type { AccountTokens } from './account-tokens.js';
import { createPasswordResetQueries } from './password-reset.queries.js';
import { accountThrottleKey, type SignInThrottle, throttledAddress } from './sign-in-throttle.js';
import { createSignInThrottleQueries } from './sign-in-throttle.queries.js';
import { emailIndex, openUser, type Users } from './users.js';
import { createUsersQueries } from './users.queries.js';

/** A mail's words, composed by the caller in the reader's language and the tenant's brand. */
export interface ResetMailText {
  subject: string;
  text: string;
  html: string;
  /** The images the HTML shows (the tenant's logo). */
  inline?: readonly InlineImageRef[];
}

export interface PasswordResetOptions {
  /** How long a link works (default 3600 s: one hour). */
  ttlSeconds?: number;
  /** Links one address is sent within `windowSeconds` (default 3). */
  perAddress?: number;
  /** Links one account is sent within `windowSeconds`, whatever its address (default 5). */
  perAccount?: number;
  /** The throttles' window (default 3600 s). */
  windowSeconds?: number;
}

export const DEFAULT_PASSWORD_RESET = Object.freeze({
  ttlSeconds: 3600,
  perAddress: 3,
  perAccount: 5,
  windowSeconds: 3600,
});

export interface PasswordResetDeps {
  db: Database;
  tenantKeys: TenantKeys;
  clock: Clock;
  /** The tenant's hasher and policy (`users.passwords`, `users.passwordPolicy`). */
  users: Pick<Users, 'passwords' | 'passwordPolicy'>;
  accountTokens: AccountTokens;
  mail: Pick<Mail, 'enqueue'>;
  /** "Sign out everywhere" (src/tenancy/user-sessions.ts). */
  sessions: Pick<UserSessions, 'revokeAll'>;
  /** Its address counters count reset requests per client address, as they count sign-ins. */
  throttle: Pick<SignInThrottle, 'addressRetryAfter' | 'recordAddressFailure'>;
  /** Whether the tenant requires this user to use a second factor (the shorter minimum applies). */
  mfaEnforcedFor(tx: Queryable, tenantId: string, userId: string): Promise<boolean>;
  options?: PasswordResetOptions;
}

export interface ResetRequest {
  tenantId: string;
  email: string;
  /** The client's address as the server saw it (after trusted proxies). */
  ip: string;
  userAgent?: string;
  /** Kept sealed with the token and handed back when it is used (e.g. the page language). */
  data?: Record<string, string>;
  /** The mail carrying the link; called only when a mail goes. The secret goes nowhere else. */
  composeLink(link: { secret: string; expiresAt: Date }): ResetMailText;
}

export interface ResetCompletion {
  tenantId: string;
  /** The secret the link carried. */
  secret: string;
  password: string;
  ip: string;
  userAgent?: string;
  /** The "your password was changed" mail, in the language of the page that changed it. */
  composeChanged(at: Date): ResetMailText;
}

/** What a usable link allows, for the page asking for the new password. */
export interface ResetLink {
  data: Record<string, string>;
  expiresAt: Date;
  /** The policy's lengths for this user's password. */
  minLength: number;
  maxLength: number;
}

/** Why no link went, as the audit log records it; the person asking is never told. */
export type ResetRefusal =
  | 'unknown_account'
  | 'disabled'
  | 'throttled_client'
  | 'throttled_address'
  | 'throttled_account';

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const MAX_EMAIL = 320;
/** Stands for the user of an unknown address, so both paths run the same queries. */
const NO_USER = '00000000-0000-0000-0000-000000000000';

function linkInvalid(): OrthIdError {
  return new OrthIdError(
    'account.link_invalid',
    'This link is not valid. Open the link from the most recent mail, or ask for a new one.',
  );
}

export function createPasswordReset(deps: PasswordResetDeps) {
  const { clock, accountTokens } = deps;
  const policy = { ...DEFAULT_PASSWORD_RESET, ...deps.options };
  if (!Object.values(policy).every((n) => Number.isInteger(n) && n >= 1)) {
    throw new OrthIdError('config.invalid', 'Password reset settings must be whole numbers of at least 1.');
  }

  const addressKey = (keyring: TenantKeyring, ip: string) =>
    `ip:password-reset:${keyring.index('password-reset.ip', throttledAddress(ip))}`;

  /**
   * Work like issuing a token and sealing a mail costs, for a request that sends none: the
   * answer should not take visibly less time for an address without an account.
   */
  function comparableWork(keyring: TenantKeyring, email: string) {
    const secret = randomBytes(32).toString('base64url');
    createHash('sha256').update(secret).digest();
    const rowId = NO_USER;
    keyring.seal(JSON.stringify({ email, data: {} }), { table: 'account_tokens', column: 'payload', rowId });
    keyring.seal(email, { table: 'mail_queue', column: 'recipient', rowId });
    keyring.seal(secret.repeat(64), { table: 'mail_queue', column: 'content', rowId });
  }

  return {
    options: policy,

    /**
     * Sends a reset link to the address when it belongs to an active user and no throttle
     * stands in the way; otherwise records why not. Resolves the same either way: the caller
     * shows one neutral page. Throws only `request.invalid` for something that is no address.
     */
    async request(input: ResetRequest): Promise<void> {
      const email = normaliseEmail(input.email);
      if (email.length > MAX_EMAIL || !EMAIL.test(email)) {
        throw new OrthIdError('request.invalid', 'Enter your email address.', {
          details: { field: 'email' },
        });
      }
      await withTenant(deps.db, input.tenantId, async (tx) => {
        const keyring = await deps.tenantKeys.forTenant(tx, input.tenantId);
        const now = clock.now();
        const since = new Date(now.getTime() - policy.windowSeconds * 1000);
        const key = addressKey(keyring, input.ip);
        // Every request counts against its client address, sent or not: a flood from one
        // address is slowed however many addresses it names.
        const clientBlocked = (await deps.throttle.addressRetryAfter(tx, key, now)) > 0;
        await deps.throttle.recordAddressFailure(tx, input.tenantId, key, now);
        const user = await createUsersQueries(tx).byEmailIndex(emailIndex(keyring, email));
        const forAddress = await accountTokens.issuedFor(
          tx,
          input.tenantId,
          'password_reset',
          email,
          policy.windowSeconds,
        );
        const forAccount = await createPasswordResetQueries(tx).countIssuedForUser(
          user?.id ?? NO_USER,
          since,
        );
        const refusal: ResetRefusal | undefined = clientBlocked
          ? 'throttled_client'
          : !user
            ? 'unknown_account'
            : user.status !== 'active'
              ? 'disabled'
              : forAddress >= policy.perAddress
                ? 'throttled_address'
                : forAccount >= policy.perAccount
                  ? 'throttled_account'
                  : undefined;
        const audit = (outcome: 'success' | 'failure', details: Record<string, unknown>) =>
          appendAudit(
            tx,
            keyring,
            {
              // Anyone can type an address: the request is nobody's until the link is used.
              actor: 'anonymous',
              action: 'user.password_reset_requested',
              ...(user ? { target: `user:${user.id}` } : {}),
              outcome,
              ip: input.ip,
              ...(input.userAgent ? { userAgent: input.userAgent } : {}),
              details,
            },
            clock,
          );
        if (refusal || !user) {
          comparableWork(keyring, email);
          await audit('failure', { reason: refusal ?? 'unknown_account' });
          return;
        }
        // Only the newest link works: an older mail left in an inbox opens nothing.
        await accountTokens.revokeForUser(tx, input.tenantId, user.id, 'password_reset');
        const issued = await accountTokens.issue(tx, input.tenantId, {
          purpose: 'password_reset',
          email,
          userId: user.id,
          ...(input.data ? { data: input.data } : {}),
          ttlSeconds: policy.ttlSeconds,
        });
        const mail = input.composeLink({ secret: issued.secret, expiresAt: issued.expiresAt });
        // To the address the account holds, in the spelling it was given at sign-up.
        const to = openUser(keyring, user).email;
        await deps.mail.enqueue(tx, input.tenantId, { to, template: 'password-reset', ...mail });
        await audit('success', { tokenId: issued.id, expiresAt: issued.expiresAt.toISOString() });
      });
    },

    /**
     * The token a link names, if it can still be used: its sealed data for the page that asks
     * for the new password. Throws `account.link_invalid`, `account.link_expired`,
     * `account.link_used`; changes nothing.
     */
    async check(tenantId: string, secret: string): Promise<ResetLink> {
      return withTenant(deps.db, tenantId, async (tx) => {
        const token = await accountTokens.check(tx, tenantId, 'password_reset', secret);
        if (!token.userId) throw linkInvalid();
        const { passwordPolicy } = deps.users;
        const mfaEnforced = await deps.mfaEnforcedFor(tx, tenantId, token.userId);
        return {
          data: token.data,
          expiresAt: token.expiresAt,
          minLength: mfaEnforced ? passwordPolicy.minLengthWithMfa : passwordPolicy.minLength,
          maxLength: passwordPolicy.maxLength,
        };
      });
    },

    /**
     * Sets the new password the link allows, in one transaction with everything it ends: the
     * link itself and any other outstanding one, every session, grant and refresh token, the
     * sign-in lock and failure counters; queues the notice and audits `user.password_reset`.
     * A password the policy refuses (`password.*`) or a bad link changes nothing.
     */
    async complete(input: ResetCompletion): Promise<{ userId: string; data: Record<string, string> }> {
      const { tenantId } = input;
      // Checked first without using it, so the policy and the hash (tens of milliseconds on a
      // hashing thread) run outside any transaction, and a refused password leaves the link usable.
      const first = await withTenant(deps.db, tenantId, async (tx) => {
        const token = await accountTokens.check(tx, tenantId, 'password_reset', input.secret);
        if (!token.userId) throw linkInvalid();
        return { userId: token.userId, mfaEnforced: await deps.mfaEnforcedFor(tx, tenantId, token.userId) };
      });
      await deps.users.passwordPolicy.check(input.password, { mfaEnforced: first.mfaEnforced });
      const hash = await deps.users.passwords.hash(input.password);

      const outcome = await withTenant(deps.db, tenantId, async (tx) => {
        const keyring = await deps.tenantKeys.forTenant(tx, tenantId);
        // Locks the token: two posts of one link cannot both set a password.
        const token = await accountTokens.use(tx, tenantId, 'password_reset', input.secret);
        const userId = token.userId;
        if (userId !== first.userId) return linkInvalid();
        const users = createUsersQueries(tx);
        const row = await users.byId(userId, true);
        const audit = (outcome: 'success' | 'failure', details: Record<string, unknown>) =>
          appendAudit(
            tx,
            keyring,
            {
              actor: `user:${userId}`,
              action: 'user.password_reset',
              target: `user:${userId}`,
              outcome,
              ip: input.ip,
              ...(input.userAgent ? { userAgent: input.userAgent } : {}),
              details,
            },
            clock,
          );
        if (row?.status !== 'active') {
          // Disabled (or deleted) since the mail went: the link is spent, the password unchanged.
          if (row) await audit('failure', { reason: 'disabled' });
          return linkInvalid();
        }
        const now = clock.now();
        // User row before counter: the lock order sign-in uses.
        const updated = (await users.setPassword(userId, hash, now))!;
        // The link reached the address, which proves it as a verification link would; and a
        // sign-up someone else began with this address loses its password to the owner's.
        const verified = row.awaiting_verification ? await users.markEmailVerified(userId, now) : undefined;
        const unlocked = row.locked_at !== null;
        // A new password starts the account's sign-in failure count again, as an admin's does.
        await createSignInThrottleQueries(tx).delete(accountThrottleKey(userId));
        await accountTokens.revokeForUser(tx, tenantId, userId, 'password_reset');
        const revoked = await deps.sessions.revokeAll(tx, tenantId, userId, `user:${userId}`);
        const user = openUser(keyring, verified ?? updated);
        await deps.mail.enqueue(tx, tenantId, {
          to: user.email,
          template: 'password-changed',
          ...input.composeChanged(now),
        });
        await audit('success', {
          tokenId: token.id,
          sessionsRevoked: revoked.sessions,
          grantsRevoked: revoked.grants,
          unlocked,
          emailVerified: verified !== undefined,
        });
        return { userId, data: token.data };
      });
      if (outcome instanceof OrthIdError) throw outcome;
      return outcome;
    },
  };
}

export type PasswordReset = ReturnType<typeof createPasswordReset>;
