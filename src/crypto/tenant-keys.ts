// Per-tenant keyrings: data keys (versioned) and the blind-index key, wrapped by the tenant's root
// key in its custody and cached unwrapped for a bounded time so custody is not called per request.
import { createHmac, hkdfSync, randomBytes } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { isOrthIdError, OrthIdError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { Queryable } from '../core/sql.js';
import { blindIndex } from './blind-index.js';
import type { KeyCustody } from './key-custody.js';
import { type DataKey, openField, parseSealed, sealField } from './sealed-field.js';
import { createTenantKeysQueries, type TenantKeyRow } from './tenant-keys.queries.js';

/** Where a field lives inside the tenant: table, column and row id. */
export interface FieldRef {
  table: string;
  column: string;
  rowId: string;
}

/** What a field of a crypto-shredded tenant reads as: its keys are gone for good. */
export const SHREDDED = '[shredded]';

/** Everything a request needs to seal, open and index one tenant's personal fields. */
export interface TenantKeyring {
  readonly tenantId: string;
  /** Root key ids the tenant's data keys are wrapped by (named in backup manifests). */
  readonly rootKeyIds: string[];
  /** The tenant's keys were destroyed: fields open as SHREDDED, nothing can be sealed or indexed. */
  readonly shredded: boolean;
  /** The data key new values are sealed with. */
  readonly activeKeyId: string | undefined;
  seal(plaintext: string, field: FieldRef): string;
  open(sealed: string, field: FieldRef): string;
  /** Whether a sealed value was sealed with an older data key version than the active one. */
  isStale(sealed: string): boolean;
  index(purpose: string, normalisedValue: string): string;
  /**
   * HMAC-SHA-256 (hex) under the tenant's audit key, which keys the audit chain and its
   * checkpoints. The key is derived from the index key, so it is wrapped by the same root key,
   * never rotates (old links keep verifying) and is gone once the tenant is shredded.
   */
  auditMac(message: string): string;
}

export interface TenantKeys {
  /** Generates and stores the first data and index keys of a new tenant (inside its transaction). */
  create(tx: Queryable, tenantId: string): Promise<void>;
  /** The tenant's keyring; `tx` must be scoped to that tenant. */
  forTenant(tx: Queryable, tenantId: string): Promise<TenantKeyring>;
  /** Adds a data key version that new writes use; older versions keep opening until re-encrypted. */
  rotateDataKey(tx: Queryable, tenantId: string): Promise<{ id: string; version: number }>;
  /** Destroys older data key versions no ciphertext names any more (erasing them); returns their ids. */
  destroyUnused(tx: Queryable, tenantId: string, inUse: ReadonlySet<string>): Promise<string[]>;
  /** Erases every key of the tenant (crypto-shredding); its keyring then reads SHREDDED. */
  destroyAll(tx: Queryable, tenantId: string): Promise<void>;
  /** Re-wraps every key of the tenant not wrapped by its custody's active root key; returns how many. */
  rewrap(tx: Queryable, tenantId: string): Promise<number>;
  /** The custody holding the tenant's root keys (its own under BYOK, else the deployment's). */
  custodyOf(tx: Queryable, tenantId: string): Promise<KeyCustody>;
  invalidate(tenantId?: string): void;
}

export interface TenantKeysDeps {
  /** The custody for a tenant's setting: undefined is the deployment's custody, else a custody URI. */
  custody(uri: string | undefined): Promise<KeyCustody>;
  clock?: Clock;
  /** How long unwrapped keys stay in memory (default 5 minutes). */
  cacheMs?: number;
}

function wrapContext(tenantId: string, row: Pick<TenantKeyRow, 'id' | 'purpose'>): string {
  return `tenant-key|${tenantId}|${row.purpose}|${row.id}`;
}

function shreddedError(tenantId: string): OrthIdError {
  return new OrthIdError(
    'crypto.shredded',
    `Tenant ${tenantId} was crypto-shredded: its keys were destroyed and its personal data cannot be read or written.`,
  );
}

function shreddedKeyring(tenantId: string, rootKeyIds: string[]): TenantKeyring {
  return {
    tenantId,
    rootKeyIds,
    shredded: true,
    activeKeyId: undefined,
    seal: () => {
      throw shreddedError(tenantId);
    },
    open: () => SHREDDED,
    isStale: () => false,
    index: () => {
      throw shreddedError(tenantId);
    },
    auditMac: () => {
      throw shreddedError(tenantId);
    },
  };
}

/** A separate key for the audit chain, so an audit MAC can never equal a blind index. */
function auditKeyFrom(indexKey: Buffer, tenantId: string): Buffer {
  return Buffer.from(hkdfSync('sha256', indexKey, tenantId, 'orthid-audit-chain', 32));
}

function buildKeyring(
  tenantId: string,
  data: DataKey[],
  active: DataKey,
  indexKey: Buffer,
  rootKeyIds: string[],
): TenantKeyring {
  const byId = new Map(data.map((k) => [k.id, k]));
  const auditKey = auditKeyFrom(indexKey, tenantId);
  return {
    tenantId,
    rootKeyIds,
    shredded: false,
    activeKeyId: active.id,
    seal: (plaintext, field) => sealField(active, plaintext, { tenantId, ...field }),
    open(sealed, field) {
      const parsed = parseSealed(sealed);
      const key = byId.get(parsed.keyId);
      if (!key) {
        throw new OrthIdError(
          'crypto.shredded',
          `The data key ${parsed.keyId} for ${field.table}.${field.column} no longer exists (destroyed or from another deployment).`,
        );
      }
      return openField(key, parsed, { tenantId, ...field });
    },
    isStale: (sealed) => parseSealed(sealed).keyId !== active.id,
    index: (purpose, value) => blindIndex(indexKey, purpose, value),
    auditMac: (message) => createHmac('sha256', auditKey).update(message).digest('hex'),
  };
}

export function createTenantKeys(deps: TenantKeysDeps): TenantKeys {
  const clock = deps.clock ?? systemClock;
  const cacheMs = deps.cacheMs ?? 5 * 60_000;
  const cache = new Map<string, { keyring: TenantKeyring; expires: number }>();
  // Bumped on every invalidation, so a load that began before a rotation cannot cache what it read.
  let generation = 0;
  const drop = (tenantId?: string) => {
    generation += 1;
    if (tenantId === undefined) cache.clear();
    else cache.delete(tenantId);
  };

  async function custodyOf(tx: Queryable, tenantId: string): Promise<KeyCustody> {
    return deps.custody(await createTenantKeysQueries(tx).custodyOf(tenantId));
  }

  async function newKey(
    custody: KeyCustody,
    tenantId: string,
    purpose: TenantKeyRow['purpose'],
    version: number,
  ): Promise<TenantKeyRow> {
    const id = newId();
    const wrapped = await custody.wrap(randomBytes(32), wrapContext(tenantId, { id, purpose }), tenantId);
    return {
      id,
      purpose,
      version,
      custody: wrapped.custody,
      root_key_id: wrapped.rootKeyId,
      wrapped: wrapped.wrapped,
      status: 'active',
    };
  }

  const unwrapRow = (custody: KeyCustody, tenantId: string, row: TenantKeyRow) =>
    custody.unwrap(
      { custody: row.custody, rootKeyId: row.root_key_id, wrapped: row.wrapped },
      wrapContext(tenantId, row),
    );

  async function load(tx: Queryable, tenantId: string): Promise<TenantKeyring> {
    const custody = await custodyOf(tx, tenantId);
    const rows = (await createTenantKeysQueries(tx).list()).filter((r) => r.status !== 'destroyed');
    const rootKeyIds = [...new Set(rows.map((r) => r.root_key_id))];
    const dataRows = rows.filter((r) => r.purpose === 'data');
    const indexRow = rows.find((r) => r.purpose === 'index');
    const activeRow = dataRows.filter((r) => r.status === 'active').at(-1);
    if (!indexRow || !activeRow) {
      // Shredding destroys every key row; a tenant left without keys is a shredded tenant.
      if (rows.length === 0) return shreddedKeyring(tenantId, rootKeyIds);
      throw new OrthIdError('keystore.key_not_found', `Tenant ${tenantId} has no active data key.`);
    }
    try {
      const data = await Promise.all(
        dataRows.map(async (r) => ({
          id: r.id,
          version: r.version,
          key: await unwrapRow(custody, tenantId, r),
        })),
      );
      const active = data.find((k) => k.id === activeRow.id)!;
      const indexKey = await unwrapRow(custody, tenantId, indexRow);
      return buildKeyring(tenantId, data, active, indexKey, rootKeyIds);
    } catch (error) {
      // Rows restored from a backup taken before the shred, whose root key no longer exists.
      if (isOrthIdError(error, 'crypto.shredded')) return shreddedKeyring(tenantId, rootKeyIds);
      throw error;
    }
  }

  return {
    custodyOf,
    async create(tx, tenantId) {
      const custody = await custodyOf(tx, tenantId);
      const queries = createTenantKeysQueries(tx);
      await queries.insert(tenantId, await newKey(custody, tenantId, 'data', 1));
      await queries.insert(tenantId, await newKey(custody, tenantId, 'index', 1));
    },
    async forTenant(tx, tenantId) {
      const now = clock.now().getTime();
      const hit = cache.get(tenantId);
      if (hit && hit.expires > now) return hit.keyring;
      const started = generation;
      const keyring = await load(tx, tenantId);
      if (started === generation) cache.set(tenantId, { keyring, expires: now + cacheMs });
      return keyring;
    },
    async rotateDataKey(tx, tenantId) {
      const queries = createTenantKeysQueries(tx);
      const data = (await queries.list()).filter((r) => r.purpose === 'data');
      const version = Math.max(0, ...data.map((r) => r.version)) + 1;
      const row = await newKey(await custodyOf(tx, tenantId), tenantId, 'data', version);
      await queries.setStatus('data', 'active', 'decrypt_only');
      await queries.insert(tenantId, row);
      drop(tenantId);
      return { id: row.id, version };
    },
    async destroyUnused(tx, tenantId, inUse) {
      const queries = createTenantKeysQueries(tx);
      const unused = (await queries.list())
        .filter((r) => r.purpose === 'data' && r.status === 'decrypt_only' && !inUse.has(r.id))
        .map((r) => r.id);
      if (unused.length > 0) {
        await queries.destroy(unused);
        drop(tenantId);
      }
      return unused;
    },
    async destroyAll(tx, tenantId) {
      const queries = createTenantKeysQueries(tx);
      await queries.destroy((await queries.list()).map((r) => r.id));
      drop(tenantId);
    },
    async rewrap(tx, tenantId) {
      const custody = await custodyOf(tx, tenantId);
      const queries = createTenantKeysQueries(tx);
      const active = (await custody.rootKeys()).find((k) => k.scope === tenantId && k.status === 'active');
      let count = 0;
      for (const row of await queries.list()) {
        if (row.status === 'destroyed' || (active && row.root_key_id === active.id)) continue;
        const key = await unwrapRow(custody, tenantId, row);
        await queries.rewrap(row.id, await custody.wrap(key, wrapContext(tenantId, row), tenantId));
        count += 1;
      }
      drop(tenantId);
      return count;
    },
    invalidate: drop,
  };
}
