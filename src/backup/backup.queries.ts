// The SQL backups run against the dumped database: read-only, on the backup connection (a role
// that reads every tenant, as pg_dump itself must).
import type { Queryable } from '../storage/db/database.js';

/** Root keys that wrap a live tenant data key: what a restore's keystore must hold. */
export async function rootKeyIdsInUse(tx: Queryable): Promise<string[]> {
  // tenant_keys forces row-level security; the backup role may bypass it, and must see every tenant.
  await tx.query('SET LOCAL row_security = off');
  const { rows } = await tx.query<{ root_key_id: string }>(
    `SELECT DISTINCT root_key_id FROM tenant_keys WHERE status <> 'destroyed' ORDER BY root_key_id`,
  );
  return rows.map((r) => r.root_key_id);
}
