// Permissions of an API resource: the scope tokens (e.g. `orders:read`) a token for that
// audience may carry. Roles bundle them; resolveGrants (permissions.ts) turns roles into them.
import { OrthIdError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { Queryable } from '../core/sql.js';
import { ADMIN_PERMISSION, adminResourceIndicator } from './admin-resource.js';
import { type ApiResourcesDeps, apiResourceNotFound } from './api-resources.js';
import { createApiResourcesQueries } from './api-resources.queries.js';
import { type Page, type PageRequest, pageOf } from './page.js';
import { recordChange } from './record-change.js';
import { createResourcePermissionsQueries, type PermissionRow } from './resource-permissions.queries.js';

export interface Permission {
  id: string;
  resourceId: string;
  resourceIndicator: string;
  name: string;
  description: string;
}

/** A scope token (RFC 6749 §3.3): printable ASCII without space, quote or backslash. */
export const PERMISSION_NAME = /^[\x21\x23-\x5B\x5D-\x7E]{1,100}$/;

export function presentPermission(row: PermissionRow): Permission {
  return {
    id: row.id,
    resourceId: row.resource_id,
    resourceIndicator: row.resource_indicator,
    name: row.name,
    description: row.description,
  };
}

export function permissionNotFound(id: string): OrthIdError {
  return new OrthIdError('permission.not_found', `No permission ${id} on this API resource.`);
}

export function createResourcePermissions(deps: ApiResourcesDeps) {
  /** The permission, checked to belong to `resourceId`. */
  async function find(tx: Queryable, resourceId: string, id: string): Promise<PermissionRow> {
    const row = await createResourcePermissionsQueries(tx).byId(id);
    if (!row || row.resource_id !== resourceId) throw permissionNotFound(id);
    return row;
  }

  return {
    async create(
      tx: Queryable,
      tenantId: string,
      resourceId: string,
      input: { name: string; description?: string },
      actor: string,
    ): Promise<Permission> {
      if (!PERMISSION_NAME.test(input.name)) {
        throw new OrthIdError(
          'permission.name_invalid',
          `"${input.name}" cannot be a permission: it becomes an OAuth scope, so use printable characters without spaces, quotes or backslashes (e.g. orders:read).`,
          { details: { fields: [{ path: '/name', message: 'must be a scope token' }] } },
        );
      }
      const resource = await createApiResourcesQueries(tx).byId(resourceId);
      if (!resource) throw apiResourceNotFound(resourceId);
      const queries = createResourcePermissionsQueries(tx);
      const id = newId();
      const inserted = await queries.insert(tenantId, {
        id,
        resource_id: resourceId,
        name: input.name,
        description: input.description ?? '',
      });
      if (!inserted) {
        throw new OrthIdError(
          'permission.name_taken',
          `${resource.indicator} already has a permission "${input.name}".`,
          {
            details: { fields: [{ path: '/name', message: 'is taken' }] },
          },
        );
      }
      await recordChange(deps, tx, tenantId, {
        actor,
        action: 'permission.created',
        target: `permission:${id}`,
        details: { resource: resource.indicator, name: input.name },
      });
      return presentPermission((await queries.byId(id))!);
    },

    async get(tx: Queryable, resourceId: string, id: string): Promise<Permission> {
      return presentPermission(await find(tx, resourceId, id));
    },

    async describe(
      tx: Queryable,
      tenantId: string,
      resourceId: string,
      id: string,
      description: string,
      actor: string,
    ): Promise<Permission> {
      const row = await find(tx, resourceId, id);
      if (row.description === description) return presentPermission(row);
      await createResourcePermissionsQueries(tx).setDescription(id, description);
      await recordChange(deps, tx, tenantId, {
        actor,
        action: 'permission.updated',
        target: `permission:${id}`,
        details: { name: row.name },
      });
      return presentPermission({ ...row, description });
    },

    async delete(
      tx: Queryable,
      tenantId: string,
      resourceId: string,
      id: string,
      actor: string,
    ): Promise<void> {
      const row = await find(tx, resourceId, id);
      if (
        row.name === ADMIN_PERMISSION &&
        row.resource_indicator === adminResourceIndicator(deps.publicUrl)
      ) {
        throw new OrthIdError(
          'api_resource.protected',
          `The ${ADMIN_PERMISSION} permission of the admin API cannot be deleted: tokens for the admin API need it.`,
        );
      }
      await createResourcePermissionsQueries(tx).delete(id);
      await recordChange(deps, tx, tenantId, {
        actor,
        action: 'permission.deleted',
        target: `permission:${id}`,
        details: { resource: row.resource_indicator, name: row.name },
      });
    },

    async list(tx: Queryable, resourceId: string, page: PageRequest): Promise<Page<Permission>> {
      if (!(await createApiResourcesQueries(tx).byId(resourceId))) throw apiResourceNotFound(resourceId);
      const rows = await createResourcePermissionsQueries(tx).page(resourceId, page.after, page.limit + 1);
      return pageOf(rows, page.limit, (r) => r.id, presentPermission);
    },
  };
}

export type ResourcePermissions = ReturnType<typeof createResourcePermissions>;
