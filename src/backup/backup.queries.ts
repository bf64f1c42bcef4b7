// The SQL backups run against the dumped database: read-only, on the backup connection (a role
// that reads every tenant, as pg_dump itself must).
import type { Queryable } from '../storage/db/database.js';

/**
 * Each root key that wraps a live tenant data key, with the custody holding it (`managed`: the
 * keystore): what a restore's keystore or custody must hold.
 */
export async function rootKeysInUse(tx: Queryable): Promise<{ id: string; custody: string }[]> {
  // tenant_keys forces row-level security; the backup role may bypass it, and must see every tenant.
  await tx.query('SET LOCAL row_security = off');
  const { rows } = await tx.query<{ root_key_id: string; custody: string }>(
    `SELECT DISTINCT root_key_id, custody FROM tenant_keys WHERE status <> 'destroyed' ORDER BY root_key_id`,
  );
  return rows.map((r) => ({ id: r.root_key_id, custody: r.custody }));
}
