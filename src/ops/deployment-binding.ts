// Audits the deployment binding: the first start after migrate recorded the keystore's deployment
// id in the database (new, or upgraded from before the binding) appends `deployment.bound` to the
// system tenant's log. Migrate itself has no tenant keys to audit with; the server has.

import { createAuditQueries } from '../audit/audit.queries.js';
import { appendAudit } from '../audit/audit-log.js';
import { isOrthIdError } from '../core/errors.js';
import { withTenant } from '../storage/db/database.js';
import { recordedDeployment } from '../storage/db/deployment.queries.js';
import { SYSTEM_TENANT_SLUG } from '../tenancy/admin-resource.js';
import { hasAuditEvent } from './deployment-binding.queries.js';
import type { OrthId } from './orthid.js';

export const DEPLOYMENT_BOUND = 'deployment.bound';

/**
 * Appends `deployment.bound` (target `deployment:<id>`, with when it was recorded) to the system
 * tenant's log unless it holds one: once per deployment, also when several replicas start at once
 * (the chain's lock serialises them). Returns whether this call appended it.
 */
export async function auditDeploymentBinding(
  app: Pick<OrthId, 'db' | 'tenants' | 'tenantKeys' | 'clock'>,
): Promise<boolean> {
  const system = await app.tenants.get(SYSTEM_TENANT_SLUG).catch((error: unknown) => {
    if (isOrthIdError(error, 'tenant.not_found')) return undefined;
    throw error;
  });
  if (!system || system.status === 'shredded') return false;
  return withTenant(app.db, system.id, async (tx) => {
    const binding = await recordedDeployment(tx);
    if (!binding) return false;
    const target = `deployment:${binding.id}`;
    await createAuditQueries(tx).lockChain(system.id);
    if (await hasAuditEvent(tx, DEPLOYMENT_BOUND, target)) return false;
    await appendAudit(
      tx,
      await app.tenantKeys.forTenant(tx, system.id),
      {
        actor: 'system',
        action: DEPLOYMENT_BOUND,
        target,
        outcome: 'success',
        details: { deploymentId: binding.id, recordedAt: binding.recordedAt.toISOString() },
      },
      app.clock,
    );
    return true;
  });
}
