// The admin console's OIDC client: public (PKCE, no secret), first-party, allowed the admin API
// resource, redirecting to <public url>/console/callback. One fixed id in each tenant that has it.
import type { Queryable } from '../core/sql.js';
import { adminResourceIndicator } from '../tenancy/admin-resource.js';
import { BUILT_IN_CLIENT_IDS, type Clients } from './clients.js';

/** The console's client id; the single-page app names it in its authorization requests. */
export const CONSOLE_CLIENT_ID = BUILT_IN_CLIENT_IDS.console;

/** Where the console is served, below the public URL. */
export const CONSOLE_PATH = '/console';

export function consoleRedirectUri(publicUrl: string): string {
  return `${publicUrl.replace(/\/+$/, '')}${CONSOLE_PATH}/callback`;
}

/**
 * Registers the console's client in a tenant, or repairs it (a deployment moved to another public
 * URL, an older release without it). Idempotent; audited only when something changed.
 */
export function ensureConsoleClient(
  clients: Pick<Clients, 'ensureBuiltIn'>,
  tx: Queryable,
  tenantId: string,
  publicUrl: string,
  actor = 'system',
): Promise<'created' | 'updated' | 'unchanged'> {
  const consoleUrl = `${publicUrl.replace(/\/+$/, '')}${CONSOLE_PATH}`;
  return clients.ensureBuiltIn(
    tx,
    tenantId,
    { clientId: CONSOLE_CLIENT_ID },
    {
      name: 'OrthID admin console',
      grantTypes: ['authorization_code'],
      redirectUris: [consoleRedirectUri(publicUrl)],
      postLogoutRedirectUris: [`${consoleUrl}/`],
      scope: 'openid',
      resources: [adminResourceIndicator(publicUrl)],
      firstParty: true,
    },
    actor,
  );
}
