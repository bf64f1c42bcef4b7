// Appends the audit event for one RBAC change in the caller's transaction, so a change and its
// record commit or roll back together, and announces it to every replica when it commits.
import { appendAudit } from '../audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { Queryable } from '../core/sql.js';
import type { TenantKeys } from '../crypto/tenant-keys.js';
import { notify } from '../storage/db/database.js';

/**
 * LISTEN/NOTIFY channel carrying the tenant id of every committed RBAC change (API resources,
 * permissions, roles, organisations, memberships, client roles), so caches of what a token
 * grants are dropped on every replica.
 */
export const RBAC_CHANGES_CHANNEL = 'orthid_rbac_changes';

/** What every RBAC service needs: the tenant's keyring for audit details, and the time. */
export interface RbacDeps {
  tenantKeys: TenantKeys;
  clock: Clock;
}

export interface Change {
  /** Who acted: `user:<id>`, `client:<id>`, `cli`, `system`. */
  actor: string;
  /** Dotted, past tense: `organisation.created`, `role.granted`. */
  action: string;
  /** `kind:id` of what changed. */
  target: string;
  /** Names and ids only; sealed under the tenant's data key like every audit detail. */
  details?: Record<string, unknown>;
}

export async function recordChange(
  deps: RbacDeps,
  tx: Queryable,
  tenantId: string,
  change: Change,
): Promise<void> {
  const keyring = await deps.tenantKeys.forTenant(tx, tenantId);
  await appendAudit(
    tx,
    keyring,
    {
      actor: change.actor,
      action: change.action,
      target: change.target,
      outcome: 'success',
      ...(change.details ? { details: change.details } : {}),
    },
    deps.clock,
  );
  await notify(tx, RBAC_CHANGES_CHANNEL, tenantId);
}
