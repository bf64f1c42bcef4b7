// Wires the RBAC services of src/tenancy for composeOrthId: organisations, memberships, API
// resources and their permissions, roles, client roles and user sessions.
import { createApiResources } from './api-resources.js';
import { createClientRoles } from './client-roles.js';
import { createMemberships } from './memberships.js';
import { createOrganisations } from './organisations.js';
import type { RbacDeps } from './record-change.js';
import { createResourcePermissions } from './resource-permissions.js';
import { createRoles } from './roles.js';
import { createUserSessions } from './user-sessions.js';

export function createRbac(deps: RbacDeps & { publicUrl: string }) {
  return {
    organisations: createOrganisations(deps),
    memberships: createMemberships(deps),
    resources: createApiResources(deps),
    permissions: createResourcePermissions(deps),
    roles: createRoles(deps),
    clientRoles: createClientRoles(deps),
    sessions: createUserSessions(deps),
  };
}

export type Rbac = ReturnType<typeof createRbac>;
