// What an operator sees of one tenant's keys, read-only: the custody holding its root keys, the
// versions of its data and index keys, its newest rotations and its signing keys with their ages.
import type { Queryable } from '../core/sql.js';
import type { RootKeyInfo } from '../crypto/key-custody.js';
import { describeSigningKeys, type SigningKeyInfo } from '../crypto/signing-keys.js';
import { createTenantKeysQueries, type TenantKeyRow } from '../crypto/tenant-keys.queries.js';
import type { Tenant } from '../tenancy/tenants.js';
import { type KeyRotationDeps, type RotationProgress, rotationStatusOf } from './key-rotation.js';

export interface CustodyInfo {
  kind: string;
  /** Where the root keys live, without secrets (a file path, a PKCS#11 URI without PIN, a key ARN). */
  reference: string;
  /** The tenant brings its own key (a custody of its own), rather than the deployment's. */
  ownCustody: boolean;
  /** The root key versions that belong to this tenant alone (destroyed when it is shredded). */
  rootKeys: RootKeyInfo[];
}

export interface DataKeyInfo {
  id: string;
  purpose: TenantKeyRow['purpose'];
  version: number;
  status: TenantKeyRow['status'];
  custody: string;
  rootKeyId: string;
}

export interface KeyStatus {
  tenant: string;
  shredded: boolean;
  custody: CustodyInfo;
  dataKeys: DataKeyInfo[];
  rotations: RotationProgress[];
  signingKeys: (SigningKeyInfo & { ageSeconds: number })[];
}

/** The custody of the tenant's root keys; `tx` is scoped to the tenant. */
export async function custodyInfo(app: KeyRotationDeps, tx: Queryable, tenant: Tenant): Promise<CustodyInfo> {
  const custody = await app.tenantKeys.custodyOf(tx, tenant.id);
  const own = (await createTenantKeysQueries(tx).custodyOf(tenant.id)) !== undefined;
  const rootKeys = (await custody.rootKeys()).filter((k) => k.scope === tenant.id);
  return { kind: custody.kind, reference: custody.reference, ownCustody: own, rootKeys };
}

/** Everything about the tenant's keys but the keys; `tx` is scoped to the tenant. */
export async function keyStatus(app: KeyRotationDeps, tx: Queryable, tenant: Tenant): Promise<KeyStatus> {
  const now = app.clock.now();
  const rows = await createTenantKeysQueries(tx).list();
  const signing = tenant.status === 'shredded' ? [] : await describeSigningKeys(tx, now);
  return {
    tenant: tenant.slug,
    shredded: tenant.status === 'shredded',
    custody: await custodyInfo(app, tx, tenant),
    dataKeys: rows.map((row) => ({
      id: row.id,
      purpose: row.purpose,
      version: row.version,
      status: row.status,
      custody: row.custody,
      rootKeyId: row.root_key_id,
    })),
    rotations: await rotationStatusOf(tx, tenant),
    signingKeys: signing.map((key) => ({
      ...key,
      ageSeconds: Math.max(0, Math.floor((now.getTime() - Date.parse(key.createdAt)) / 1000)),
    })),
  };
}
