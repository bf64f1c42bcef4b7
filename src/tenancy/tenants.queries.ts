// SQL for the tenant registry. The registry has no tenant_id: the application role reads it to
// resolve a tenant before entering it.
import type { Queryable } from '../core/sql.js';

export interface TenantRow {
  id: string;
  slug: string;
  display_name: string;
  status: 'active' | 'disabled' | 'shredded';
  settings: Record<string, unknown>;
  created_at: Date;
}

const COLUMNS = 'id, slug, display_name, status, settings, created_at';

export function createTenantsQueries(tx: Queryable) {
  return {
    async insert(
      row: Pick<TenantRow, 'id' | 'slug' | 'display_name'> & { key_custody?: string },
    ): Promise<TenantRow | undefined> {
      const { rows } = await tx.query<TenantRow>(
        `INSERT INTO tenants (id, slug, display_name, key_custody) VALUES ($1, $2, $3, $4)
         ON CONFLICT (slug) DO NOTHING RETURNING ${COLUMNS}`,
        [row.id, row.slug, row.display_name, row.key_custody ?? null],
      );
      return rows[0];
    },
    async bySlug(slug: string): Promise<TenantRow | undefined> {
      const { rows } = await tx.query<TenantRow>(`SELECT ${COLUMNS} FROM tenants WHERE slug = $1`, [slug]);
      return rows[0];
    },
    async byId(id: string): Promise<TenantRow | undefined> {
      const { rows } = await tx.query<TenantRow>(`SELECT ${COLUMNS} FROM tenants WHERE id = $1`, [id]);
      return rows[0];
    },
    /** Merges `settings` into the tenant's settings; the tenant registry is readable by the app role. */
    async mergeSettings(id: string, settings: Record<string, unknown>): Promise<void> {
      await tx.query('UPDATE tenants SET settings = settings || $2::jsonb WHERE id = $1', [
        id,
        JSON.stringify(settings),
      ]);
    },
    async setDisplayName(id: string, displayName: string): Promise<void> {
      await tx.query('UPDATE tenants SET display_name = $2 WHERE id = $1', [id, displayName]);
    },
    async setStatus(id: string, status: TenantRow['status']): Promise<void> {
      await tx.query('UPDATE tenants SET status = $2 WHERE id = $1', [id, status]);
    },
    /** A page in slug order after `after`, of one status when given. */
    async page(after: string | undefined, status: TenantRow['status'] | undefined, limit: number) {
      const { rows } = await tx.query<TenantRow>(
        `SELECT ${COLUMNS} FROM tenants
          WHERE ($1::text IS NULL OR slug > $1::text) AND ($2::text IS NULL OR status = $2::text)
          ORDER BY slug LIMIT $3`,
        [after ?? null, status ?? null, limit],
      );
      return rows;
    },
    async list(): Promise<TenantRow[]> {
      const { rows } = await tx.query<TenantRow>(`SELECT ${COLUMNS} FROM tenants ORDER BY slug`);
      return rows;
    },
  };
}
