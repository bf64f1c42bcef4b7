// Users of a tenant: personal fields sealed under the tenant's data key, email unique per tenant
// through the blind index. Every change is audited in the same transaction.
import { appendAudit } from '../audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import { OrthIdError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { Queryable } from '../core/sql.js';
import { normaliseEmail } from '../crypto/blind-index.js';
import type { TenantKeyring, TenantKeys } from '../crypto/tenant-keys.js';
import { createUsersQueries, type UserRow } from './users.queries.js';

export interface User {
  id: string;
  email: string;
  emailVerified: boolean;
  name: string | null;
  phone: string | null;
  status: 'active' | 'disabled';
  createdAt: string;
}

export interface NewUser {
  email: string;
  name?: string;
  phone?: string;
  emailVerified?: boolean;
  passwordHash?: string;
}

const TABLE = 'users';
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export function emailIndex(keyring: TenantKeyring, email: string): string {
  return keyring.index('users.email', normaliseEmail(email));
}

/** Opens a stored user; throws `crypto.decrypt_failed` when a sealed field was moved or altered. */
export function openUser(keyring: TenantKeyring, row: UserRow): User {
  const open = (column: string, value: string | null) =>
    value === null ? null : keyring.open(value, { table: TABLE, column, rowId: row.id });
  return {
    id: row.id,
    email: open('email', row.email)!,
    emailVerified: row.email_verified,
    name: open('name', row.name),
    phone: open('phone', row.phone),
    status: row.status,
    createdAt: new Date(row.created_at).toISOString(),
  };
}

export interface UsersDeps {
  tenantKeys: TenantKeys;
  clock: Clock;
}

export function createUsers(deps: UsersDeps) {
  return {
    /** Creates a user inside a tenant-scoped transaction. */
    async create(tx: Queryable, tenantId: string, input: NewUser, actor: string): Promise<User> {
      const email = normaliseEmail(input.email);
      if (!EMAIL.test(email)) {
        throw new OrthIdError('request.invalid', `"${input.email}" is not an email address.`, {
          details: { field: 'email' },
        });
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
        name: seal('name', input.name),
        phone: seal('phone', input.phone),
        profile: null,
        password_hash: input.passwordHash ?? null,
        status: 'active',
      });
      if (!row) {
        throw new OrthIdError('user.email_taken', 'A user with this email already exists in this tenant.', {
          details: { field: 'email' },
        });
      }
      await appendAudit(
        tx,
        keyring,
        { actor, action: 'user.created', target: `user:${id}`, outcome: 'success' },
        deps.clock,
      );
      return openUser(keyring, row);
    },

    async get(tx: Queryable, tenantId: string, id: string): Promise<User> {
      const row = await createUsersQueries(tx).byId(id);
      if (!row) throw new OrthIdError('user.not_found', `No user ${id} in this tenant.`);
      return openUser(await deps.tenantKeys.forTenant(tx, tenantId), row);
    },

    async findByEmail(tx: Queryable, tenantId: string, email: string): Promise<UserRow | undefined> {
      const keyring = await deps.tenantKeys.forTenant(tx, tenantId);
      return createUsersQueries(tx).byEmailIndex(emailIndex(keyring, email));
    },
  };
}

export type Users = ReturnType<typeof createUsers>;
