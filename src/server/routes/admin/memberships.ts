// Admin API: memberships (a user in an organisation) and the roles granted within them.
import type { Users } from '../../../identity/users.js';
import type { Rbac } from '../../../tenancy/rbac.js';
import { type AdminApi, inTenant, type TenantScope } from './context.js';
import {
  IdPageQuery,
  Membership,
  MembershipInput,
  NoContent,
  PageOf,
  Params,
  PROBLEMS,
  Role,
  Uuid,
} from './schemas.js';

const tags = ['memberships'];
const ById = Params({ membershipId: Uuid });
const RoleGrant = Params({ membershipId: Uuid, roleId: Uuid });

/** What the routes use: the database for the tenant's transaction, and their services. */
export interface MembershipRoutesDeps extends TenantScope {
  memberships: Rbac['memberships'];
  users: Pick<Users, 'get'>;
}

export function registerMembershipRoutes(api: AdminApi, deps: MembershipRoutesDeps): void {
  const memberships = deps.memberships;

  api.get(
    '/organisations/:organisationId/memberships',
    {
      schema: {
        tags,
        summary: "List an organisation's members",
        params: Params({ organisationId: Uuid }),
        querystring: IdPageQuery,
        response: { 200: PageOf(Membership), ...PROBLEMS },
      },
    },
    (request) =>
      inTenant(deps, request, (tx) =>
        memberships.listInOrganisation(tx, request.params.organisationId, request.query),
      ),
  );

  api.post(
    '/organisations/:organisationId/memberships',
    {
      schema: {
        tags,
        summary: 'Add a user to an organisation',
        params: Params({ organisationId: Uuid }),
        body: MembershipInput,
        response: { 201: Membership, ...PROBLEMS },
      },
    },
    async (request, reply) => {
      const created = await inTenant(deps, request, (tx, { tenant, actor }) =>
        memberships.add(tx, tenant.id, request.params.organisationId, request.body.userId, actor),
      );
      return reply.code(201).send(created);
    },
  );

  api.get(
    '/users/:userId/memberships',
    {
      schema: {
        tags,
        summary: "List a user's memberships",
        params: Params({ userId: Uuid }),
        querystring: IdPageQuery,
        response: { 200: PageOf(Membership), ...PROBLEMS },
      },
    },
    (request) =>
      inTenant(deps, request, async (tx, { tenant }) => {
        await deps.users.get(tx, tenant.id, request.params.userId);
        return memberships.listOfUser(tx, request.params.userId, request.query);
      }),
  );

  api.get(
    '/memberships/:membershipId',
    {
      schema: { tags, summary: 'Get a membership', params: ById, response: { 200: Membership, ...PROBLEMS } },
    },
    (request) => inTenant(deps, request, (tx) => memberships.get(tx, request.params.membershipId)),
  );

  api.delete(
    '/memberships/:membershipId',
    {
      schema: {
        tags,
        summary: 'Remove a user from an organisation (with the roles granted there)',
        params: ById,
        response: { 204: NoContent, ...PROBLEMS },
      },
    },
    async (request, reply) => {
      await inTenant(deps, request, (tx, { tenant, actor }) =>
        memberships.remove(tx, tenant.id, request.params.membershipId, actor),
      );
      return reply.code(204).send(null);
    },
  );

  api.get(
    '/memberships/:membershipId/roles',
    {
      schema: {
        tags,
        summary: 'List the roles granted within a membership',
        params: ById,
        querystring: IdPageQuery,
        response: { 200: PageOf(Role), ...PROBLEMS },
      },
    },
    (request) =>
      inTenant(deps, request, (tx) => memberships.listRoles(tx, request.params.membershipId, request.query)),
  );

  api.put(
    '/memberships/:membershipId/roles/:roleId',
    {
      schema: {
        tags,
        summary: 'Grant a role within the membership (idempotent)',
        params: RoleGrant,
        response: { 204: NoContent, ...PROBLEMS },
      },
    },
    async (request, reply) => {
      await inTenant(deps, request, (tx, { tenant, actor }) =>
        memberships.grantRole(tx, tenant.id, request.params.membershipId, request.params.roleId, actor),
      );
      return reply.code(204).send(null);
    },
  );

  api.delete(
    '/memberships/:membershipId/roles/:roleId',
    {
      schema: {
        tags,
        summary: 'Revoke a role within the membership (idempotent)',
        params: RoleGrant,
        response: { 204: NoContent, ...PROBLEMS },
      },
    },
    async (request, reply) => {
      await inTenant(deps, request, (tx, { tenant, actor }) =>
        memberships.revokeRole(tx, tenant.id, request.params.membershipId, request.params.roleId, actor),
      );
      return reply.code(204).send(null);
    },
  );
}
