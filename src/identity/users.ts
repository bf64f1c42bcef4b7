// Users of a tenant: personal fields sealed under the tenant's data key, email unique per tenant
// through the blind index, passwords checked by the policy and stored as argon2id. Every change is
// audited in the same transaction.
import { appendAudit } from '../audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import { OrthIdError } from '../core/errors.js';
import { isUuid, newId } from '../core/ids.js';
import type { Queryable } from '../core/sql.js';
import { normaliseEmail } from '../crypto/blind-index.js';
import type { TenantKeyring, TenantKeys } from '../crypto/tenant-keys.js';
import { createPasswordPolicy, type PasswordPolicy } from './password-policy.js';
import { createPasswordHasher, type PasswordHasher } from './passwords.js';
import { accountThrottleKey } from './sign-in-throttle.js';
import { createSignInThrottleQueries } from './sign-in-throttle.queries.js';
import { createUsersQueries, type UserFieldsPatch, type UserRow } from './users.queries.js';

export interface User {
  id: string;
  email: string;
  emailVerified: boolean;
  /** Signed up on the hosted page and has not yet proved the address: cannot sign in until then. */
  awaitingVerification: boolean;
  name: string | null;
  phone: string | null;
  status: 'active' | 'disabled';
  /** Whether the user can sign in with a password (never the hash itself). */
  hasPassword: boolean;
  /** Set after too many failed sign-ins; cleared by a new password or an admin unlock. */
  lockedAt: string | null;
  lastSignInAt: string | null;
  createdAt: string;
}

export interface NewUser {
  email: string;
  name?: string;
  phone?: string;
  emailVerified?: boolean;
  /** Signed up on the hosted page: cannot sign in until the address is verified. */
  awaitingVerification?: boolean;
  /** Checked against the password policy, then stored only as an argon2id hash. */
  password?: string;
}

export interface UserPatch {
  email?: string;
  /** null clears the field. */
  name?: string | null;
  phone?: string | null;
}

export interface PasswordOptions {
  /** The tenant requires a second factor, so the shorter NIST minimum applies. */
  mfaEnforced: boolean;
  /** Who set it (default `system`). */
  actor?: string;
}

/** The users list's orders: by creation, oldest first or (`-created`) newest first. */
export type UserSort = 'created' | '-created';

export interface UserPage {
  users: User[];
  /** Pass as `after` for the next page; null on the last page. */
  next: string | null;
}

const TABLE = 'users';
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const MAX_PAGE = 1000;

export function emailIndex(keyring: TenantKeyring, email: string): string {
  return keyring.index('users.email', normaliseEmail(email));
}

const iso = (value: Date | null) => (value === null ? null : new Date(value).toISOString());

/** Opens a stored user; throws `crypto.decrypt_failed` when a sealed field was moved or altered. */
export function openUser(keyring: TenantKeyring, row: UserRow): User {
  const open = (column: string, value: string | null) =>
    value === null ? null : keyring.open(value, { table: TABLE, column, rowId: row.id });
  return {
    id: row.id,
    email: open('email', row.email)!,
    emailVerified: row.email_verified,
    awaitingVerification: row.awaiting_verification,
    name: open('name', row.name),
    phone: open('phone', row.phone),
    status: row.status,
    hasPassword: row.password_hash !== null,
    lockedAt: iso(row.locked_at),
    lastSignInAt: iso(row.last_sign_in_at),
    createdAt: new Date(row.created_at).toISOString(),
  };
}

function checkedEmail(email: string): string {
  const normalised = normaliseEmail(email);
  if (!EMAIL.test(normalised)) {
    throw new OrthIdError('request.invalid', `"${email}" is not an email address.`, {
      details: { field: 'email' },
    });
  }
  return normalised;
}

function emailTaken(): OrthIdError {
  return new OrthIdError('user.email_taken', 'A user with this email already exists in this tenant.', {
    details: { field: 'email' },
  });
}

function notFound(id: string): OrthIdError {
  return new OrthIdError('user.not_found', `No user ${id} in this tenant.`);
}

export interface UsersDeps {
  tenantKeys: TenantKeys;
  clock: Clock;
  /** Default: argon2id at OWASP parameters. */
  passwords?: PasswordHasher;
  /** Default: NIST SP 800-63B lengths (15, or 8 with MFA; up to 256). */
  passwordPolicy?: PasswordPolicy;
}

