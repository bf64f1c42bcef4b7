// The one permission check of OrthID: what a user (within an organisation) or a machine client
// may do on one API resource. Token claims and the admin API both build on resolveGrants.
import { isUuid } from '../core/ids.js';
import type { Queryable } from '../core/sql.js';
import { createGrantsQueries, type GrantRow } from './grants.queries.js';

export type GrantSubject =
  /** Without organisationId: the union of the roles granted in all the user's organisations. */
  { kind: 'user'; userId: string; organisationId?: string } | { kind: 'client'; clientId: string };

export interface Grants {
  /** Names of the permissions on the requested resource, sorted and unique. */
  permissions: string[];
  /** Names of the roles behind them (on any resource), sorted and unique. */
  roles: string[];
  /** The organisation the grants were resolved in, when asked for and the user is a member. */
  organisationId?: string;
  /** Organisations whose roles carry any of `permissions` (users only), sorted. */
  organisations?: string[];
}

function sortedUnique(values: Iterable<string>): string[] {
  // Code-unit order, not locale order: token claims must not depend on the server's locale.
  return [...new Set(values)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function collect(rows: GrantRow[]): Pick<Grants, 'permissions' | 'roles' | 'organisations'> {
  const granting = rows.filter((r) => r.permission !== null);
  const organisations = sortedUnique(granting.flatMap((r) => (r.organisation_id ? [r.organisation_id] : [])));
  return {
    permissions: sortedUnique(granting.map((r) => r.permission!)),
    roles: sortedUnique(rows.map((r) => r.role)),
    ...(organisations.length > 0 ? { organisations } : {}),
  };
}

/**
 * Resolves the roles and permissions `subject` holds on the API resource `resourceIndicator`;
 * `tx` is scoped to the tenant. An unknown user, organisation, client or resource grants nothing.
 *
 * @example
 * const grants = await resolveGrants(tx, { kind: 'user', userId, organisationId }, 'https://api.example.com');
 * if (!hasPermission(grants, 'orders:read')) throw new OrthIdError('auth.forbidden', '…');
 */
export async function resolveGrants(
  tx: Queryable,
  subject: GrantSubject,
  resourceIndicator: string,
): Promise<Grants> {
  const queries = createGrantsQueries(tx);
  if (subject.kind === 'client') {
    return collect(await queries.ofClient(subject.clientId, resourceIndicator));
  }
  const { userId, organisationId } = subject;
  // Ids that cannot exist (e.g. an account id from elsewhere) grant nothing rather than fail the cast.
  if (!isUuid(userId) || (organisationId !== undefined && !isUuid(organisationId))) {
    return { permissions: [], roles: [] };
  }
  const grants = collect(await queries.ofUser(userId, organisationId ?? null, resourceIndicator));
  if (organisationId !== undefined && (await queries.isMember(userId, organisationId))) {
    return { ...grants, organisationId };
  }
  return grants;
}

/** Whether the resolved grants include permission `name`. */
export function hasPermission(grants: Pick<Grants, 'permissions'>, name: string): boolean {
  return grants.permissions.includes(name);
}
