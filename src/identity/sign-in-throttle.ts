// Sign-in throttling: growing delays per account and per client address, counted in PostgreSQL
// so every replica sees the same counters. Decides nothing about passwords; sign-in asks it.
import { addressUnit } from '../core/client-address.js';
import { OrthIdError } from '../core/errors.js';
import type { Queryable } from '../core/sql.js';
import type { TenantKeyring } from '../crypto/tenant-keys.js';
import { createSignInThrottleQueries, type ThrottleRow } from './sign-in-throttle.queries.js';

export interface SignInThrottleOptions {
  /** Consecutive failures per key that cost nothing (default 5). */
  freeFailures?: number;
  /** The longest delay after a failure, in seconds (default 900: 15 minutes). */
  maxDelaySeconds?: number;
  /** An address's counter starts again after this long without a failure (default 900). */
  ipResetSeconds?: number;
  /** Consecutive failed attempts after which an account is locked until reset or unlock (default 100). */
  lockAfterFailures?: number;
}

/** The two counters every attempt touches. */
export interface ThrottleKeys {
  account: string;
  ip: string;
}

export interface ThrottleState {
  /** Seconds until attempts on these keys are allowed again; 0 when they are allowed now. */
  retryAfterSeconds: number;
  /** Consecutive failures on the account key (used to "lock" unknown emails like real accounts). */
  accountFailures: number;
}

export const DEFAULT_SIGN_IN_THROTTLE = Object.freeze({
  freeFailures: 5,
  maxDelaySeconds: 900,
  ipResetSeconds: 900,
  lockAfterFailures: 100,
});

/** Counters of failed client authentications, per client (their address counters start `ip:client:`). */
const CLIENT_KEY_PREFIX = 'client:';

/** The account key of a known user. */
export function accountThrottleKey(userId: string): string {
  return `account:${userId}`;
}

/**
 * The address an attacker controls as a unit (an IPv4 address, an IPv6 /64), whichever way a
 * forwarded header spells it: one counter per address, however many spellings.
 */
export function throttledAddress(ip: string): string {
  return addressUnit(ip);
}

function secondsUntil(until: Date, now: Date): number {
  return Math.max(1, Math.ceil((until.getTime() - now.getTime()) / 1000));
}

