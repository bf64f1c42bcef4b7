// Admin API: roles (tenant-wide bundles of permissions) and the permissions each carries.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Queryable } from '../../../core/sql.js';
import type { Rbac } from '../../../tenancy/rbac.js';
import type { AdminRequestContext } from '../../plugins/admin-auth.js';
import { type AdminApi, inTenant, type TenantScope } from './context.js';
import { IfMatchHeader, requireIfMatch, sendVersion } from './preconditions.js';
import {
  IdPageQuery,
  NoContent,
  PageOf,
  Params,
  Permission,
  PROBLEMS,
  Role,
  RoleInput,
  RolePatch,
  Uuid,
} from './schemas.js';

const tags = ['roles'];
const ById = Params({ roleId: Uuid });
const RolePermission = Params({ roleId: Uuid, permissionId: Uuid });

/** What the routes use: the database for the tenant's transaction, and their services. */
export interface RoleRoutesDeps extends TenantScope {
  roles: Rbac['roles'];
}

export function registerRoleRoutes(api: AdminApi, deps: RoleRoutesDeps): void {
  const roles = deps.roles;

  api.get(
    '/roles',
    {
      schema: {
        tags,
        summary: 'List roles',
        params: Params({}),
        querystring: IdPageQuery,
        response: { 200: PageOf(Role), ...PROBLEMS },
      },
    },
    (request) => inTenant(deps, request, (tx) => roles.list(tx, request.query)),
  );

  api.post(
    '/roles',
    {
      schema: {
        tags,
        summary: 'Create a role',
        params: Params({}),
        body: RoleInput,
        response: { 201: Role, ...PROBLEMS },
      },
    },
    async (request, reply) => {
      const created = await inTenant(deps, request, (tx, { tenant, actor }) =>
        roles.create(tx, tenant.id, request.body, actor),
      );
      return reply.code(201).send(created);
    },
  );

  api.get(
    '/roles/:roleId',
    {
      schema: {
        tags,
        summary: 'Get a role; its ETag header is the version to send as If-Match when changing it',
        params: ById,
        response: { 200: Role, ...PROBLEMS },
      },
    },
    (request, reply) =>
      inTenant(deps, request, async (tx) => {
        const role = await roles.get(tx, request.params.roleId);
        sendVersion(reply, await roles.version(tx, role.id));
        return role;
      }),
  );

  /**
   * Runs one change of a role against the version its If-Match names, the role row locked from
   * the check to the commit, and answers with the new version's ETag.
   */
  function changeRole<T>(
    request: FastifyRequest & { params: { roleId: string } },
    reply: FastifyReply,
    apply: (tx: Queryable, context: AdminRequestContext) => Promise<T>,
  ): Promise<T> {
    return inTenant(deps, request, async (tx, context) => {
      const roleId = request.params.roleId;
      requireIfMatch(request, await roles.version(tx, roleId, { lock: true }), 'role');
      const result = await apply(tx, context);
      sendVersion(reply, await roles.version(tx, roleId));
      return result;
    });
  }

  api.patch(
    '/roles/:roleId',
    {
      schema: {
        tags,
        summary: "Change a role's name or description (If-Match required)",
        params: ById,
        headers: IfMatchHeader,
        body: RolePatch,
        response: { 200: Role, ...PROBLEMS },
      },
    },
    (request, reply) =>
      changeRole(request, reply, (tx, { tenant, actor }) =>
        roles.update(tx, tenant.id, request.params.roleId, request.body, actor),
      ),
  );

  api.delete(
    '/roles/:roleId',
    {
      schema: {
        tags,
        summary: 'Delete a role (and every grant of it)',
        params: ById,
        response: { 204: NoContent, ...PROBLEMS },
      },
    },
    async (request, reply) => {
      await inTenant(deps, request, (tx, { tenant, actor }) =>
        roles.delete(tx, tenant.id, request.params.roleId, actor),
      );
      return reply.code(204).send(null);
    },
  );

  api.get(
    '/roles/:roleId/permissions',
    {
      schema: {
        tags,
        summary: "List a role's permissions",
        params: ById,
        querystring: IdPageQuery,
        response: { 200: PageOf(Permission), ...PROBLEMS },
      },
    },
    (request) =>
      inTenant(deps, request, (tx) => roles.listPermissions(tx, request.params.roleId, request.query)),
  );

  api.put(
    '/roles/:roleId/permissions/:permissionId',
    {
      schema: {
        tags,
        summary: 'Add a permission to a role (idempotent; If-Match required)',
        params: RolePermission,
        headers: IfMatchHeader,
        response: { 204: NoContent, ...PROBLEMS },
      },
    },
    async (request, reply) => {
      await changeRole(request, reply, (tx, { tenant, actor }) =>
        roles.addPermission(tx, tenant.id, request.params.roleId, request.params.permissionId, actor),
      );
      return reply.code(204).send(null);
    },
  );

  api.delete(
    '/roles/:roleId/permissions/:permissionId',
    {
      schema: {
        tags,
        summary: 'Remove a permission from a role (idempotent; If-Match required)',
        params: RolePermission,
        headers: IfMatchHeader,
        response: { 204: NoContent, ...PROBLEMS },
      },
    },
    async (request, reply) => {
      await changeRole(request, reply, (tx, { tenant, actor }) =>
        roles.removePermission(tx, tenant.id, request.params.roleId, request.params.permissionId, actor),
      );
      return reply.code(204).send(null);
    },
  );
}
