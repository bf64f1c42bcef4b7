// What a signed-in user changes about themself: their name, password, address (proved by a link
// to the new one) and, where the tenant allows it, the account itself. The user is the actor.
import { appendAudit } from '../audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import { OrthIdError } from '../core/errors.js';
import type { Queryable } from '../core/sql.js';
import { normaliseEmail } from '../crypto/blind-index.js';
import type { TenantKeys } from '../crypto/tenant-keys.js';
import type { Mail } from '../mail/mail.js';
import type { AccountTokens } from './account-tokens.js';
import { type NoticeText, queueEmailChangedNotice } from './email-change-notice.js';
import type { Mfa } from './mfa.js';
import type { SignInThrottle } from './sign-in-throttle.js';
import { emailIndex, type User, type Users } from './users.js';
import { createUsersQueries } from './users.queries.js';

/** How long a link to confirm a new address stays valid. */
export const EMAIL_CHANGE_TTL_SECONDS = 24 * 60 * 60;
const MAX_NAME = 200;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export interface SelfServiceDeps {
  users: Users;
  tenantKeys: TenantKeys;
  clock: Clock;
  accountTokens: AccountTokens;
  mfa: Pick<Mfa, 'enforcedFor'>;
  /** The sign-in counters: guessing the current password here is guessing it at sign-in. */
  throttle: Pick<SignInThrottle, 'keys' | 'state' | 'recordFailure'>;
  /** Where the notice to a previous address is queued, in the change's transaction. */
  mail: Pick<Mail, 'enqueue'>;
}

/** What a change of address asks the caller to mail to the new address. */
export type EmailChangeRequest =
  /** A link that proves the address: `secret` goes into the mail and nowhere else. */
  | { kind: 'link'; email: string; secret: string; expiresAt: Date }
  /** The address is another user's: its owner is told so, and nothing is issued. */
  | { kind: 'taken'; email: string };

/** Whether a self-deletion is allowed by the tenant (its `selfDelete` setting, off by default). */
export function selfDeleteAllowed(tenant: { settings?: Record<string, unknown> }): boolean {
  return tenant.settings?.selfDelete === true;
}