export function createSignInThrottle(options: SignInThrottleOptions = {}) {
  const d = DEFAULT_SIGN_IN_THROTTLE;
  const policy = {
    freeFailures: options.freeFailures ?? d.freeFailures,
    maxDelaySeconds: options.maxDelaySeconds ?? d.maxDelaySeconds,
    ipResetSeconds: options.ipResetSeconds ?? d.ipResetSeconds,
    lockAfterFailures: options.lockAfterFailures ?? d.lockAfterFailures,
  };
  if (!Object.values(policy).every((n) => Number.isInteger(n) && n >= 1)) {
    throw new OrthIdError(
      'config.invalid',
      'Sign-in throttling settings must be whole numbers of at least 1.',
    );
  }

  function stateOf(rows: ThrottleRow[], keys: ThrottleKeys, now: Date): ThrottleState {
    let retryAfterSeconds = 0;
    for (const row of rows) {
      if (row.blocked_until && row.blocked_until.getTime() > now.getTime()) {
        retryAfterSeconds = Math.max(retryAfterSeconds, secondsUntil(row.blocked_until, now));
      }
    }
    const account = rows.find((r) => r.key === keys.account);
    return { retryAfterSeconds, accountFailures: account?.failures ?? 0 };
  }

  return {
    lockAfterFailures: policy.lockAfterFailures,

    /** Keys for an attempt: the user's id when the email is known, else the email's blind index. */
    keys(
      keyring: TenantKeyring,
      subject: { userId: string } | { emailIndex: string },
      ip: string,
    ): ThrottleKeys {
      return {
        account: 'userId' in subject ? accountThrottleKey(subject.userId) : `account:${subject.emailIndex}`,
        ip: `ip:${keyring.index('sign-in.ip', throttledAddress(ip))}`,
      };
    },

    /**
     * Keys for a second factor's code, asked only after a correct password: the account's own
     * counter (a correct password clears the password counter, never this one) and the address
     * counter sign-in uses, so an address guessing either is slowed for both.
     */
    secondFactorKeys(keyring: TenantKeyring, userId: string, ip: string): ThrottleKeys {
      return {
        account: `mfa:${accountThrottleKey(userId)}`,
        ip: `ip:${keyring.index('sign-in.ip', throttledAddress(ip))}`,
      };
    },

    /**
     * Keys for a client authentication (a client secret at the token, introspection or
     * revocation endpoint): the client and the address, apart from sign-in's counters.
     */
    clientKeys(keyring: TenantKeyring, clientId: string, ip: string): ThrottleKeys {
      return {
        account: `${CLIENT_KEY_PREFIX}${clientId}`,
        ip: `ip:client:${keyring.index('client-auth.ip', throttledAddress(ip))}`,
      };
    },

    /**
     * The counter of wrong device-flow user codes entered from an address (RFC 8628 §5.1: the
     * code is short, so guessing is bounded by the address, like a password).
     */
    userCodeKey(keyring: TenantKeyring, ip: string): string {
      return `ip:user-code:${keyring.index('user-code.ip', throttledAddress(ip))}`;
    },

    /** Seconds until an address counter allows attempts again; 0 when it does now. */
    async addressRetryAfter(tx: Queryable, key: string, now: Date): Promise<number> {
      const rows = await createSignInThrottleQueries(tx).get([key]);
      return stateOf(rows, { account: '', ip: key }, now).retryAfterSeconds;
    },

    /** Counts a failure on an address counter alone; returns the seconds it now blocks. */
    async recordAddressFailure(tx: Queryable, tenantId: string, key: string, now: Date): Promise<number> {
      const row = await createSignInThrottleQueries(tx).recordFailure(tenantId, key, now, {
        freeFailures: policy.freeFailures,
        maxDelaySeconds: policy.maxDelaySeconds,
        resetBefore: new Date(now.getTime() - policy.ipResetSeconds * 1000),
      });
      return stateOf([row], { account: '', ip: key }, now).retryAfterSeconds;
    },

    /** The counters as they stand; `lock` holds them until the transaction ends. */
    async state(tx: Queryable, keys: ThrottleKeys, now: Date, lock = false): Promise<ThrottleState> {
      return stateOf(await createSignInThrottleQueries(tx).get([keys.account, keys.ip], lock), keys, now);
    },

    /** Counts a failed attempt on both keys (account first: one lock order everywhere). */
    async recordFailure(
      tx: Queryable,
      tenantId: string,
      keys: ThrottleKeys,
      now: Date,
    ): Promise<ThrottleState> {
      const queries = createSignInThrottleQueries(tx);
      const common = { freeFailures: policy.freeFailures, maxDelaySeconds: policy.maxDelaySeconds };
      const decayed = new Date(now.getTime() - policy.ipResetSeconds * 1000);
      // A client's counter decays like an address's: no success clears it (a busy client
      // authenticates all the time, which would wipe an attacker's count), and it is no lock.
      const account = await queries.recordFailure(tenantId, keys.account, now, {
        ...common,
        resetBefore: keys.account.startsWith(CLIENT_KEY_PREFIX) ? decayed : null,
      });
      const ip = await queries.recordFailure(tenantId, keys.ip, now, {
        ...common,
        resetBefore: decayed,
      });
      return stateOf([account, ip], keys, now);
    },

    /** A success clears the account's counter; the address's counter only decays. */
    async resetAccount(tx: Queryable, accountKey: string): Promise<void> {
      await createSignInThrottleQueries(tx).delete(accountKey);
    },

    /**
     * Deletes up to `limit` address counters that no longer count: past their reset window,
     * where the next failure starts again at 1, and unblocked. Account counters stay: they
     * count consecutive failures towards the lock however old, for unknown emails too, so a
     * sprayed email behaves like a real account for as long as one would.
     */
    async purgeStaleAddresses(tx: Queryable, now: Date, limit: number): Promise<number> {
      const before = new Date(now.getTime() - policy.ipResetSeconds * 1000);
      const queries = createSignInThrottleQueries(tx);
      const addresses = await queries.deleteStale('ip:', before, now, limit);
      // Client counters decay like addresses (a deleted client's too).
      return addresses + (await queries.deleteStale(CLIENT_KEY_PREFIX, before, now, limit - addresses));
    },
  };
}

export type SignInThrottle = ReturnType<typeof createSignInThrottle>;
