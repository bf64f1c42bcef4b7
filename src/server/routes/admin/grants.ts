// Admin API: effective grants, i.e. what a user (in an organisation) or a client may do on an
// API resource, computed by resolveGrants exactly as token claims are.
import { Type } from '@sinclair/typebox';
import type { Users } from '../../../identity/users.js';
import { resolveGrants } from '../../../tenancy/permissions.js';
import type { Rbac } from '../../../tenancy/rbac.js';
import { type AdminApi, inTenant, type TenantScope } from './context.js';
import { Grants, Params, PROBLEMS, Text, Uuid } from './schemas.js';

const tags = ['grants'];
const Resource = Type.String({
  format: 'uri',
  maxLength: 2000,
  description: 'Resource indicator of the API resource.',
});

/** What the routes use: the database for the tenant's transaction, and their services. */
export interface GrantRoutesDeps extends TenantScope {
  users: Pick<Users, 'get'>;
  clientRoles: Pick<Rbac['clientRoles'], 'requireClient'>;
}

export function registerGrantRoutes(api: AdminApi, deps: GrantRoutesDeps): void {
  api.get(
    '/users/:userId/grants',
    {
      schema: {
        tags,
        summary: "A user's roles and permissions on an API resource",
        description:
          "Within one organisation when organisationId is given, else across all of the user's memberships.",
        params: Params({ userId: Uuid }),
        querystring: Type.Object({ resource: Resource, organisationId: Type.Optional(Uuid) }),
        response: { 200: Grants, ...PROBLEMS },
      },
    },
    (request) =>
      inTenant(deps, request, async (tx, { tenant }) => {
        const { userId } = request.params;
        await deps.users.get(tx, tenant.id, userId);
        const { resource, organisationId } = request.query;
        return resolveGrants(
          tx,
          { kind: 'user', userId, ...(organisationId ? { organisationId } : {}) },
          resource,
        );
      }),
  );

  api.get(
    '/clients/:clientId/grants',
    {
      schema: {
        tags,
        summary: "A client's roles and permissions on an API resource",
        params: Params({ clientId: Text({ minLength: 1, maxLength: 255 }) }),
        querystring: Type.Object({ resource: Resource }),
        response: { 200: Grants, ...PROBLEMS },
      },
    },
    (request) =>
      inTenant(deps, request, async (tx) => {
        const { clientId } = request.params;
        await deps.clientRoles.requireClient(tx, clientId);
        return resolveGrants(tx, { kind: 'client', clientId }, request.query.resource);
      }),
  );
}
