// The account pages' own client at each tenant's provider: a first-party confidential client under a
// fixed id whose secret is derived from the tenant's index key, so it is never stored or shown.
import type { Queryable } from '../core/sql.js';
import type { TenantKeyring } from '../crypto/tenant-keys.js';
import { issuerFor } from '../tenancy/tenants.js';
import { BUILT_IN_CLIENT_IDS, type Clients, type NewClient } from './clients.js';

/** The client id of the account pages in every tenant. */
export const ACCOUNT_CLIENT_ID = BUILT_IN_CLIENT_IDS.account;

/** What the account pages ask for: who the user is, their name and address. */
export const ACCOUNT_CLIENT_SCOPE = 'openid profile email';

/** The client's secret: the same on every replica and start, never written anywhere. */
export function accountClientSecret(keyring: TenantKeyring, tenantId: string): string {
  return keyring.index('oidc.account_client_secret', tenantId);
}

/** Where the account pages live for a tenant, e.g. `https://id.example.com/t/acme/account`. */
export function accountBase(publicUrl: string, slug: string): string {
  return `${issuerFor(publicUrl, slug)}/account`;
}

export function accountClientMetadata(publicUrl: string, slug: string): NewClient {
  const base = accountBase(publicUrl, slug);
  return {
    name: 'Account',
    grantTypes: ['authorization_code'],
    redirectUris: [`${base}/callback`],
    postLogoutRedirectUris: [`${base}/signed-out`],
    scope: ACCOUNT_CLIENT_SCOPE,
    firstParty: true,
    requireAuthTime: true,
  };
}

/** Registers the tenant's account client, or re-points it at the current public URL. */
export async function ensureAccountClient(
  deps: { clients: Pick<Clients, 'ensureBuiltIn'>; publicUrl: string },
  tx: Queryable,
  tenant: { id: string; slug: string },
  keyring: TenantKeyring,
  actor: string,
): Promise<'created' | 'updated' | 'unchanged'> {
  return deps.clients.ensureBuiltIn(
    tx,
    tenant.id,
    { clientId: ACCOUNT_CLIENT_ID, secret: accountClientSecret(keyring, tenant.id) },
    accountClientMetadata(deps.publicUrl, tenant.slug),
    actor,
  );
}
