// The admin API as an API resource of every tenant: its indicator and the one permission that
// lets a token manage a tenant. Bootstrap makes sure each tenant has both.
import { newId } from '../core/ids.js';
import type { Queryable } from '../core/sql.js';
import { createApiResourcesQueries } from './api-resources.queries.js';
import { createResourcePermissionsQueries } from './resource-permissions.queries.js';

/** The permission (scope) an access token needs for the admin API. */
export const ADMIN_PERMISSION = 'orthid:admin';

/** The tenant whose administrators may manage every tenant. */
export const SYSTEM_TENANT_SLUG = 'system';

/** The admin API's resource indicator, and so the audience of tokens for it. */
export function adminResourceIndicator(publicUrl: string): string {
  return `${publicUrl.replace(/\/+$/, '')}/api`;
}

/**
 * Creates the admin API resource and its `orthid:admin` permission when missing; `tx` is scoped
 * to the tenant. Idempotent, so bootstrap may call it on every start.
 */
export async function ensureAdminResource(tx: Queryable, tenantId: string, publicUrl: string): Promise<void> {
  const resources = createApiResourcesQueries(tx);
  const indicator = adminResourceIndicator(publicUrl);
  const resource =
    (await resources.insert(tenantId, {
      id: newId(),
      indicator,
      name: 'OrthID admin API',
      access_token_alg: null,
    })) ?? (await resources.byIndicator(indicator))!;
  await createResourcePermissionsQueries(tx).insert(tenantId, {
    id: newId(),
    resource_id: resource.id,
    name: ADMIN_PERMISSION,
    description: 'Manage this tenant through the admin API.',
  });
}