export function createSelfService(deps: SelfServiceDeps) {
  const { users } = deps;
  const actorOf = (userId: string) => `user:${userId}`;

  async function auditOf(
    tx: Queryable,
    tenantId: string,
    userId: string,
    action: string,
    outcome: 'success' | 'failure',
  ) {
    await appendAudit(
      tx,
      await deps.tenantKeys.forTenant(tx, tenantId),
      { actor: actorOf(userId), action, target: actorOf(userId), outcome },
      deps.clock,
    );
  }

  async function passwordMatches(tx: Queryable, userId: string, password: string): Promise<boolean> {
    const row = await createUsersQueries(tx).byId(userId, true);
    if (!row?.password_hash) {
      await users.passwords.verifyDummy(password);
      return false;
    }
    return users.passwords.verify(row.password_hash, password);
  }

  return {
    /** An empty name clears it. */
    async rename(tx: Queryable, tenantId: string, userId: string, name: string): Promise<User> {
      const trimmed = name.trim();
      if (trimmed.length > MAX_NAME) {
        throw new OrthIdError('request.invalid', `A name has at most ${MAX_NAME} characters.`, {
          details: { field: 'name' },
        });
      }
      return users.update(tx, tenantId, userId, { name: trimmed === '' ? null : trimmed }, actorOf(userId));
    },

    /**
     * Sets a new password once the current one is proved. A wrong current password is audited
     * and answered `'incorrect'` (not thrown) so the caller's transaction commits the event.
     */
    async changePassword(
      tx: Queryable,
      tenantId: string,
      userId: string,
      passwords: { current: string; next: string; ip: string },
    ): Promise<'changed' | 'incorrect'> {
      const keyring = await deps.tenantKeys.forTenant(tx, tenantId);
      const keys = deps.throttle.keys(keyring, { userId }, passwords.ip);
      const now = deps.clock.now();
      const { retryAfterSeconds } = await deps.throttle.state(tx, keys, now, true);
      if (retryAfterSeconds > 0) {
        throw new OrthIdError(
          'auth.throttled',
          `Too many wrong passwords. Wait ${retryAfterSeconds} seconds before trying again.`,
          { details: { retryAfterSeconds } },
        );
      }
      if (!(await passwordMatches(tx, userId, passwords.current))) {
        await deps.throttle.recordFailure(tx, tenantId, keys, now);
        await auditOf(tx, tenantId, userId, 'user.password_change_refused', 'failure');
        return 'incorrect';
      }
      const next = passwords.next;
      const mfaEnforced = await deps.mfa.enforcedFor(tx, tenantId, userId);
      await users.setPassword(tx, tenantId, userId, next, { mfaEnforced, actor: actorOf(userId) });
      return 'changed';
    },

    /**
     * Starts a change of address. The page says the same whether or not the address is taken;
     * the mail to it says which, so only the address's owner learns that it has an account.
     */
    async requestEmailChange(
      tx: Queryable,
      tenantId: string,
      userId: string,
      address: string,
    ): Promise<EmailChangeRequest> {
      const email = normaliseEmail(address);
      if (!EMAIL.test(email)) {
        throw new OrthIdError('request.invalid', 'Enter an email address such as name@example.com.', {
          details: { field: 'email' },
        });
      }
      const user = await users.get(tx, tenantId, userId);
      if (normaliseEmail(user.email) === email) {
        throw new OrthIdError('request.invalid', 'That is already your address.', {
          details: { field: 'email' },
        });
      }
      await auditOf(tx, tenantId, userId, 'user.email_change_requested', 'success');
      const holder = await users.findByEmail(tx, tenantId, email);
      if (holder) return { kind: 'taken', email };
      // Only the latest link works: an older one may have gone to a mistyped address.
      await deps.accountTokens.revokeForUser(tx, tenantId, userId, 'email_change');
      const issued = await deps.accountTokens.issue(tx, tenantId, {
        purpose: 'email_change',
        email,
        userId,
        ttlSeconds: EMAIL_CHANGE_TTL_SECONDS,
      });
      return { kind: 'link', email, secret: issued.secret, expiresAt: issued.expiresAt };
    },

    /**
     * Uses a change-of-address link: the address becomes the user's, verified, and the previous
     * address is told (`composeNotice` gets the new one masked) in the same transaction.
     * `user.email_taken` when another user took it meanwhile; the link errors of
     * `accountTokens.use` otherwise.
     */
    async confirmEmailChange(
      tx: Queryable,
      tenantId: string,
      secret: string,
      composeNotice: (maskedNext: string) => NoticeText,
    ): Promise<User> {
      const token = await deps.accountTokens.use(tx, tenantId, 'email_change', secret);
      const user = await users.get(tx, tenantId, token.userId!);
      if (user.status !== 'active') {
        throw new OrthIdError('account.link_invalid', 'This link is not valid for a disabled account.');
      }
      await users.update(tx, tenantId, user.id, { email: token.email }, actorOf(user.id));
      await queueEmailChangedNotice(
        deps.mail,
        tx,
        tenantId,
        { previous: user.email, next: token.email },
        composeNotice,
      );
      const keyring = await deps.tenantKeys.forTenant(tx, tenantId);
      await createUsersQueries(tx).markEmailVerified(
        user.id,
        deps.clock.now(),
        emailIndex(keyring, token.email),
      );
      await auditOf(tx, tenantId, user.id, 'user.email_verified', 'success');
      return users.get(tx, tenantId, user.id);
    },

    /** Deletes the account when the tenant allows it and the user typed their address or password. */
    async deleteSelf(
      tx: Queryable,
      tenant: { id: string; settings?: Record<string, unknown> },
      userId: string,
      confirmation: string,
    ): Promise<void> {
      if (!selfDeleteAllowed(tenant)) {
        throw new OrthIdError(
          'account.self_delete_disabled',
          'This organisation does not let accounts be deleted here; ask an administrator.',
        );
      }
      const user = await users.get(tx, tenant.id, userId);
      const typed = confirmation.trim();
      const confirmed =
        (typed !== '' && normaliseEmail(typed) === normaliseEmail(user.email)) ||
        (confirmation !== '' && (await passwordMatches(tx, userId, confirmation)));
      if (!confirmed) {
        throw new OrthIdError(
          'account.confirmation_mismatch',
          'Type your email address or your password to confirm the deletion.',
          { details: { field: 'confirmation' } },
        );
      }
      await users.delete(tx, tenant.id, userId, actorOf(userId));
    },
  };
}

export type SelfService = ReturnType<typeof createSelfService>;