export function createUsers(deps: UsersDeps) {
  const passwords = deps.passwords ?? createPasswordHasher();
  const passwordPolicy = deps.passwordPolicy ?? createPasswordPolicy();

  async function audit(
    tx: Queryable,
    keyring: TenantKeyring,
    actor: string,
    action: string,
    id: string,
    details?: Record<string, unknown>,
  ) {
    await appendAudit(
      tx,
      keyring,
      { actor, action, target: `user:${id}`, outcome: 'success', details },
      deps.clock,
    );
  }

  /** Runs one admin change on an existing user and audits it. */
  async function change(
    tx: Queryable,
    tenantId: string,
    id: string,
    actor: string,
    action: string,
    apply: (queries: ReturnType<typeof createUsersQueries>, now: Date) => Promise<UserRow | undefined>,
  ): Promise<User> {
    if (!isUuid(id)) throw notFound(id);
    const keyring = await deps.tenantKeys.forTenant(tx, tenantId);
    const row = await apply(createUsersQueries(tx), deps.clock.now());
    if (!row) throw notFound(id);
    await audit(tx, keyring, actor, action, id);
    return openUser(keyring, row);
  }

  return {
    /** The hasher sign-in must share, so stored hashes and dummy work use the same parameters. */
    passwords,
    passwordPolicy,

    /** Creates a user inside a tenant-scoped transaction. */
    async create(
      tx: Queryable,
      tenantId: string,
      input: NewUser,
      actor: string,
      options: { mfaEnforced?: boolean } = {},
    ): Promise<User> {
      const email = checkedEmail(input.email);
      let passwordHash: string | null = null;
      if (input.password !== undefined) {
        await passwordPolicy.check(input.password, { mfaEnforced: options.mfaEnforced ?? false });
        passwordHash = await passwords.hash(input.password);
      }
      const keyring = await deps.tenantKeys.forTenant(tx, tenantId);
      const id = newId();
      const seal = (column: string, value: string | undefined) =>
        value === undefined ? null : keyring.seal(value, { table: TABLE, column, rowId: id });
      const row = await createUsersQueries(tx).insert({
        tenant_id: tenantId,
        id,
        email_index: emailIndex(keyring, email),
        email: seal('email', email)!,
        email_verified: input.emailVerified ?? false,
        awaiting_verification: input.awaitingVerification ?? false,
        name: seal('name', input.name),
        phone: seal('phone', input.phone),
        profile: null,
        password_hash: passwordHash,
        password_changed_at: passwordHash === null ? null : deps.clock.now(),
        status: 'active',
      });
      if (!row) throw emailTaken();
      await audit(tx, keyring, actor, 'user.created', id, { password: passwordHash !== null });
      return openUser(keyring, row);
    },

    async get(tx: Queryable, tenantId: string, id: string): Promise<User> {
      const row = isUuid(id) ? await createUsersQueries(tx).byId(id) : undefined;
      if (!row) throw notFound(id);
      return openUser(await deps.tenantKeys.forTenant(tx, tenantId), row);
    },

    /**
     * When the user's password was last set (epoch ms, as sign-in reports it; null if never
     * recorded), or undefined when the user is gone or disabled: what a sign-in between its
     * password and its second step is held against.
     */
    async passwordSetAt(tx: Queryable, id: string): Promise<number | null | undefined> {
      const row = isUuid(id) ? await createUsersQueries(tx).byId(id) : undefined;
      if (row?.status !== 'active') return undefined;
      return row.password_changed_at?.getTime() ?? null;
    },

    async findByEmail(tx: Queryable, tenantId: string, email: string): Promise<UserRow | undefined> {
      const keyring = await deps.tenantKeys.forTenant(tx, tenantId);
      return createUsersQueries(tx).byEmailIndex(emailIndex(keyring, email));
    },

    /**
     * The user with this email (exact match after normalisation, through the blind index: the
     * stored addresses are sealed, so there is no partial match), or undefined.
     */
    async getByEmail(tx: Queryable, tenantId: string, email: string): Promise<User | undefined> {
      const keyring = await deps.tenantKeys.forTenant(tx, tenantId);
      const row = await createUsersQueries(tx).byEmailIndex(emailIndex(keyring, email));
      return row ? openUser(keyring, row) : undefined;
    },

    /**
     * Users in id order (creation order: ids are UUIDv7; `-created`: newest first), `limit` at a
     * time (default 50, at most 1000), of one status and only those awaiting verification when given.
     * The cursor is the last user's id: with the order it names the position.
     */
    async list(
      tx: Queryable,
      tenantId: string,
      options: {
        after?: string;
        limit?: number;
        status?: User['status'];
        awaitingVerification?: boolean;
        sort?: UserSort;
      } = {},
    ): Promise<UserPage> {
      const sort = options.sort ?? 'created';
      if (sort !== 'created' && sort !== '-created') {
        throw new OrthIdError('request.invalid', 'Sort by created or -created.', {
          details: { field: 'sort' },
        });
      }
      const limit = options.limit ?? 50;
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
        throw new OrthIdError(
          'request.invalid',
          `The page size must be a whole number from 1 to ${MAX_PAGE}.`,
          {
            details: { field: 'limit' },
          },
        );
      }
      if (options.after !== undefined && !isUuid(options.after)) {
        throw new OrthIdError(
          'request.invalid',
          'The cursor is not one this API returned; start again without it.',
          {
            details: { field: 'after' },
          },
        );
      }
      const keyring = await deps.tenantKeys.forTenant(tx, tenantId);
      const rows = await createUsersQueries(tx).page(options.after, limit + 1, {
        status: options.status,
        awaitingVerification: options.awaitingVerification,
        descending: sort === '-created',
      });
      const users = rows.slice(0, limit).map((row) => openUser(keyring, row));
      return { users, next: rows.length > limit ? users.at(-1)!.id : null };
    },

    /** Changes email, name or phone; a new email gets a new blind index and must be verified again. */
    async update(
      tx: Queryable,
      tenantId: string,
      id: string,
      patch: UserPatch,
      actor: string,
    ): Promise<User> {
      const email = patch.email === undefined ? undefined : checkedEmail(patch.email);
      const fields = (['email', 'name', 'phone'] as const).filter((f) => patch[f] !== undefined);
      if (!isUuid(id)) throw notFound(id);
      const keyring = await deps.tenantKeys.forTenant(tx, tenantId);
      const queries = createUsersQueries(tx);
      const seal = (column: string, value: string | null | undefined) =>
        value === undefined || value === null
          ? value
          : keyring.seal(value, { table: TABLE, column, rowId: id });
      const sealed: UserFieldsPatch = { name: seal('name', patch.name), phone: seal('phone', patch.phone) };
      if (email !== undefined) {
        const index = emailIndex(keyring, email);
        const holder = await queries.byEmailIndex(index);
        if (holder && holder.id !== id) throw emailTaken();
        sealed.email = { index, sealed: seal('email', email)! };
      }
      const row = await queries.updateFields(id, sealed, deps.clock.now());
      if (!row) throw notFound(id);
      // Names the fields, never their values: the audit log holds no personal data in clear.
      await audit(tx, keyring, actor, 'user.updated', id, { fields });
      return openUser(keyring, row);
    },

    /**
     * Sets a new password after the policy accepts it. A new password also lifts a sign-in lock
     * and clears the failure counters (it is how a locked account recovers).
     */
    async setPassword(
      tx: Queryable,
      tenantId: string,
      id: string,
      password: string,
      options: PasswordOptions,
    ): Promise<User> {
      await passwordPolicy.check(password, { mfaEnforced: options.mfaEnforced });
      const hash = await passwords.hash(password);
      return change(
        tx,
        tenantId,
        id,
        options.actor ?? 'system',
        'user.password_changed',
        async (queries, now) => {
          // User row before counter: the lock order sign-in uses.
          const row = await queries.setPassword(id, hash, now);
          await createSignInThrottleQueries(tx).delete(accountThrottleKey(id));
          return row;
        },
      );
    },

    /** The address is proved (a mailed link or code): verified, and no longer waiting to sign in. */
    async verifyEmail(
      tx: Queryable,
      tenantId: string,
      id: string,
      actor: string,
      method: 'link' | 'code',
    ): Promise<User> {
      if (!isUuid(id)) throw notFound(id);
      const keyring = await deps.tenantKeys.forTenant(tx, tenantId);
      const row = await createUsersQueries(tx).markEmailVerified(id, deps.clock.now());
      if (!row) throw notFound(id);
      await audit(tx, keyring, actor, 'user.email_verified', id, { method });
      return openUser(keyring, row);
    },

    async disable(tx: Queryable, tenantId: string, id: string, actor: string): Promise<User> {
      return change(tx, tenantId, id, actor, 'user.disabled', (q, now) => q.setStatus(id, 'disabled', now));
    },

    async enable(tx: Queryable, tenantId: string, id: string, actor: string): Promise<User> {
      return change(tx, tenantId, id, actor, 'user.enabled', (q, now) => q.setStatus(id, 'active', now));
    },

    /** Lifts a sign-in lock and clears the account's failure counters. */
    async unlock(tx: Queryable, tenantId: string, id: string, actor: string): Promise<User> {
      return change(tx, tenantId, id, actor, 'user.unlocked', async (queries, now) => {
        const row = await queries.unlock(id, now);
        await createSignInThrottleQueries(tx).delete(accountThrottleKey(id));
        return row;
      });
    },

    /** Deletes the user and their sealed data; the audit log keeps the id only. */
    async delete(tx: Queryable, tenantId: string, id: string, actor: string): Promise<void> {
      if (!isUuid(id)) throw notFound(id);
      const keyring = await deps.tenantKeys.forTenant(tx, tenantId);
      if (!(await createUsersQueries(tx).delete(id))) throw notFound(id);
      await createSignInThrottleQueries(tx).delete(accountThrottleKey(id));
      await audit(tx, keyring, actor, 'user.deleted', id);
    },
  };
}

export type Users = ReturnType<typeof createUsers>;
