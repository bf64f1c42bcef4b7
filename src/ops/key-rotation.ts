// Online, resumable key rotation and crypto-shredding. Root rotation re-wraps a tenant's data keys
// under a new root key version; data-key rotation re-encrypts sealed values in small batches while
// requests go on (reads accept every live version). Progress is kept in key_rotations.
import { appendAudit } from '../audit/audit-log.js';
import { isOrthIdError, OrthIdError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { Queryable } from '../core/sql.js';
import type { DestroyedKey } from '../crypto/managed-keystore.js';
import { rotateSigningKeys } from '../crypto/signing-keys.js';
import type { TenantKeyring } from '../crypto/tenant-keys.js';
import { DEFAULT_LIFETIMES } from '../oidc/provider-configuration.js';
import { maxTokenSeconds } from '../oidc/providers.js';
import { announceTenantChange } from '../oidc/tenant-changes.js';
import { withTenant } from '../storage/db/database.js';
import { SYSTEM_TENANT_SLUG } from '../tenancy/admin-resource.js';
import type { Tenant } from '../tenancy/tenants.js';
import { createKeyRotationQueries, RESEALABLE, type RotationRow } from './key-rotation.queries.js';
import type { OrthId } from './orthid.js';
import { deleteTenantObjects } from './tenant-objects.js';

/** What key rotation and shredding use of a deployment. */
export type KeyRotationDeps = Pick<OrthId, 'db' | 'clock' | 'keystore' | 'tenants' | 'tenantKeys'>;

/** What a shred uses: key rotation's parts and the object store its objects are deleted from. */
export type ShredDeps = KeyRotationDeps & Pick<OrthId, 'objects'>;

const BATCH = 200;

export interface RotationProgress {
  tenant: string;
  kind: RotationRow['kind'];
  status: RotationRow['status'];
  targetKeyId: string;
  done: number;
  total: number;
  startedAt: string;
  finishedAt: string | null;
}

type Progress = (p: RotationProgress) => void;

function present(row: RotationRow, slug: string): RotationProgress {
  return {
    tenant: slug,
    kind: row.kind,
    status: row.status,
    targetKeyId: row.target_key_id,
    done: row.done,
    total: row.total,
    startedAt: new Date(row.started_at).toISOString(),
    finishedAt: row.finished_at ? new Date(row.finished_at).toISOString() : null,
  };
}

async function audit(
  app: KeyRotationDeps,
  tenant: Tenant,
  action: string,
  actor: string,
  details: Record<string, unknown>,
) {
  await withTenant(app.db, tenant.id, async (tx) =>
    appendAudit(
      tx,
      await app.tenantKeys.forTenant(tx, tenant.id),
      { actor, action, target: `tenant:${tenant.id}`, outcome: 'success', details },
      app.clock,
    ),
  );
}

/**
 * A new root key version for the tenant, then every data and index key re-wrapped under it. A
 * rotation that stopped part-way resumes with the version it started instead of adding another.
 */
export async function rotateRootKey(app: KeyRotationDeps, tenant: Tenant, actor: string) {
  const custody = await withTenant(app.db, tenant.id, (tx) => app.tenantKeys.custodyOf(tx, tenant.id));
  let rotation = await withTenant(app.db, tenant.id, (tx) =>
    createKeyRotationQueries(tx).running(tenant.id, 'root'),
  );
  if (!rotation) {
    const target = await custody.rotate(tenant.id);
    rotation = await withTenant(app.db, tenant.id, async (tx) => {
      const row = {
        id: newId(),
        tenant_id: tenant.id,
        kind: 'root' as const,
        target_key_id: target,
        total: 0,
        actor,
      };
      await createKeyRotationQueries(tx).insert(row);
      return (await createKeyRotationQueries(tx).running(tenant.id, 'root'))!;
    });
  }
  const rewrapped = await withTenant(app.db, tenant.id, async (tx) => {
    const count = await app.tenantKeys.rewrap(tx, tenant.id);
    await createKeyRotationQueries(tx).progress(rotation.id, count, true);
    await announceTenantChange(tx, tenant.id);
    return count;
  });
  await audit(app, tenant, 'keystore.root_rotated', actor, { rootKeyId: rotation.target_key_id, rewrapped });
  return { tenant: tenant.slug, rootKeyId: rotation.target_key_id, rewrapped };
}

async function totalStale(tx: Queryable, keyId: string): Promise<number> {
  const queries = createKeyRotationQueries(tx);
  let total = 0;
  for (const table of RESEALABLE) total += await queries.countStale(table, keyId);
  return total;
}

/** The tenant's keyring, loaded afresh if the cached one predates the rotation's data key. */
async function activeKeyring(
  app: KeyRotationDeps,
  tx: Queryable,
  tenant: Tenant,
  keyId: string,
): Promise<TenantKeyring> {
  let keyring = await app.tenantKeys.forTenant(tx, tenant.id);
  if (keyring.activeKeyId !== keyId) {
    app.tenantKeys.invalidate(tenant.id);
    keyring = await app.tenantKeys.forTenant(tx, tenant.id);
  }
  if (keyring.activeKeyId !== keyId) {
    throw new OrthIdError(
      'keystore.rotation_superseded',
      `Tenant ${tenant.slug}'s data key ${keyId} is no longer the active one; run the rotation again.`,
    );
  }
  return keyring;
}

/** Re-seals one batch under the active data key; returns how many rows it rewrote. */
async function resealBatch(tx: Queryable, keyring: TenantKeyring, keyId: string): Promise<number> {
  const queries = createKeyRotationQueries(tx);
  let count = 0;
  for (const table of RESEALABLE) {
    for (const row of await queries.stale(table, keyId, BATCH - count)) {
      const rowId = row[table.key]!;
      const values: Record<string, string | null> = {};
      for (const column of table.columns) {
        const sealed = row[column] ?? null;
        values[column] =
          sealed === null || !keyring.isStale(sealed)
            ? sealed
            : keyring.seal(keyring.open(sealed, { table: table.table, column, rowId }), {
                table: table.table,
                column,
                rowId,
              });
      }
      await queries.reseal(table, rowId, values);
      count += 1;
    }
    if (count >= BATCH) break;
  }
  return count;
}

/**
 * A new data key version for the tenant (new writes use it at once, on every replica), then the
 * re-encryption pass; `resume` continues a pass that stopped without starting another version.
 */
export async function rotateDataKey(
  app: KeyRotationDeps,
  tenant: Tenant,
  actor: string,
  onProgress?: Progress,
): Promise<RotationProgress> {
  let rotation = await withTenant(app.db, tenant.id, (tx) =>
    createKeyRotationQueries(tx).running(tenant.id, 'data'),
  );
  if (!rotation) {
    rotation = await withTenant(app.db, tenant.id, async (tx) => {
      const key = await app.tenantKeys.rotateDataKey(tx, tenant.id);
      const queries = createKeyRotationQueries(tx);
      const total = await totalStale(tx, key.id);
      await queries.insert({
        id: newId(),
        tenant_id: tenant.id,
        kind: 'data',
        target_key_id: key.id,
        total,
        actor,
      });
      await announceTenantChange(tx, tenant.id);
      return (await queries.running(tenant.id, 'data'))!;
    });
    await audit(app, tenant, 'keystore.data_key_rotated', actor, { dataKeyId: rotation.target_key_id });
  }
  return reencrypt(app, tenant, rotation, onProgress);
}

async function reencrypt(app: KeyRotationDeps, tenant: Tenant, rotation: RotationRow, onProgress?: Progress) {
  let done = rotation.done;
  for (;;) {
    const rewritten = await withTenant(app.db, tenant.id, async (tx) => {
      // Another replica's cached keyring may still seal with the old version until the change
      // notice reaches it; those values are picked up by a later batch, as the loop ends on zero.
      const keyring = await activeKeyring(app, tx, tenant, rotation.target_key_id);
      const count = await resealBatch(tx, keyring, rotation.target_key_id);
      done += count;
      await createKeyRotationQueries(tx).progress(rotation.id, done, false);
      return count;
    });
    onProgress?.(present({ ...rotation, done, total: Math.max(rotation.total, done) }, tenant.slug));
    if (rewritten === 0) break;
  }
  const retired = await withTenant(app.db, tenant.id, async (tx) => {
    const queries = createKeyRotationQueries(tx);
    const unused = await app.tenantKeys.destroyUnused(tx, tenant.id, await queries.keyIdsInUse());
    await queries.progress(rotation.id, done, true);
    await announceTenantChange(tx, tenant.id);
    return unused;
  });
  const finished = { ...rotation, status: 'done' as const, done, total: Math.max(rotation.total, done) };
  await audit(app, tenant, 'keystore.reencrypted', rotation.actor, {
    dataKeyId: rotation.target_key_id,
    rewritten: done,
    destroyedKeyIds: retired,
  });
  return present(finished, tenant.slug);
}

export interface ShredResult {
  tenant: string;
  tenantId: string;
  destroyedRootKeyIds: string[];
  destroyedAt: string;
  by: string;
  /** Objects of the tenant deleted from the object store by this run (0 when a re-run finds none). */
  objectsDeleted: number;
}

/**
 * Crypto-shreds a tenant: its data keys are erased from the database and its root keys destroyed
 * in their custody, so its sealed fields in this database and in every older backup stay ciphertext
 * for good. The keystore remembers the destroyed ids, so importing an older keystore export here
 * never brings them back. Then the tenant's objects (avatars, logo, data exports, audit archives:
 * see tenant-objects.ts) are deleted from the object store, after the keys' destruction has
 * committed, since a store cannot join the transaction. Re-running finishes a
 * shred that stopped part-way, the deletion of objects included; a backup set keeps its copy of
 * the objects until retention prunes the set.
 */
export async function shredTenant(app: ShredDeps, tenant: Tenant, actor: string): Promise<ShredResult> {
  if (tenant.slug === SYSTEM_TENANT_SLUG) {
    throw new OrthIdError(
      'tenant.protected',
      'The system tenant holds the admin client and cannot be shredded.',
    );
  }
  // The system tenant's log records the shred; without it, nothing is destroyed.
  const system = await app.tenants.get(SYSTEM_TENANT_SLUG).catch(() => {
    throw new OrthIdError(
      'tenant.not_found',
      'The system tenant, whose audit log records every shred, does not exist yet: start OrthID once (orthid start) first. Nothing was destroyed.',
    );
  });
  const custody = await withTenant(app.db, tenant.id, (tx) => app.tenantKeys.custodyOf(tx, tenant.id));
  const roots = (await custody.rootKeys()).filter((k) => k.scope === tenant.id);
  await withTenant(app.db, tenant.id, async (tx) => {
    await app.tenantKeys.destroyAll(tx, tenant.id);
    await app.tenants.markShredded(tx, tenant.id);
    await announceTenantChange(tx, tenant.id);
  });
  for (const root of roots) await custody.destroy(root.id);
  const destroyedAt = app.clock.now().toISOString();
  const tombstones: DestroyedKey[] = roots.map((k) => ({
    id: k.id,
    scope: tenant.id,
    destroyedAt,
    by: actor,
  }));
  await app.keystore.recordDestroyed(tombstones);
  app.tenantKeys.invalidate(tenant.id);
  const destroyedRootKeyIds = roots.map((k) => k.id);
  // The keys' destruction has committed: now the objects, which no key protects. A store that
  // fails part-way leaves the rest for a re-run, and the event below says the deletion is unfinished.
  let objectsDeleted = 0;
  let failure: unknown;
  try {
    await deleteTenantObjects(app.objects, tenant, () => {
      objectsDeleted += 1;
    });
  } catch (error) {
    failure = error;
  }
  await audit(app, system, 'tenant.shredded', actor, {
    tenant: tenant.slug,
    tenantId: tenant.id,
    custody: custody.kind,
    destroyedRootKeyIds,
    objectsDeleted,
    ...(failure === undefined ? {} : { objectsRemaining: true }),
  });
  if (failure !== undefined) {
    throw new OrthIdError(
      'tenant.shred_incomplete',
      `Tenant ${tenant.slug}'s keys are destroyed, but its objects could not all be deleted from the object store (${isOrthIdError(failure) ? failure.code : 'error'}). Once the store is reachable, finish with: orthid tenant shred ${tenant.slug} --confirm ${tenant.slug}`,
      { cause: failure },
    );
  }
  return {
    tenant: tenant.slug,
    tenantId: tenant.id,
    destroyedRootKeyIds,
    destroyedAt,
    by: actor,
    objectsDeleted,
  };
}

/** Progress of the newest root and data key rotation of every tenant. */
export async function rotationStatus(app: KeyRotationDeps): Promise<RotationProgress[]> {
  const progress: RotationProgress[] = [];
  for (const tenant of await app.tenants.list()) {
    progress.push(...(await withTenant(app.db, tenant.id, (tx) => rotationStatusOf(tx, tenant))));
  }
  return progress;
}

/** Progress of the tenant's newest root and data key rotation; `tx` is scoped to the tenant. */
export async function rotationStatusOf(tx: Queryable, tenant: Tenant): Promise<RotationProgress[]> {
  return (await createKeyRotationQueries(tx).latest()).map((row) => present(row, tenant.slug));
}

/**
 * Replaces every live tenant's signing keys older than ORTHID_SIGNING_KEY_ROTATION. An old key
 * stays in JWKS for the longest token lifetime, so no issued token stops verifying.
 */
export async function rotateAgedSigningKeys(
  app: KeyRotationDeps,
  maxAgeMs: number,
): Promise<{ tenant: string; kid: string }[]> {
  const rotated: { tenant: string; kid: string }[] = [];
  for (const tenant of await app.tenants.list()) {
    if (tenant.status !== 'active') continue;
    const kids = await withTenant(app.db, tenant.id, async (tx) => {
      const keyring = await app.tenantKeys.forTenant(tx, tenant.id);
      if (keyring.shredded) return [];
      const newKeys = await rotateSigningKeys(
        tx,
        keyring,
        app.clock.now(),
        maxTokenSeconds(DEFAULT_LIFETIMES),
        maxAgeMs,
      );
      for (const { alg, kid } of newKeys) {
        await appendAudit(
          tx,
          keyring,
          {
            actor: 'system',
            action: 'signing_key.rotated',
            target: `key:${kid}`,
            outcome: 'success',
            details: { reason: 'schedule', alg },
          },
          app.clock,
        );
      }
      if (newKeys.length > 0) await announceTenantChange(tx, tenant.id);
      return newKeys;
    });
    for (const { kid } of kids) rotated.push({ tenant: tenant.slug, kid });
  }
  return rotated;
}

/**
 * Finishes rotations a stopped process left running (a re-encryption pass interrupted by a
 * restart); `orthid start` runs it in the background. Replicas doing it at once is safe: each
 * batch locks its rows and skips those another pass holds.
 */
export async function resumeRotations(app: KeyRotationDeps): Promise<RotationProgress[]> {
  const tenants = new Map((await app.tenants.list()).map((t) => [t.id, t]));
  // Read inside each tenant: key_rotations forces row-level security, which hides every row
  // from a connection that is not a superuser (the least-privilege server login included).
  const running: Pick<RotationRow, 'tenant_id' | 'kind' | 'actor'>[] = [];
  for (const tenant of tenants.values()) {
    if (tenant.status === 'shredded') continue;
    running.push(...(await withTenant(app.db, tenant.id, (tx) => createKeyRotationQueries(tx).allRunning())));
  }
  if (running.length === 0) return [];
  const resumed: RotationProgress[] = [];
  // Root rotations first, so a data key made meanwhile is wrapped by the new root.
  for (const kind of ['root', 'data'] as const) {
    for (const row of running.filter((r) => r.kind === kind)) {
      const tenant = tenants.get(row.tenant_id);
      if (!tenant || tenant.status === 'shredded') continue;
      if (kind === 'root') await rotateRootKey(app, tenant, row.actor);
      else resumed.push(await rotateDataKey(app, tenant, row.actor));
    }
  }
  return resumed;
}
