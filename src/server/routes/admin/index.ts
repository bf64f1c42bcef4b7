// The admin API: /api/v1/tenants/:tenant/..., every route behind bearer authentication, each
// resource in its own file, and the OpenAPI document generated from the routes' schemas.
import swagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { createAvatars } from '../../../identity/avatars.js';
import type { OrthId } from '../../../main.js';
import { VERSION } from '../../../version.js';
import { createAccessTokenVerifier, registerAdminAuth } from '../../plugins/admin-auth.js';
import { registerAuditEventRoutes } from './audit-events.js';
import { registerAvatarRoutes } from './avatars.js';
import { registerClientRoleRoutes } from './client-roles.js';
import { registerClientRoutes } from './clients.js';
import { registerGrantRoutes } from './grants.js';
import { registerMembershipRoutes } from './memberships.js';
import { registerOrganisationRoutes } from './organisations.js';
import { registerPermissionRoutes } from './permissions.js';
import { registerResourceRoutes } from './resources.js';
import { registerRoleRoutes } from './roles.js';
import { registerSessionRoutes } from './sessions.js';
import { registerUserExportRoutes } from './user-exports.js';
import { registerUserRoutes } from './users.js';
import { adminValidatorCompiler } from './validation.js';

export const ADMIN_API_PREFIX = '/api/v1/tenants/:tenant';

export async function registerAdminApi(app: FastifyInstance, orthid: OrthId): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'OrthID admin API',
        version: VERSION,
        description:
          'Manage a tenant: users (with avatars and data exports), organisations, memberships, API resources, permissions, roles, client roles, sessions and the audit log. Send an access token for the audience <public url>/api carrying the orthid:admin permission.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
      security: [{ bearer: [] }],
    },
    // Only the admin API is documented here; the OIDC endpoints have their own discovery.
    transform: ({ schema, url }) => ({ schema: { ...schema, hide: !url.startsWith('/api/v1/') }, url }),
  });

  const verifier = createAccessTokenVerifier({
    db: orthid.db,
    tenants: orthid.tenants,
    tenantKeys: orthid.tenantKeys,
    clock: orthid.clock,
    publicUrl: orthid.config.publicUrl,
  });
  await app.register(
    async (scope) => {
      registerAdminAuth(scope, orthid.tenants, verifier);
      scope.setValidatorCompiler(adminValidatorCompiler);
      const api = scope.withTypeProvider<TypeBoxTypeProvider>();
      const avatars = createAvatars(orthid);
      registerUserRoutes(api, orthid, avatars);
      await registerAvatarRoutes(api, orthid, avatars);
      registerUserExportRoutes(api, orthid);
      registerOrganisationRoutes(api, orthid);
      registerMembershipRoutes(api, orthid);
      registerResourceRoutes(api, orthid);
      registerPermissionRoutes(api, orthid);
      registerRoleRoutes(api, orthid);
      registerClientRoutes(api, orthid);
      registerClientRoleRoutes(api, orthid);
      registerGrantRoutes(api, orthid);
      registerSessionRoutes(api, orthid);
      registerAuditEventRoutes(api, orthid);
    },
    { prefix: ADMIN_API_PREFIX },
  );

  app.get('/api/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
