// Memberships: a user in an organisation, and the roles granted to that user within it. Removing
// a membership removes its role grants; every change is audited in the same transaction.
import { OrthIdError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { Queryable } from '../core/sql.js';
import { createMembershipsQueries, type MembershipRow } from './memberships.queries.js';
import { organisationNotFound } from './organisations.js';
import { createOrganisationsQueries } from './organisations.queries.js';
import { type Page, type PageRequest, pageOf } from './page.js';
import { type RbacDeps, recordChange } from './record-change.js';
import { findRole, presentRole, type Role } from './roles.js';

export interface Membership {
  id: string;
  organisationId: string;
  userId: string;
  createdAt: string;
}

function present(row: MembershipRow): Membership {
  return {
    id: row.id,
    organisationId: row.organisation_id,
    userId: row.user_id,
    createdAt: new Date(row.created_at).toISOString(),
  };
}

function membershipNotFound(id: string): OrthIdError {
  return new OrthIdError('membership.not_found', `No membership ${id} in this tenant.`);
}

async function findMembership(tx: Queryable, id: string): Promise<MembershipRow> {
  const row = await createMembershipsQueries(tx).byId(id);
  if (!row) throw membershipNotFound(id);
  return row;
}

export function createMemberships(deps: RbacDeps) {
  return {
    async add(
      tx: Queryable,
      tenantId: string,
      organisationId: string,
      userId: string,
      actor: string,
    ): Promise<Membership> {
      const queries = createMembershipsQueries(tx);
      if (!(await createOrganisationsQueries(tx).byId(organisationId)))
        throw organisationNotFound(organisationId);
      if (!(await queries.userExists(userId))) {
        throw new OrthIdError('user.not_found', `No user ${userId} in this tenant.`, {
          details: { fields: [{ path: '/userId', message: 'is not a user of this tenant' }] },
        });
      }
      const row = await queries.insert(tenantId, {
        id: newId(),
        organisation_id: organisationId,
        user_id: userId,
      });
      if (!row) {
        throw new OrthIdError(
          'membership.exists',
          `User ${userId} is already a member of organisation ${organisationId}.`,
        );
      }
      await recordChange(deps, tx, tenantId, {
        actor,
        action: 'membership.added',
        target: `membership:${row.id}`,
        details: { organisationId, userId },
      });
      return present(row);
    },

    async get(tx: Queryable, id: string): Promise<Membership> {
      return present(await findMembership(tx, id));
    },

    async remove(tx: Queryable, tenantId: string, id: string, actor: string): Promise<void> {
      const row = await findMembership(tx, id);
      await createMembershipsQueries(tx).delete(id);
      await recordChange(deps, tx, tenantId, {
        actor,
        action: 'membership.removed',
        target: `membership:${id}`,
        details: { organisationId: row.organisation_id, userId: row.user_id },
      });
    },

    async listInOrganisation(
      tx: Queryable,
      organisationId: string,
      page: PageRequest,
    ): Promise<Page<Membership>> {
      if (!(await createOrganisationsQueries(tx).byId(organisationId)))
        throw organisationNotFound(organisationId);
      const rows = await createMembershipsQueries(tx).pageInOrganisation(
        organisationId,
        page.after,
        page.limit + 1,
      );
      return pageOf(rows, page.limit, (r) => r.id, present);
    },

    async listOfUser(tx: Queryable, userId: string, page: PageRequest): Promise<Page<Membership>> {
      const rows = await createMembershipsQueries(tx).pageOfUser(userId, page.after, page.limit + 1);
      return pageOf(rows, page.limit, (r) => r.id, present);
    },

    /** Grants a role within the membership's organisation; granting it again changes and records nothing. */
    async grantRole(
      tx: Queryable,
      tenantId: string,
      membershipId: string,
      roleId: string,
      actor: string,
    ): Promise<void> {
      const membership = await findMembership(tx, membershipId);
      const role = await findRole(tx, roleId);
      if (!(await createMembershipsQueries(tx).grantRole(tenantId, membershipId, roleId))) return;
      await recordChange(deps, tx, tenantId, {
        actor,
        action: 'membership.role_granted',
        target: `membership:${membershipId}`,
        details: {
          organisationId: membership.organisation_id,
          userId: membership.user_id,
          role: role.name,
          roleId,
        },
      });
    },

    /** Revokes a role; revoking one the member lacks changes and records nothing. */
    async revokeRole(
      tx: Queryable,
      tenantId: string,
      membershipId: string,
      roleId: string,
      actor: string,
    ): Promise<void> {
      const membership = await findMembership(tx, membershipId);
      const role = await findRole(tx, roleId);
      if (!(await createMembershipsQueries(tx).revokeRole(membershipId, roleId))) return;
      await recordChange(deps, tx, tenantId, {
        actor,
        action: 'membership.role_revoked',
        target: `membership:${membershipId}`,
        details: {
          organisationId: membership.organisation_id,
          userId: membership.user_id,
          role: role.name,
          roleId,
        },
      });
    },

    async listRoles(tx: Queryable, membershipId: string, page: PageRequest): Promise<Page<Role>> {
      await findMembership(tx, membershipId);
      const rows = await createMembershipsQueries(tx).rolesPage(membershipId, page.after, page.limit + 1);
      return pageOf(rows, page.limit, (r) => r.id, presentRole);
    },
  };
}

export type Memberships = ReturnType<typeof createMemberships>;
