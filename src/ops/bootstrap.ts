// First start of a deployment: the system tenant (whose administrators manage every tenant), an
// administrator role holding orthid:admin, an admin client whose secret is written once to a 0600
// file, the admin console's client and the backup canary. Every start: the admin API and the
// console follow ORTHID_PUBLIC_URL, and every tenant has its account pages' client (registered,
// or re-pointed at the public URL).
import { rm, writeFile } from 'node:fs/promises';
import { isOrthIdError } from '../core/errors.js';
import type { Queryable } from '../core/sql.js';
import { ensureAccountClient } from '../oidc/account-client.js';
import { createClientsQueries } from '../oidc/clients.queries.js';
import { announceTenantChange } from '../oidc/tenant-changes.js';
import { withTenant } from '../storage/db/database.js';
import {
  ADMIN_PERMISSION,
  adminResourceIndicator,
  ensureAdminResource,
  SYSTEM_TENANT_SLUG,
} from '../tenancy/admin-resource.js';
import { createApiResourcesQueries } from '../tenancy/api-resources.queries.js';
import { recordChange } from '../tenancy/record-change.js';
import { issuerFor } from '../tenancy/tenants.js';
import { type CanaryDeps, createCanary } from './canary.js';
import { repairConsoleClients, setUpConsoleClient } from './console-access.js';
import type { OrthId } from './orthid.js';

/** What bootstrapping uses of a deployment. */
export type BootstrapDeps = CanaryDeps &
  Pick<OrthId, 'db' | 'clock' | 'log' | 'tenants' | 'tenantKeys' | 'rbac' | 'clients'>;

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
export async function bootstrap(app: BootstrapDeps, credentialsFile: string): Promise<BootstrapResult> {
  const issuer = issuerFor(app.config.publicUrl, SYSTEM_TENANT_SLUG);
  const moved = await followPublicUrl(app);
  if (moved.length > 0) {
    app.log.info(
      { tenants: moved.length, from: [...new Set(moved.map((m) => m.from))], to: moved[0]!.to },
      "moved the admin API resource of every tenant to this deployment's public URL",
    );
  }
  let credentials: AdminCredentials | undefined;
  try {
    await app.tenants.create(
      { slug: SYSTEM_TENANT_SLUG, displayName: 'OrthID system', actor: 'system' },
      async (tx, tenant) => {
        credentials = await createAdminClient(app, tx, tenant.id, issuer);
        await setUpConsoleClient(app)(tx, tenant);
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
    if (isOrthIdError(error, 'tenant.slug_taken')) {
      await ensureAccountClients(app);
      await repairConsoleClients(app);
      return { created: false, issuer };
    }
    // A file written before the commit failed (or left by an earlier start) names no client.
    if (credentials) await rm(credentialsFile, { force: true });
    throw error;
  }
  await ensureAccountClients(app);
  return { created: true, issuer, clientId: credentials!.client_id, credentialsFile };
}

/**
 * Gives every tenant the account pages' client, and re-points it when the public URL moved:
 * tenants created before the account pages existed get theirs on the next start. A public URL
 * the provider cannot redirect to (http on a host other than loopback) leaves the pages off.
 */
export async function ensureAccountClients(app: BootstrapDeps): Promise<number> {
  let changed = 0;
  for (const tenant of (await app.tenants.list()).filter((t) => t.status !== 'shredded')) {
    const outcome = await withTenant(app.db, tenant.id, (tx) =>
      registerAccountClient(app, tx, tenant, 'system'),
    );
    if (outcome === 'created' || outcome === 'updated') changed++;
  }
  return changed;
}

/**
 * The account client of one tenant, inside the caller's transaction (a new tenant's). Its
 * metadata is checked before anything is written, so a refused URI leaves the transaction usable.
 */
export async function registerAccountClient(
  app: Pick<OrthId, 'clients' | 'config' | 'tenantKeys' | 'log'>,
  tx: Queryable,
  tenant: { id: string; slug: string },
  actor: string,
): Promise<'created' | 'updated' | 'unchanged' | 'refused'> {
  try {
    return await ensureAccountClient(
      { clients: app.clients, publicUrl: app.config.publicUrl },
      tx,
      tenant,
      await app.tenantKeys.forTenant(tx, tenant.id),
      actor,
    );
  } catch (error) {
    if (!isOrthIdError(error, 'request.invalid')) throw error;
    app.log.warn(
      { tenant: tenant.slug, code: error.code },
      `The account pages are off for this tenant: ${error.message}`,
    );
    return 'refused';
  }
}

/** The administrator role holding orthid:admin, and a client-credentials client holding it. */
async function createAdminClient(
  app: BootstrapDeps,
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

export interface AdminResourceMove {
  tenant: string;
  from: string;
  to: string;
}

/**
 * Re-points each tenant's admin API resource, and the clients allowed to request it, at
 * `<ORTHID_PUBLIC_URL>/api`: admin tokens are issued for that audience, so a deployment restored
 * or moved to another address keeps its admin API. Audited per tenant; idempotent. The system
 * tenant goes last, and a start whose system tenant is current does nothing more (tenants are
 * created at the current address), so a pass cut short is finished by the next start.
 */
export async function followPublicUrl(app: BootstrapDeps): Promise<AdminResourceMove[]> {
  const to = adminResourceIndicator(app.config.publicUrl);
  const tenants = (await app.tenants.list()).filter((t) => t.status !== 'shredded');
  const system = tenants.find((t) => t.slug === SYSTEM_TENANT_SLUG);
  if (!system) return [];
  const current = await withTenant(app.db, system.id, (tx) => createApiResourcesQueries(tx).byIndicator(to));
  if (current) return [];
  const moves: AdminResourceMove[] = [];
  for (const tenant of [...tenants.filter((t) => t !== system), system]) {
    const from = await withTenant(app.db, tenant.id, async (tx) => {
      const resources = createApiResourcesQueries(tx);
      if (await resources.byIndicator(to)) return undefined;
      const [old] = await resources.elsewhereWith(ADMIN_PERMISSION, to);
      if (!old) {
        await ensureAdminResource(tx, tenant.id, app.config.publicUrl);
        return undefined;
      }
      // Another replica starting at the same time may have moved it first.
      if (!(await resources.moveIndicator(old.id, old.indicator, to))) return undefined;
      const clients = await createClientsQueries(tx).replaceResource(old.indicator, to);
      await recordChange({ tenantKeys: app.tenantKeys, clock: app.clock }, tx, tenant.id, {
        actor: 'system',
        action: 'api_resource.moved',
        target: `api_resource:${old.id}`,
        details: { from: old.indicator, to, clients: clients.length },
      });
      await announceTenantChange(tx, tenant.id);
      return old.indicator;
    });
    if (from) moves.push({ tenant: tenant.slug, from, to });
  }
  return moves;
}
