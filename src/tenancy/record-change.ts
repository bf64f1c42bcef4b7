// Appends the audit event for one RBAC change in the caller's transaction, so a change and its
// record commit or roll back together.
import { appendAudit } from '../audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { Queryable } from '../core/sql.js';
import type { TenantKeys } from '../crypto/tenant-keys.js';

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
}
