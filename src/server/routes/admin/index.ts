// The admin API: /api/v1/tenants/:tenant/..., every route behind bearer authentication, each
// resource in its own file, and the OpenAPI document generated from the routes' schemas.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyInstance } from 'fastify';
import { isOrthIdError } from '../../../core/errors.js';
import { type BackupJobs, createBackupJobs } from '../../../ops/backup-jobs.js';
import { runOperation } from '../../../ops/operations.js';
import type { ComposeOrthId, OrthId } from '../../../ops/orthid.js';
import { VERSION } from '../../../version.js';
import { deferredSchemaController } from '../../lazy-schemas.js';
import { createAccessTokenVerifier, registerAdminAuth } from '../../plugins/admin-auth.js';
import { registerAuditEventRoutes } from './audit-events.js';
import { registerAvatarRoutes } from './avatars.js';
import { registerBackupRoutes } from './backups.js';
import { registerBrandingRoutes } from './branding.js';
import { registerClientRoleRoutes } from './client-roles.js';
import { registerClientRoutes } from './clients.js';
import { registerGrantRoutes } from './grants.js';
import { registerInvitationRoutes } from './invitations.js';
import { registerKeyRoutes } from './keys.js';
import { registerMembershipRoutes } from './memberships.js';
import { registerOrganisationRoutes } from './organisations.js';
import { registerPermissionRoutes } from './permissions.js';
import { registerResourceRoutes } from './resources.js';
import { registerRoleRoutes } from './roles.js';
import { registerSessionRoutes } from './sessions.js';
import { registerTenantCollectionRoutes, registerTenantRoutes, type TenantRoutesDeps } from './tenants.js';
import { registerUserExportRoutes } from './user-exports.js';
import { registerUserFactorRoutes } from './user-factors.js';
import { registerUserRoutes } from './users.js';
import { adminValidatorCompiler } from './validation.js';

export const ADMIN_API_PREFIX = '/api/v1/tenants/:tenant';

export interface AdminApiOptions {
  /** The wiring a restore drill composes its restored copy with; without it drills are refused. */
  compose?: ComposeOrthId;
}

export async function registerAdminApi(
  app: FastifyInstance,
  orthid: OrthId,
  options: AdminApiOptions = {},
): Promise<void> {
  const jobs = backupJobs(orthid, options);
  // Jobs left running by a process that died are shown as interrupted from the start on.
  // A database that cannot be reached yet delays this to the next read (leases), never the start.
  app.addHook('onReady', async () => {
    await jobs
      .recover()
      .catch((error: unknown) =>
        orthid.log.warn({ err: error }, 'backup jobs left running were not checked'),
      );
  });
  // A verify or drill under way finishes (and records its outcome) before the server closes.
  app.addHook('onClose', () => jobs.idle());
  await registerAdminRoutes(app, orthid, jobs);
  let document: Promise<unknown> | undefined;
  app.get('/api/openapi.json', { schema: { hide: true } }, async () => {
    // Built once; a build that failed is tried again by the next request.
    document ??= openApiDocument(orthid).catch((error: unknown) => {
      document = undefined;
      throw error;
    });
    return document;
  });
}

/**
 * The OpenAPI document, built on its first request by a second app that never listens: it
 * registers the same routes under @fastify/swagger. Registered on the served app, swagger (and
 * the YAML library it loads) cost ~0.2 s of every start for a document few processes serve.
 */
async function openApiDocument(orthid: OrthId): Promise<unknown> {
  const { default: swagger } = await import('@fastify/swagger');
  const docs = Fastify({ schemaController: deferredSchemaController() });
  await docs.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'OrthID admin API',
        version: VERSION,
        description:
          'Manage a tenant: users (with avatars and data exports), invitations, organisations, memberships, API resources, permissions, roles, client roles, sessions, the audit log and its chain, and keys; and, as an administrator of the system tenant, tenants and backups. Send an access token for the audience <public url>/api carrying the orthid:admin permission.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
      security: [{ bearer: [] }],
    },
    // Only the admin API is documented here; the OIDC endpoints have their own discovery.
    transform: ({ schema, url }) => ({ schema: { ...schema, hide: !url.startsWith('/api/v1/') }, url }),
  });
  await registerAdminRoutes(docs, orthid, backupJobs(orthid, {}));
  await docs.ready();
  const document = docs.swagger();
  await docs.close();
  return document;
}

function backupJobs(orthid: OrthId, options: AdminApiOptions): BackupJobs {
  return createBackupJobs(orthid, {
    ...(options.compose ? { compose: options.compose } : {}),
    recordDrill: async (report, actor) => {
      await runOperation(orthid, 'backup.recordDrill', { report }, { actor });
    },
  });
}

