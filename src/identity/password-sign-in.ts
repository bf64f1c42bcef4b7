// Password sign-in as an ordered list of checks: throttle, lock, verify (equal work for unknown
// emails), then record the outcome. Counters and audit events commit even when sign-in fails; a
// correct password that a second step must follow is recorded as verified, not as a sign-in.
import { appendAudit } from '../audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import { OrthIdError } from '../core/errors.js';
import type { Queryable } from '../core/sql.js';
import type { TenantKeyring, TenantKeys } from '../crypto/tenant-keys.js';
import { type Database, withTenant, withTenantStatements } from '../storage/db/database.js';
import type { PasswordHasher } from './passwords.js';
import type { SignInThrottle } from './sign-in-throttle.js';
import { emailIndex } from './users.js';
import { createUsersQueries, type UserRow } from './users.queries.js';

export interface PasswordSignInDeps {
  db: Database;
  tenantKeys: TenantKeys;
  /** The hasher users are created with (`users.passwords`), so parameters and dummy work match. */
  passwords: PasswordHasher;
  throttle: SignInThrottle;
  clock: Clock;
}

export interface PasswordSignInInput {
  tenantId: string;
  email: string;
  password: string;
  /** The client's address as the server saw it (after trusted proxies). */
  ip: string;
  userAgent?: string;
  /** The OIDC client the user is signing in to, for the audit log. */
  clientId?: string;
  /**
   * Asked once the password is correct, in the transaction that records it: whether a second
   * step (a factor, an enrolment) follows before the user is signed in. Then the password is
   * audited as `user.password_verified`, and `user.sign_in` is the completing step's to record.
   */
  secondStep?: (tx: Queryable, userId: string) => Promise<boolean>;
}

export interface SignInResult {
  userId: string;
  /**
   * When the verified password was set (epoch ms; null for an account from before this was kept):
   * a step that follows holds it against the account's, so a password changed or reset meanwhile
   * ends the sign-in that the old one began.
   */
  passwordSetAt: number | null;
}

/** Why an attempt failed, as the audit log records it (the caller only ever sees the error code). */
export type SignInFailureReason =
  | 'unknown_account'
  | 'no_password'
  | 'invalid_credentials'
  | 'disabled'
  | 'throttled'
  | 'locked'
  | 'unverified';

function invalidCredentials(): OrthIdError {
  return new OrthIdError('auth.invalid_credentials', 'The email or password is incorrect.');
}

function throttled(retryAfterSeconds: number): OrthIdError {
  return new OrthIdError(
    'auth.throttled',
    `Too many failed sign-in attempts. Wait ${retryAfterSeconds} second${retryAfterSeconds === 1 ? '' : 's'} before trying again.`,
    { details: { retryAfterSeconds } },
  );
}

function unverified(): OrthIdError {
  return new OrthIdError(
    'signup.email_unverified',
    'Verify your e-mail address first: open the link in the mail we sent, or ask for a new one.',
  );
}

function locked(): OrthIdError {
  return new OrthIdError(
    'auth.account_locked',
    'This account is locked after too many failed sign-in attempts. Reset the password, or ask an administrator to unlock the account.',
  );
}

/**
 * Signs a user in with email and password, or throws `auth.invalid_credentials` (the same for an
 * unknown email, a wrong password and a disabled user), `auth.throttled` (with
 * `details.retryAfterSeconds`) or `auth.account_locked`.
 *
 * @example
 * const { userId } = await signInWithPassword(deps, { tenantId, email, password, ip: request.ip });
 */
