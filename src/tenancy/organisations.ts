// Organisations of a tenant: created, renamed, listed and deleted (with their memberships).
// Every change is audited in the same transaction; `tx` is always scoped to the tenant.
import { OrthIdError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { Queryable } from '../core/sql.js';
import {
  createOrganisationsQueries,
  type OrganisationRow,
  type OrganisationSort,
} from './organisations.queries.js';
import {
  decodeCursor,
  encodeCursor,
  invalidCursor,
  type Page,
  type PageRequest,
  pageOf,
  UUID_TEXT,
} from './page.js';

export { ORGANISATION_SORTS, type OrganisationSort } from './organisations.queries.js';

import { type RbacDeps, recordChange } from './record-change.js';

export interface Organisation {
  id: string;
  name: string;
  createdAt: string;
}

function present(row: OrganisationRow): Organisation {
  return { id: row.id, name: row.name, createdAt: new Date(row.created_at).toISOString() };
}

function nameTaken(name: string): OrthIdError {
  return new OrthIdError(
    'organisation.name_taken',
    `An organisation named "${name}" already exists; choose another name.`,
    {
      details: { fields: [{ path: '/name', message: 'is taken' }] },
    },
  );
}

export function organisationNotFound(id: string): OrthIdError {
  return new OrthIdError(
    'organisation.not_found',
    `No organisation ${id} in this tenant; list them with GET organisations.`,
  );
}

export function createOrganisations(deps: RbacDeps) {
  return {
    async create(
      tx: Queryable,
      tenantId: string,
      input: { name: string },
      actor: string,
    ): Promise<Organisation> {
      const row = await createOrganisationsQueries(tx).insert(tenantId, newId(), input.name);
      if (!row) throw nameTaken(input.name);
      await recordChange(deps, tx, tenantId, {
        actor,
        action: 'organisation.created',
        target: `organisation:${row.id}`,
        details: { name: row.name },
      });
      return present(row);
    },

    async get(tx: Queryable, id: string): Promise<Organisation> {
      const row = await createOrganisationsQueries(tx).byId(id);
      if (!row) throw organisationNotFound(id);
      return present(row);
    },

    async rename(
      tx: Queryable,
      tenantId: string,
      id: string,
      name: string,
      actor: string,
    ): Promise<Organisation> {
      const queries = createOrganisationsQueries(tx);
      const before = await queries.byId(id);
      if (!before) throw organisationNotFound(id);
      if (before.name === name) return present(before);
      const clash = await queries.byName(name);
      if (clash) throw nameTaken(name);
      const row = (await queries.rename(id, name))!;
      await recordChange(deps, tx, tenantId, {
        actor,
        action: 'organisation.renamed',
        target: `organisation:${id}`,
        details: { from: before.name, to: name },
      });
      return present(row);
    },

    async delete(tx: Queryable, tenantId: string, id: string, actor: string): Promise<void> {
      const queries = createOrganisationsQueries(tx);
      const row = await queries.byId(id);
      if (!row) throw organisationNotFound(id);
      await queries.delete(id);
      await recordChange(deps, tx, tenantId, {
        actor,
        action: 'organisation.deleted',
        target: `organisation:${id}`,
        details: { name: row.name },
      });
    },

    /**
     * A page in `sort` order (creation by default, whose cursor stays the plain id); another
     * order's cursor names the order and the last row's key.
     */
    async list(tx: Queryable, page: PageRequest & { sort?: OrganisationSort }): Promise<Page<Organisation>> {
      const sort = page.sort ?? 'created';
      const byName = sort.endsWith('name');
      const key = (r: OrganisationRow) => (byName ? [r.name, r.id] : [r.id]);
      let after: string[] | undefined;
      if (page.after !== undefined) {
        // A malformed id would reach PostgreSQL as a bad uuid: refused here instead.
        const validId = (id: string | undefined) => UUID_TEXT.test(id ?? '');
        if (sort === 'created') {
          if (!validId(page.after)) throw invalidCursor(sort);
          after = [page.after];
        } else {
          after = decodeCursor(page.after, sort, byName ? 2 : 1, (k) => validId(k.at(-1)));
        }
      }
      const rows = await createOrganisationsQueries(tx).page(sort, after, page.limit + 1);
      return pageOf(
        rows,
        page.limit,
        (r) => (sort === 'created' ? r.id : encodeCursor(sort, key(r))),
        present,
      );
    },
  };
}

export type Organisations = ReturnType<typeof createOrganisations>;
