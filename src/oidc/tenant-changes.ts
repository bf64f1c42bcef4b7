// Announces that a tenant's clients or keys changed, so every replica drops its cached provider.
// Delivered by LISTEN/NOTIFY when the announcing transaction commits.
import type { Queryable } from '../core/sql.js';
import { notify } from '../storage/db/database.js';

export const TENANT_CHANGES_CHANNEL = 'orthid_tenant_changes';

export function announceTenantChange(tx: Queryable, tenantId: string): Promise<void> {
  return notify(tx, TENANT_CHANGES_CHANNEL, tenantId);
}
