// The objects the object store keeps for one tenant, and their deletion once the tenant is
// crypto-shredded: images and bundles are not sealed fields, so destroying keys does not reach them.
import { auditArchivePrefix } from '../bundles/audit-archive.js';
import { tenantUserExportsPrefix } from '../bundles/user-export.js';
import { deleteByPrefix } from '../storage/objects/delete-prefix.js';
import type { ObjectStore } from '../storage/objects/object-store.js';
import { type Tenant, tenantMediaPrefix } from '../tenancy/tenants.js';

/**
 * Every prefix under which a tenant's own data lies in clear: its media (avatars, logo), its users'
 * data exports (profiles decrypted) and its audit archives (events decrypted). Its audit
 * checkpoints (`audit-checkpoints/<id>/`) are not among them: they hold a sequence number, a MAC
 * and a time, no personal data, and are what the shredded tenant's chain is still verified against.
 */
export function tenantObjectPrefixes(tenant: Pick<Tenant, 'id' | 'slug'>): string[] {
  return [tenantMediaPrefix(tenant.id), tenantUserExportsPrefix(tenant), auditArchivePrefix(tenant)];
}

/**
 * Deletes every object under the tenant's prefixes; returns how many went. Safe to repeat.
 * `onDeleted` is told of each deletion (how far a run got when the store fails part-way).
 */
export async function deleteTenantObjects(
  objects: ObjectStore,
  tenant: Pick<Tenant, 'id' | 'slug'>,
  onDeleted?: (key: string) => void,
): Promise<number> {
  let deleted = 0;
  for (const prefix of tenantObjectPrefixes(tenant)) {
    deleted += await deleteByPrefix(objects, prefix, onDeleted);
  }
  return deleted;
}
