// Admin API: roles held by machine clients (what their client-credentials tokens may do).
import type { Rbac } from '../../../tenancy/rbac.js';
import { type AdminApi, inTenant, type TenantScope } from './context.js';
import { IdPageQuery, NoContent, PageOf, Params, PROBLEMS, Role, Text, Uuid } from './schemas.js';

const tags = ['client roles'];
const ClientId = Text({
  minLength: 1,
  maxLength: 255,
  description: 'The client_id of an OIDC client.',
});
const OfClient = Params({ clientId: ClientId });
const Grant = Params({ clientId: ClientId, roleId: Uuid });

/** What the routes use: the database for the tenant's transaction, and their services. */
export interface ClientRoleRoutesDeps extends TenantScope {
  clientRoles: Rbac['clientRoles'];
}

export function registerClientRoleRoutes(api: AdminApi, deps: ClientRoleRoutesDeps): void {
  const clientRoles = deps.clientRoles;

  api.get(
    '/clients/:clientId/roles',
    {
      schema: {
        tags,
        summary: "List a client's roles",
        params: OfClient,
        querystring: IdPageQuery,
        response: { 200: PageOf(Role), ...PROBLEMS },
      },
    },
    (request) =>
      inTenant(deps, request, (tx) => clientRoles.list(tx, request.params.clientId, request.query)),
  );

  api.put(
    '/clients/:clientId/roles/:roleId',
    {
      schema: {
        tags,
        summary: 'Grant a role to a client (idempotent)',
        params: Grant,
        response: { 204: NoContent, ...PROBLEMS },
      },
    },
    async (request, reply) => {
      await inTenant(deps, request, (tx, { tenant, actor }) =>
        clientRoles.grant(tx, tenant.id, request.params.clientId, request.params.roleId, actor),
      );
      return reply.code(204).send(null);
    },
  );

  api.delete(
    '/clients/:clientId/roles/:roleId',
    {
      schema: {
        tags,
        summary: 'Revoke a role from a client (idempotent)',
        params: Grant,
        response: { 204: NoContent, ...PROBLEMS },
      },
    },
    async (request, reply) => {
      await inTenant(deps, request, (tx, { tenant, actor }) =>
        clientRoles.revoke(tx, tenant.id, request.params.clientId, request.params.roleId, actor),
      );
      return reply.code(204).send(null);
    },
  );
}