export async function signInWithPassword(
  deps: PasswordSignInDeps,
  input: PasswordSignInInput,
): Promise<SignInResult> {
  const { clock, passwords, throttle } = deps;

  const audit = (
    tx: Queryable,
    keyring: TenantKeyring,
    user: UserRow | undefined,
    failure?: SignInFailureReason,
    extra?: Record<string, unknown>,
    action: 'user.sign_in' | 'user.password_verified' = 'user.sign_in',
  ) =>
    appendAudit(
      tx,
      keyring,
      {
        actor: failure || !user ? 'anonymous' : `user:${user.id}`,
        action,
        target: user ? `user:${user.id}` : undefined,
        outcome: failure ? 'failure' : 'success',
        ip: input.ip,
        userAgent: input.userAgent,
        details: {
          method: 'password',
          ...(failure ? { reason: failure } : {}),
          ...(input.clientId ? { clientId: input.clientId } : {}),
          ...extra,
        },
      },
      clock,
    );

  // 1. Throttle and lock: refused without looking at the password. Two reads, each its own
  //    statement (no transaction to open and commit): step 3 reads both again under lock.
  const before = await withTenantStatements(deps.db, input.tenantId, async (q) => {
    const keyring = await deps.tenantKeys.forTenant(q, input.tenantId);
    const index = emailIndex(keyring, input.email);
    const user = await createUsersQueries(q).byEmailIndex(index);
    const keys = throttle.keys(keyring, user ? { userId: user.id } : { emailIndex: index }, input.ip);
    return { user, keys, state: await throttle.state(q, keys, clock.now()) };
  });
  // A lock is named before a delay: waiting out a block would not help a locked account. An
  // unknown email "locks" like a real account, so a lock does not reveal that one exists.
  const { state } = before;
  const isLocked = before.user
    ? before.user.locked_at !== null
    : state.accountFailures >= throttle.lockAfterFailures;
  if (isLocked || state.retryAfterSeconds > 0) {
    await withTenant(deps.db, input.tenantId, async (tx) => {
      const keyring = await deps.tenantKeys.forTenant(tx, input.tenantId);
      if (isLocked) await audit(tx, keyring, before.user, 'locked');
      else await audit(tx, keyring, before.user, 'throttled', { retryAfterSeconds: state.retryAfterSeconds });
    });
    throw isLocked ? locked() : throttled(state.retryAfterSeconds);
  }

  // 2. Verify outside any transaction (argon2 takes tens of milliseconds on a hashing thread).
  const { user, keys } = before;
  let failure: SignInFailureReason | undefined;
  if (!user || user.password_hash === null) {
    await passwords.verifyDummy(input.password);
    failure = user ? 'no_password' : 'unknown_account';
  } else if (!(await passwords.verify(user.password_hash, input.password))) {
    failure = 'invalid_credentials';
  } else if (user.status !== 'active') {
    failure = 'disabled';
  }
  const rehash =
    failure === undefined && passwords.needsRehash(user!.password_hash!)
      ? { from: user!.password_hash!, to: await passwords.hash(input.password) }
      : undefined;

  // 3. Record the outcome. The counters are read again under lock: attempts verified in parallel
  //    may have set a block meanwhile, and then this one must answer like a throttled one.
  //    Lock order, everywhere: user row, account counter, address counter, audit chain.
  const outcome = await withTenant(deps.db, input.tenantId, async (tx) => {
    const keyring = await deps.tenantKeys.forTenant(tx, input.tenantId);
    const queries = createUsersQueries(tx);
    const row = user ? await queries.byId(user.id, true) : undefined;
    const now = clock.now();
    const current = await throttle.state(tx, keys, now, true);
    // A password set since it was verified makes the verified one stale (a concurrent re-hash
    // of the same password does not: it leaves password_changed_at alone).
    const changed =
      row !== undefined && row.password_changed_at?.getTime() !== user?.password_changed_at?.getTime();
    if (
      failure === undefined &&
      row &&
      !changed &&
      row.status === 'active' &&
      row.locked_at === null &&
      current.retryAfterSeconds === 0
    ) {
      // The right password of an account that signed up and never proved its address: said
      // plainly (only the password's holder learns it), not counted, and not a sign-in.
      if (row.awaiting_verification) {
        await audit(tx, keyring, row, 'unverified');
        return unverified();
      }
      // A counter row exists only after a failure; most sign-ins have none to clear.
      if (current.accountFailures > 0) await throttle.resetAccount(tx, keys.account);
      await queries.recordSignIn(row.id, now, rehash);
      const stepFollows = (await input.secondStep?.(tx, row.id)) ?? false;
      await audit(
        tx,
        keyring,
        row,
        undefined,
        rehash ? { rehashed: true } : undefined,
        stepFollows ? 'user.password_verified' : 'user.sign_in',
      );
      return { userId: row.id, passwordSetAt: row.password_changed_at?.getTime() ?? null };
    }
    const reason: SignInFailureReason =
      failure ??
      (changed
        ? 'invalid_credentials'
        : row?.locked_at
          ? 'locked'
          : current.retryAfterSeconds > 0
            ? 'throttled'
            : row
              ? 'disabled'
              : 'unknown_account');
    const after = await throttle.recordFailure(tx, input.tenantId, keys, now);
    const counted = row
      ? await queries.recordFailedSignIn(row.id, throttle.lockAfterFailures, now)
      : undefined;
    await audit(
      tx,
      keyring,
      row,
      reason,
      after.retryAfterSeconds > 0 ? { retryAfterSeconds: after.retryAfterSeconds } : undefined,
    );
    if (row && row.locked_at === null && counted?.locked_at) {
      await appendAudit(
        tx,
        keyring,
        {
          actor: 'system',
          action: 'user.locked',
          target: `user:${row.id}`,
          outcome: 'success',
          details: { failedSignIns: counted.failed_sign_ins },
        },
        clock,
      );
    }
    if (reason === 'locked') return locked();
    if (current.retryAfterSeconds > 0)
      return throttled(Math.max(after.retryAfterSeconds, current.retryAfterSeconds));
    return invalidCredentials();
  });
  if (outcome instanceof OrthIdError) throw outcome;
  return outcome;
}
