// Admin API: permissions of an API resource (the scopes its tokens may carry).
import type { Rbac } from '../../../tenancy/rbac.js';
import { type AdminApi, inTenant, type TenantScope } from './context.js';
import {
  IdPageQuery,
  NoContent,
  PageOf,
  Params,
  Permission,
  PermissionInput,
  PermissionPatch,
  PROBLEMS,
  Uuid,
} from './schemas.js';

const tags = ['permissions'];
const OfResource = Params({ resourceId: Uuid });
const ById = Params({ resourceId: Uuid, permissionId: Uuid });

/** What the routes use: the database for the tenant's transaction, and their services. */
export interface PermissionRoutesDeps extends TenantScope {
  permissions: Rbac['permissions'];
}

export function registerPermissionRoutes(api: AdminApi, deps: PermissionRoutesDeps): void {
  const permissions = deps.permissions;

  api.get(
    '/resources/:resourceId/permissions',
    {
      schema: {
        tags,
        summary: "List an API resource's permissions",
        params: OfResource,
        querystring: IdPageQuery,
        response: { 200: PageOf(Permission), ...PROBLEMS },
      },
    },
    (request) =>
      inTenant(deps, request, (tx) => permissions.list(tx, request.params.resourceId, request.query)),
  );

  api.post(
    '/resources/:resourceId/permissions',
    {
      schema: {
        tags,
        summary: 'Create a permission on an API resource',
        params: OfResource,
        body: PermissionInput,
        response: { 201: Permission, ...PROBLEMS },
      },
    },
    async (request, reply) => {
      const created = await inTenant(deps, request, (tx, { tenant, actor }) =>
        permissions.create(tx, tenant.id, request.params.resourceId, request.body, actor),
      );
      return reply.code(201).send(created);
    },
  );

  api.get(
    '/resources/:resourceId/permissions/:permissionId',
    {
      schema: { tags, summary: 'Get a permission', params: ById, response: { 200: Permission, ...PROBLEMS } },
    },
    (request) =>
      inTenant(deps, request, (tx) =>
        permissions.get(tx, request.params.resourceId, request.params.permissionId),
      ),
  );

  api.patch(
    '/resources/:resourceId/permissions/:permissionId',
    {
      schema: {
        tags,
        summary: "Change a permission's description (its name is what tokens carry)",
        params: ById,
        body: PermissionPatch,
        response: { 200: Permission, ...PROBLEMS },
      },
    },
    (request) =>
      inTenant(deps, request, (tx, { tenant, actor }) =>
        permissions.describe(
          tx,
          tenant.id,
          request.params.resourceId,
          request.params.permissionId,
          request.body.description,
          actor,
        ),
      ),
  );

  api.delete(
    '/resources/:resourceId/permissions/:permissionId',
    {
      schema: {
        tags,
        summary: 'Delete a permission (and remove it from every role)',
        params: ById,
        response: { 204: NoContent, ...PROBLEMS },
      },
    },
    async (request, reply) => {
      await inTenant(deps, request, (tx, { tenant, actor }) =>
        permissions.delete(tx, tenant.id, request.params.resourceId, request.params.permissionId, actor),
      );
      return reply.code(204).send(null);
    },
  );
}
