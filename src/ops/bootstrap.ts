// First start of a deployment: the system tenant (whose administrators manage every tenant), an
// administrator role holding orthid:admin, an admin client whose secret is written once to a 0600
// file, and the backup canary.
import { rm, writeFile } from 'node:fs/promises';
import { isOrthIdError } from '../core/errors.js';
import type { Queryable } from '../core/sql.js';
import type { OrthId } from '../main.js';
import { ADMIN_PERMISSION, adminResourceIndicator, SYSTEM_TENANT_SLUG } from '../tenancy/admin-resource.js';
import { createApiResourcesQueries } from '../tenancy/api-resources.queries.js';
import { issuerFor } from '../tenancy/tenants.js';
import { createCanary } from './canary.js';

/** Written into the data directory on first start, mode 0600. */
export const ADMIN_CREDENTIALS_FILE = 'admin-credentials.json';

export interface BootstrapResult {
  created: boolean;
  issuer: string;
  /** The admin client and where its credentials were written (only when created). */
  clientId?: string;
  credentialsFile?: string;
}

export interface AdminCredentials {
  issuer: string;
  token_endpoint: string;
  client_id: string;
  client_secret: string;
  resource: string;
  scope: string;
}

/**
 * Creates the system tenant, its admin client and the canary when the deployment has none.
 * Idempotent, and all or nothing: everything commits with the tenant, after the credentials file
 * is written, so a first start that fails or is killed part-way leaves no system tenant and the
 * next start begins again (overwriting the file that start may have left).
 */
export async function bootstrap(app: OrthId, credentialsFile: string): Promise<BootstrapResult> {
  const issuer = issuerFor(app.config.publicUrl, SYSTEM_TENANT_SLUG);
  let credentials: AdminCredentials | undefined;
  try {
    await app.tenants.create(
      { slug: SYSTEM_TENANT_SLUG, displayName: 'OrthID system', actor: 'system' },
      async (tx, tenant) => {
        credentials = await createAdminClient(app, tx, tenant.id, issuer);
        await createCanary(app, tx, tenant.id, SYSTEM_TENANT_SLUG);
        await rm(credentialsFile, { force: true });
        await writeFile(credentialsFile, `${JSON.stringify(credentials, null, 2)}\n`, {
          mode: 0o600,
          flag: 'wx',
        });
      },
    );
  } catch (error) {
    // Another replica (or an earlier start) bootstrapped already.
    if (isOrthIdError(error, 'tenant.slug_taken')) return { created: false, issuer };
    // A file written before the commit failed (or left by an earlier start) names no client.
    if (credentials) await rm(credentialsFile, { force: true });
    throw error;
  }
  return { created: true, issuer, clientId: credentials!.client_id, credentialsFile };
}

/** The administrator role holding orthid:admin, and a client-credentials client holding it. */
async function createAdminClient(
  app: OrthId,
  tx: Queryable,
  tenantId: string,
  issuer: string,
): Promise<AdminCredentials> {
  const resource = adminResourceIndicator(app.config.publicUrl);
  const api = (await createApiResourcesQueries(tx).byIndicator(resource))!;
  const permission = (await app.rbac.permissions.list(tx, api.id, { limit: 200 })).items.find(
    (p) => p.name === ADMIN_PERMISSION,
  )!;
  const role = await app.rbac.roles.create(
    tx,
    tenantId,
    { name: 'administrator', description: 'Manages every tenant through the admin API.' },
    'system',
  );
  await app.rbac.roles.addPermission(tx, tenantId, role.id, permission.id, 'system');
  const client = await app.clients.create(
    tx,
    tenantId,
    { name: 'OrthID admin', grantTypes: ['client_credentials'], resources: [resource] },
    'system',
  );
  await app.rbac.clientRoles.grant(tx, tenantId, client.clientId, role.id, 'system');
  return {
    issuer,
    token_endpoint: `${issuer}/token`,
    client_id: client.clientId,
    client_secret: client.clientSecret!,
    resource,
    scope: ADMIN_PERMISSION,
  };
}