/** The tenant routes' services: the CLI's own operations, with the caller as their audit actor. */
function tenantRoutesDeps(orthid: OrthId): TenantRoutesDeps {
  const { db, clock, keystore, tenants, tenantKeys } = orthid;
  return {
    db,
    clock,
    keystore,
    tenants,
    tenantKeys,
    publicUrl: orthid.config.publicUrl,
    operations: {
      create: (input, actor) => runOperation(orthid, 'tenant.create', input, { actor }),
      configure: (input, actor) => runOperation(orthid, 'tenant.configure', input, { actor }),
      shred: (input, actor) => runOperation(orthid, 'tenant.shred', input, { actor }),
    },
  };
}

async function registerAdminRoutes(app: FastifyInstance, orthid: OrthId, jobs: BackupJobs): Promise<void> {
  const tenantDeps = tenantRoutesDeps(orthid);
  const verifier = createAccessTokenVerifier({
    db: orthid.db,
    tenants: orthid.tenants,
    tenantKeys: orthid.tenantKeys,
    clock: orthid.clock,
    publicUrl: orthid.config.publicUrl,
    clientExists: async (tx, clientId) => (await orthid.clients.metadata(tx, clientId)) !== undefined,
    userActive: (tx, tenantId, userId) =>
      orthid.users.get(tx, tenantId, userId).then(
        (user) => user.status === 'active',
        (error) => {
          if (isOrthIdError(error, 'user.not_found')) return false;
          throw error;
        },
      ),
  });
  await app.register(
    async (scope) => {
      registerAdminAuth(scope, orthid.tenants, verifier);
      scope.setValidatorCompiler(adminValidatorCompiler);
      const api = scope.withTypeProvider<TypeBoxTypeProvider>();
      // Each resource's routes get only the services they use, built here from the wired OrthID.
      const { db, users, rbac, avatars } = orthid;
      registerUserRoutes(
        api,
        {
          db,
          users,
          objects: orthid.objects,
          mfa: orthid.mfa,
          mail: orthid.mail,
          publicUrl: orthid.config.publicUrl,
          clock: orthid.clock,
          signUp: orthid.signUp,
        },
        avatars,
      );
      await registerAvatarRoutes(api, { db }, avatars);
      await registerBrandingRoutes(api, {
        db,
        objects: orthid.objects,
        tenantKeys: orthid.tenantKeys,
        clock: orthid.clock,
        avatars,
      });
      registerUserExportRoutes(api, {
        db,
        objects: orthid.objects,
        tenantKeys: orthid.tenantKeys,
        clock: orthid.clock,
        publicUrl: orthid.config.publicUrl,
        users,
        rbac,
      });
      registerUserFactorRoutes(api, {
        db,
        mfa: orthid.mfa,
        passkeys: orthid.passkeys,
        tenants: orthid.tenants,
        tenantKeys: orthid.tenantKeys,
        clock: orthid.clock,
      });
      registerOrganisationRoutes(api, { db, organisations: rbac.organisations });
      registerMembershipRoutes(api, { db, memberships: rbac.memberships, users });
      registerInvitationRoutes(api, { db, signUp: orthid.signUp, invitations: orthid.invitations });
      registerResourceRoutes(api, { db, resources: rbac.resources });
      registerPermissionRoutes(api, { db, permissions: rbac.permissions });
      registerRoleRoutes(api, { db, roles: rbac.roles });
      registerClientRoutes(api, { db, clients: orthid.clients });
      registerClientRoleRoutes(api, { db, clientRoles: rbac.clientRoles });
      registerGrantRoutes(api, { db, users, clientRoles: rbac.clientRoles });
      registerSessionRoutes(api, { db, sessions: rbac.sessions, users });
      registerAuditEventRoutes(api, { db, tenantKeys: orthid.tenantKeys, objects: orthid.objects });
      registerTenantRoutes(api, tenantDeps);
      registerKeyRoutes(api, orthid);
    },
    { prefix: ADMIN_API_PREFIX },
  );
  // What concerns the deployment rather than one tenant: the system tenant's administrators only.
  await app.register(
    async (scope) => {
      registerAdminAuth(scope, orthid.tenants, verifier);
      scope.setValidatorCompiler(adminValidatorCompiler);
      const api = scope.withTypeProvider<TypeBoxTypeProvider>();
      registerTenantCollectionRoutes(api, tenantDeps);
      registerBackupRoutes(api, jobs);
    },
    { prefix: '/api/v1' },
  );
}
