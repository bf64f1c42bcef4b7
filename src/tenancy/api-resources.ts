// API resources of a tenant: audiences named by a resource indicator (an absolute URI without a
// fragment, RFC 8707). Their permissions live in resource-permissions.ts; the admin API's own
// resource cannot be deleted, so a tenant cannot lock its administrators out.
import { OrthIdError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { Queryable } from '../core/sql.js';
import { SIGNING_ALGS, type SigningAlg } from '../crypto/signing-keys.js';
import { adminResourceIndicator } from './admin-resource.js';
import { type ApiResourceRow, createApiResourcesQueries } from './api-resources.queries.js';
import { type Page, type PageRequest, pageOf } from './page.js';
import { type RbacDeps, recordChange } from './record-change.js';

export interface ApiResource {
  id: string;
  indicator: string;
  name: string;
  /** The algorithm its access tokens are signed with; absent: the tenant's default. */
  accessTokenAlg?: SigningAlg;
  createdAt: string;
}

export interface ApiResourcesDeps extends RbacDeps {
  publicUrl: string;
}

function present(row: ApiResourceRow): ApiResource {
  return {
    id: row.id,
    indicator: row.indicator,
    name: row.name,
    ...(row.access_token_alg ? { accessTokenAlg: row.access_token_alg } : {}),
    createdAt: new Date(row.created_at).toISOString(),
  };
}

/** True for an absolute URI without a fragment, as RFC 8707 requires of a resource indicator. */
export function isResourceIndicator(value: string): boolean {
  if (value.includes('#') || /\s/.test(value)) return false;
  try {
    new URL(value);
    return true;
  } catch {
    return false;
  }
}

export function apiResourceNotFound(id: string): OrthIdError {
  return new OrthIdError(
    'api_resource.not_found',
    `No API resource ${id} in this tenant; list them with GET resources.`,
  );
}

export function createApiResources(deps: ApiResourcesDeps) {
  return {
    async create(
      tx: Queryable,
      tenantId: string,
      input: { indicator: string; name: string; accessTokenAlg?: SigningAlg },
      actor: string,
    ): Promise<ApiResource> {
      if (input.accessTokenAlg !== undefined && !SIGNING_ALGS.includes(input.accessTokenAlg)) {
        throw new OrthIdError(
          'request.invalid',
          `accessTokenAlg must be one of ${SIGNING_ALGS.join(', ')}.`,
          {
            details: { fields: [{ path: '/accessTokenAlg', message: 'is not a signing algorithm' }] },
          },
        );
      }
      if (!isResourceIndicator(input.indicator)) {
        throw new OrthIdError(
          'api_resource.indicator_invalid',
          `"${input.indicator}" is not a resource indicator: use an absolute URI without a fragment, e.g. https://api.example.com.`,
          {
            details: {
              fields: [{ path: '/indicator', message: 'must be an absolute URI without a fragment' }],
            },
          },
        );
      }
      const row = await createApiResourcesQueries(tx).insert(tenantId, {
        id: newId(),
        indicator: input.indicator,
        name: input.name,
        access_token_alg: input.accessTokenAlg ?? null,
      });
      if (!row) {
        throw new OrthIdError(
          'api_resource.indicator_taken',
          `An API resource "${input.indicator}" already exists.`,
          {
            details: { fields: [{ path: '/indicator', message: 'is taken' }] },
          },
        );
      }
      await recordChange(deps, tx, tenantId, {
        actor,
        action: 'api_resource.created',
        target: `api_resource:${row.id}`,
        details: {
          indicator: row.indicator,
          name: row.name,
          ...(row.access_token_alg ? { accessTokenAlg: row.access_token_alg } : {}),
        },
      });
      return present(row);
    },

    async get(tx: Queryable, id: string): Promise<ApiResource> {
      const row = await createApiResourcesQueries(tx).byId(id);
      if (!row) throw apiResourceNotFound(id);
      return present(row);
    },

    /** The indicator is the audience tokens already carry, so only the display name changes. */
    async rename(
      tx: Queryable,
      tenantId: string,
      id: string,
      name: string,
      actor: string,
    ): Promise<ApiResource> {
      const queries = createApiResourcesQueries(tx);
      const before = await queries.byId(id);
      if (!before) throw apiResourceNotFound(id);
      if (before.name === name) return present(before);
      const row = (await queries.rename(id, name))!;
      await recordChange(deps, tx, tenantId, {
        actor,
        action: 'api_resource.renamed',
        target: `api_resource:${id}`,
        details: { from: before.name, to: name },
      });
      return present(row);
    },

    async delete(tx: Queryable, tenantId: string, id: string, actor: string): Promise<void> {
      const queries = createApiResourcesQueries(tx);
      const row = await queries.byId(id);
      if (!row) throw apiResourceNotFound(id);
      if (row.indicator === adminResourceIndicator(deps.publicUrl)) {
        throw new OrthIdError(
          'api_resource.protected',
          'The admin API resource cannot be deleted: tokens for the admin API need it. Remove roles from principals instead.',
        );
      }
      await queries.delete(id);
      await recordChange(deps, tx, tenantId, {
        actor,
        action: 'api_resource.deleted',
        target: `api_resource:${id}`,
        details: { indicator: row.indicator },
      });
    },

    async list(tx: Queryable, page: PageRequest): Promise<Page<ApiResource>> {
      const rows = await createApiResourcesQueries(tx).page(page.after, page.limit + 1);
      return pageOf(rows, page.limit, (r) => r.id, present);
    },
  };
}

export type ApiResources = ReturnType<typeof createApiResources>;
