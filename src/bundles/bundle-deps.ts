// What the bundle exports need from the wiring (main.ts passes OrthID's services in).
import type { Clock } from '../core/clock.js';
import type { TenantKeys } from '../crypto/tenant-keys.js';
import type { Users } from '../identity/users.js';
import type { Database } from '../storage/db/database.js';
import type { ObjectStore } from '../storage/objects/object-store.js';
import type { Rbac } from '../tenancy/rbac.js';

export interface BundleDeps {
  db: Database;
  objects: ObjectStore;
  tenantKeys: TenantKeys;
  clock: Clock;
  /** The deployment's public URL; a tenant's issuer is derived from it. */
  publicUrl: string;
}

export interface UserExportDeps extends BundleDeps {
  users: Users;
  rbac: Rbac;
}

/** A time as it appears in object keys: ISO 8601 basic format, e.g. `20250131T235959.123Z`. */
export function keyTime(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '');
}
