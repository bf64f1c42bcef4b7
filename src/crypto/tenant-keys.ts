// Per-tenant keyrings: data keys (versioned) and the blind-index key, wrapped by the key custody
// and cached unwrapped in memory for a bounded time so custody is not called on every request.
import { randomBytes } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { OrthIdError } from '../core/errors.js';
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

/** Everything a request needs to seal, open and index one tenant's personal fields. */
export interface TenantKeyring {
  readonly tenantId: string;
  /** Root key ids the tenant's data keys are wrapped by (named in backup manifests). */
  readonly rootKeyIds: string[];
  seal(plaintext: string, field: FieldRef): string;
  open(sealed: string, field: FieldRef): string;
  index(purpose: string, normalisedValue: string): string;
}

export interface TenantKeys {
  /** Generates and stores the first data and index keys of a new tenant (inside its transaction). */
  create(tx: Queryable, tenantId: string): Promise<void>;
  /** The tenant's keyring; `tx` must be scoped to that tenant. */
  forTenant(tx: Queryable, tenantId: string): Promise<TenantKeyring>;
  invalidate(tenantId?: string): void;
}

export interface TenantKeysDeps {
  custody: KeyCustody;
  clock?: Clock;
  /** How long unwrapped keys stay in memory (default 5 minutes). */
  cacheMs?: number;
}

function wrapContext(tenantId: string, row: Pick<TenantKeyRow, 'id' | 'purpose'>): string {
  return `tenant-key|${tenantId}|${row.purpose}|${row.id}`;
}

function buildKeyring(
  tenantId: string,
  data: DataKey[],
  active: DataKey,
  indexKey: Buffer,
  rootKeyIds: string[],
): TenantKeyring {
  const byId = new Map(data.map((k) => [k.id, k]));
  return {
    tenantId,
    rootKeyIds,
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
    index: (purpose, value) => blindIndex(indexKey, purpose, value),
  };
}

export function createTenantKeys(deps: TenantKeysDeps): TenantKeys {
  const clock = deps.clock ?? systemClock;
  const cacheMs = deps.cacheMs ?? 5 * 60_000;
  const cache = new Map<string, { keyring: TenantKeyring; expires: number }>();

  async function newKey(
    tenantId: string,
    purpose: TenantKeyRow['purpose'],
    version: number,
  ): Promise<TenantKeyRow> {
    const id = newId();
    const wrapped = await deps.custody.wrap(randomBytes(32), wrapContext(tenantId, { id, purpose }));
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

  async function load(tx: Queryable, tenantId: string): Promise<TenantKeyring> {
    const rows = (await createTenantKeysQueries(tx).list()).filter((r) => r.status !== 'destroyed');
    const unwrap = (row: TenantKeyRow) =>
      deps.custody.unwrap(
        { custody: row.custody, rootKeyId: row.root_key_id, wrapped: row.wrapped },
        wrapContext(tenantId, row),
      );
    const dataRows = rows.filter((r) => r.purpose === 'data');
    const indexRow = rows.find((r) => r.purpose === 'index');
    const activeRow = dataRows.filter((r) => r.status === 'active').at(-1);
    if (!indexRow || !activeRow) {
      throw new OrthIdError('keystore.key_not_found', `Tenant ${tenantId} has no active data key.`);
    }
    const data = await Promise.all(
      dataRows.map(async (r) => ({ id: r.id, version: r.version, key: await unwrap(r) })),
    );
    const active = data.find((k) => k.id === activeRow.id)!;
    const rootKeyIds = [...new Set(rows.map((r) => r.root_key_id))];
    return buildKeyring(tenantId, data, active, await unwrap(indexRow), rootKeyIds);
  }

  return {
    async create(tx, tenantId) {
      const queries = createTenantKeysQueries(tx);
      await queries.insert(tenantId, await newKey(tenantId, 'data', 1));
      await queries.insert(tenantId, await newKey(tenantId, 'index', 1));
    },
    async forTenant(tx, tenantId) {
      const now = clock.now().getTime();
      const hit = cache.get(tenantId);
      if (hit && hit.expires > now) return hit.keyring;
      const keyring = await load(tx, tenantId);
      cache.set(tenantId, { keyring, expires: now + cacheMs });
      return keyring;
    },
    invalidate(tenantId) {
      if (tenantId === undefined) cache.clear();
      else cache.delete(tenantId);
    },
  };
}
