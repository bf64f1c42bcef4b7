// Setting a tenant's MFA policy, for the CLI (`orthid tenant configure --mfa`) and the admin API:
// organisation and role names resolved to ids, stored in the tenant's settings, audited, and
// announced so every replica's sign-in applies it at once.
import { appendAudit } from '../audit/audit-log.js';
import { checkedMode, type MfaMode, type MfaPolicy } from '../identity/mfa-policy.js';
import { announceTenantChange } from '../oidc/tenant-changes.js';
import { withTenant } from '../storage/db/database.js';
import type { Tenant } from '../tenancy/tenants.js';
import type { OrthId } from './orthid.js';

export interface MfaPolicyChange {
  mode?: string;
  /** Names or ids; an empty list clears the scope (required then means everyone). */
  organisations?: string[];
  roles?: string[];
}

/** Applies `change` over the tenant's current policy; returns the stored policy. */
export async function configureMfaPolicy(
  app: Pick<OrthId, 'db' | 'mfa' | 'tenants' | 'tenantKeys' | 'clock'>,
  tenant: Tenant,
  change: MfaPolicyChange,
  actor: string,
): Promise<MfaPolicy> {
  const current = app.mfa.policyOf(tenant);
  const mode: MfaMode = change.mode === undefined ? current.mode : checkedMode(change.mode);
  return withTenant(app.db, tenant.id, async (tx) => {
    const scope = await app.mfa.resolveScope(tx, {
      organisations: change.organisations ?? [],
      roles: change.roles ?? [],
    });
    const policy: MfaPolicy = {
      mode,
      organisations: change.organisations === undefined ? current.organisations : scope.organisations,
      roles: change.roles === undefined ? current.roles : scope.roles,
    };
    await app.tenants.setSettings(tx, tenant.id, { mfa: policy });
    await appendAudit(
      tx,
      await app.tenantKeys.forTenant(tx, tenant.id),
      {
        actor,
        action: 'tenant.mfa_policy_set',
        target: `tenant:${tenant.id}`,
        outcome: 'success',
        details: { ...policy },
      },
      app.clock,
    );
    await announceTenantChange(tx, tenant.id);
    return policy;
  });
}
