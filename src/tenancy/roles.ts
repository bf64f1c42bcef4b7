// Roles: tenant-wide bundles of permissions, granted to members within an organisation
// (memberships.ts) or to machine clients (client-roles.ts). Every change is audited.
import { createHash } from 'node:crypto';
import { OrthIdError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { Queryable } from '../core/sql.js';
import { type Page, type PageRequest, pageOf } from './page.js';
import { type RbacDeps, recordChange } from './record-change.js';
import { type Permission, permissionNotFound, presentPermission } from './resource-permissions.js';
import { createResourcePermissionsQueries } from './resource-permissions.queries.js';
import { createRolesQueries, type RoleRow } from './roles.queries.js';

export interface Role {
  id: string;
  name: string;
  description: string;
}

export function presentRole(row: RoleRow): Role {
  return { id: row.id, name: row.name, description: row.description };
}

export function roleNotFound(id: string): OrthIdError {
  return new OrthIdError('role.not_found', `No role ${id} in this tenant; list them with GET roles.`);
}

function nameTaken(name: string): OrthIdError {
  return new OrthIdError('role.name_taken', `A role named "${name}" already exists; choose another name.`, {
    details: { fields: [{ path: '/name', message: 'is taken' }] },
  });
}

/** The role, or `role.not_found`; `tx` is scoped to the tenant. */
export async function findRole(tx: Queryable, id: string): Promise<RoleRow> {
  const row = await createRolesQueries(tx).byId(id);
  if (!row) throw roleNotFound(id);
  return row;
}

export function createRoles(deps: RbacDeps) {
  return {
    async create(
      tx: Queryable,
      tenantId: string,
      input: { name: string; description?: string },
      actor: string,
    ): Promise<Role> {
      const row = await createRolesQueries(tx).insert(tenantId, {
        id: newId(),
        name: input.name,
        description: input.description ?? '',
      });
      if (!row) throw nameTaken(input.name);
      await recordChange(deps, tx, tenantId, {
        actor,
        action: 'role.created',
        target: `role:${row.id}`,
        details: { name: row.name },
      });
      return presentRole(row);
    },

    async get(tx: Queryable, id: string): Promise<Role> {
      return presentRole(await findRole(tx, id));
    },

    /**
     * The role's version: a strong entity tag over its name, description and permissions, so
     * two operators editing one role can tell the other's change happened. With `lock`, the role
     * row stays locked to the end of the transaction: a change checked against this version
     * cannot interleave with another.
     */
    async version(tx: Queryable, id: string, options: { lock?: boolean } = {}): Promise<string> {
      const queries = createRolesQueries(tx);
      const row = options.lock ? await queries.lockById(id) : await queries.byId(id);
      if (!row) throw roleNotFound(id);
      const permissions = await queries.permissionIds(id);
      const digest = createHash('sha256')
        .update(JSON.stringify([row.id, row.name, row.description, permissions]))
        .digest('base64url');
      return `"${digest.slice(0, 27)}"`;
    },

    async update(
      tx: Queryable,
      tenantId: string,
      id: string,
      input: { name?: string; description?: string },
      actor: string,
    ): Promise<Role> {
      const queries = createRolesQueries(tx);
      const before = await findRole(tx, id);
      const next: RoleRow = {
        id,
        name: input.name ?? before.name,
        description: input.description ?? before.description,
      };
      if (next.name === before.name && next.description === before.description) return presentRole(before);
      if (next.name !== before.name && (await queries.byName(next.name))) throw nameTaken(next.name);
      const row = (await queries.update(next))!;
      await recordChange(deps, tx, tenantId, {
        actor,
        action: 'role.updated',
        target: `role:${id}`,
        details:
          next.name === before.name ? { name: next.name } : { name: next.name, previousName: before.name },
      });
      return presentRole(row);
    },

    async delete(tx: Queryable, tenantId: string, id: string, actor: string): Promise<void> {
      const row = await findRole(tx, id);
      await createRolesQueries(tx).delete(id);
      await recordChange(deps, tx, tenantId, {
        actor,
        action: 'role.deleted',
        target: `role:${id}`,
        details: { name: row.name },
      });
    },

    async list(tx: Queryable, page: PageRequest): Promise<Page<Role>> {
      const rows = await createRolesQueries(tx).page(page.after, page.limit + 1);
      return pageOf(rows, page.limit, (r) => r.id, presentRole);
    },

    /** Adds a permission to the role; adding one it already has changes and records nothing. */
    async addPermission(
      tx: Queryable,
      tenantId: string,
      roleId: string,
      permissionId: string,
      actor: string,
    ): Promise<void> {
      const role = await findRole(tx, roleId);
      const permission = await createResourcePermissionsQueries(tx).byId(permissionId);
      if (!permission) throw permissionNotFound(permissionId);
      if (!(await createRolesQueries(tx).addPermission(tenantId, roleId, permissionId))) return;
      await recordChange(deps, tx, tenantId, {
        actor,
        action: 'role.permission_added',
        target: `role:${roleId}`,
        details: { role: role.name, resource: permission.resource_indicator, permission: permission.name },
      });
    },

    /** Removes a permission from the role; removing one it lacks changes and records nothing. */
    async removePermission(
      tx: Queryable,
      tenantId: string,
      roleId: string,
      permissionId: string,
      actor: string,
    ): Promise<void> {
      const role = await findRole(tx, roleId);
      const permission = await createResourcePermissionsQueries(tx).byId(permissionId);
      if (!permission) throw permissionNotFound(permissionId);
      if (!(await createRolesQueries(tx).removePermission(roleId, permissionId))) return;
      await recordChange(deps, tx, tenantId, {
        actor,
        action: 'role.permission_removed',
        target: `role:${roleId}`,
        details: { role: role.name, resource: permission.resource_indicator, permission: permission.name },
      });
    },

    async listPermissions(tx: Queryable, roleId: string, page: PageRequest): Promise<Page<Permission>> {
      await findRole(tx, roleId);
      const rows = await createRolesQueries(tx).permissionsPage(roleId, page.after, page.limit + 1);
      return pageOf(rows, page.limit, (r) => r.id, presentPermission);
    },
  };
}

export type Roles = ReturnType<typeof createRoles>;
