// Admin API: API resources (audiences named by a resource indicator).
import type { Rbac } from '../../../tenancy/rbac.js';
import { type AdminApi, inTenant, type TenantScope } from './context.js';
import {
  ApiResource,
  ApiResourceInput,
  ApiResourcePatch,
  IdPageQuery,
  NoContent,
  PageOf,
  Params,
  PROBLEMS,
  Uuid,
} from './schemas.js';

const tags = ['resources'];
const ById = Params({ resourceId: Uuid });

/** What the routes use: the database for the tenant's transaction, and their services. */
export interface ResourceRoutesDeps extends TenantScope {
  resources: Rbac['resources'];
}

export function registerResourceRoutes(api: AdminApi, deps: ResourceRoutesDeps): void {
  const resources = deps.resources;

  api.get(
    '/resources',
    {
      schema: {
        tags,
        summary: 'List API resources',
        params: Params({}),
        querystring: IdPageQuery,
        response: { 200: PageOf(ApiResource), ...PROBLEMS },
      },
    },
    (request) => inTenant(deps, request, (tx) => resources.list(tx, request.query)),
  );

  api.post(
    '/resources',
    {
      schema: {
        tags,
        summary: 'Create an API resource',
        params: Params({}),
        body: ApiResourceInput,
        response: { 201: ApiResource, ...PROBLEMS },
      },
    },
    async (request, reply) => {
      const created = await inTenant(deps, request, (tx, { tenant, actor }) =>
        resources.create(tx, tenant.id, request.body, actor),
      );
      return reply.code(201).send(created);
    },
  );

  api.get(
    '/resources/:resourceId',
    {
      schema: {
        tags,
        summary: 'Get an API resource',
        params: ById,
        response: { 200: ApiResource, ...PROBLEMS },
      },
    },
    (request) => inTenant(deps, request, (tx) => resources.get(tx, request.params.resourceId)),
  );

  api.patch(
    '/resources/:resourceId',
    {
      schema: {
        tags,
        summary: 'Rename an API resource (its indicator is fixed)',
        params: ById,
        body: ApiResourcePatch,
        response: { 200: ApiResource, ...PROBLEMS },
      },
    },
    (request) =>
      inTenant(deps, request, (tx, { tenant, actor }) =>
        resources.rename(tx, tenant.id, request.params.resourceId, request.body.name, actor),
      ),
  );

  api.delete(
    '/resources/:resourceId',
    {
      schema: {
        tags,
        summary: 'Delete an API resource and its permissions',
        params: ById,
        response: { 204: NoContent, ...PROBLEMS },
      },
    },
    async (request, reply) => {
      await inTenant(deps, request, (tx, { tenant, actor }) =>
        resources.delete(tx, tenant.id, request.params.resourceId, actor),
      );
      return reply.code(204).send(null);
    },
  );
}
