// Tenants: the isolation boundary. Creating one registers it, generates its keys and records
// the event in its own audit log, all in one transaction.
import { appendAudit } from '../audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import { OrthIdError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { Queryable } from '../core/sql.js';
import { ensureSigningKeys, SIGNING_ALGS } from '../crypto/signing-keys.js';
import type { TenantKeys } from '../crypto/tenant-keys.js';
import { type Database, enterTenant, withSystem } from '../storage/db/database.js';
import { ensureAdminResource } from './admin-resource.js';
import { type Page, type PageRequest, pageOf } from './page.js';
import { createTenantsQueries, type TenantRow } from './tenants.queries.js';

export interface Tenant {
  id: string;
  slug: string;
  displayName: string;
  status: 'active' | 'disabled' | 'shredded';
  /** Per-tenant policy, e.g. { signingAlg: 'ES256' }. */
  settings: Record<string, unknown>;
  createdAt: string;
}

export interface TenantsDeps {
  db: Database;
  tenantKeys: TenantKeys;
  clock: Clock;
  publicUrl: string;
}

const SLUG = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

function present(row: TenantRow): Tenant {
  return {
    id: row.id,
    slug: row.slug,
    displayName: row.display_name,
    status: row.status,
    settings: row.settings,
    createdAt: new Date(row.created_at).toISOString(),
  };
}

export function createTenants(deps: TenantsDeps) {
  return {
    /**
     * `keyCustody`: a custody URI whose root keys wrap this tenant's keys (bring your own key).
     * `setUp` runs in the same transaction, entered into the new tenant: the tenant exists only
     * if it succeeds too.
     */
    async create(
      input: {
        slug: string;
        displayName?: string;
        keyCustody?: string;
        actor: string;
      },
      setUp?: (tx: Queryable, tenant: Tenant) => Promise<void>,
    ): Promise<Tenant> {
      if (!SLUG.test(input.slug)) {
        throw new OrthIdError(
          'tenant.slug_invalid',
          `"${input.slug}" is not a valid tenant slug: use 1-63 lowercase letters, digits and dashes, starting and ending with a letter or digit.`,
        );
      }
      return withSystem(deps.db, async (tx) => {
        const row = await createTenantsQueries(tx).insert({
          id: newId(),
          slug: input.slug,
          display_name: input.displayName ?? input.slug,
          ...(input.keyCustody ? { key_custody: input.keyCustody } : {}),
        });
        if (!row) {
          throw new OrthIdError(
            'tenant.slug_taken',
            `A tenant "${input.slug}" already exists; choose another slug.`,
          );
        }
        await enterTenant(tx, row.id);
        await deps.tenantKeys.create(tx, row.id);
        const keyring = await deps.tenantKeys.forTenant(tx, row.id);
        // A key for every algorithm a client may choose, so serving never has to write one.
        await ensureSigningKeys(tx, keyring, SIGNING_ALGS, deps.clock.now());
        await ensureAdminResource(tx, row.id, deps.publicUrl);
        await appendAudit(
          tx,
          keyring,
          { actor: input.actor, action: 'tenant.created', target: `tenant:${row.id}`, outcome: 'success' },
          deps.clock,
        );
        const tenant = present(row);
        await setUp?.(tx, tenant);
        return tenant;
      });
    },

    /** Merges policy settings (e.g. the signing algorithm) inside the caller's transaction. */
    async setSettings(tx: Queryable, tenantId: string, settings: Record<string, unknown>): Promise<void> {
      await createTenantsQueries(tx).mergeSettings(tenantId, settings);
    },

    /** Renames the tenant for people (its slug stays), inside the caller's transaction. */
    async setDisplayName(tx: Queryable, tenantId: string, displayName: string): Promise<void> {
      await createTenantsQueries(tx).setDisplayName(tenantId, displayName);
    },

    /** Marks a tenant crypto-shredded, inside the caller's transaction. */
    async markShredded(tx: Queryable, tenantId: string): Promise<void> {
      await createTenantsQueries(tx).setStatus(tenantId, 'shredded');
    },

    /** Tenants in slug order, a page at a time (the cursor is a slug), of one status when given. */
    async page(request: PageRequest & { status?: Tenant['status'] }): Promise<Page<Tenant>> {
      const rows = await withSystem(deps.db, (tx) =>
        createTenantsQueries(tx).page(request.after, request.status, request.limit + 1),
      );
      return pageOf(rows, request.limit, (r) => r.slug, present);
    },

    async list(): Promise<Tenant[]> {
      return withSystem(deps.db, async (tx) => (await createTenantsQueries(tx).list()).map(present));
    },

    /** The tenant with this slug; `tenant.not_found` says how to list the real ones. */
    async get(slug: string): Promise<Tenant> {
      // A slug no tenant can have (a NUL byte, a path) is not looked up: it is simply not found.
      if (!SLUG.test(slug)) {
        throw new OrthIdError('tenant.not_found', 'No such tenant. List tenants with: orthid tenant list');
      }
      const row = await withSystem(deps.db, (tx) => createTenantsQueries(tx).bySlug(slug));
      if (!row) {
        throw new OrthIdError(
          'tenant.not_found',
          `No tenant "${slug}". List tenants with: orthid tenant list`,
        );
      }
      return present(row);
    },
  };
}

export type Tenants = ReturnType<typeof createTenants>;

/** A tenant's OIDC issuer: one per tenant under the deployment's public URL. */
export function issuerFor(publicUrl: string, slug: string): string {
  return `${publicUrl}/t/${slug}`;
}

/**
 * Where a tenant's media lives in the object store (its users' avatars, its logo). Keyed by the
 * tenant's id, which never changes or repeats; a shred deletes everything under it.
 */
export function tenantMediaPrefix(tenantId: string): string {
  return `media/${tenantId}/`;
}
