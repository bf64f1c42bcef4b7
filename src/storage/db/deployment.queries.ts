// The SQL of the deployment binding: the one-row deployment table (migration 0009) that records
// which keystore's deployment the database belongs to. Read by every role; written once, by migrate.
import type { Queryable } from '../../core/sql.js';

export interface RecordedDeployment {
  id: string;
  /** When the id was recorded (the first migrate or embedded start with the keystore). */
  recordedAt: Date;
}

/** Whether the schema has `table` yet (a new database has none). */
export async function tableExists(tx: Queryable, table: string): Promise<boolean> {
  const { rows } = await tx.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [table]);
  return Boolean(rows[0]?.t);
}

/** The deployment the database records, or undefined when none is (or the schema predates it). */
export async function recordedDeployment(tx: Queryable): Promise<RecordedDeployment | undefined> {
  if (!(await tableExists(tx, 'deployment'))) return undefined;
  const { rows } = await tx.query<{ id: string; created_at: Date }>(
    'SELECT id::text AS id, created_at FROM deployment LIMIT 1',
  );
  const row = rows[0];
  return row ? { id: row.id, recordedAt: new Date(row.created_at) } : undefined;
}

/** Records `id` unless an id is recorded already; true when this call recorded it. */
export async function recordDeployment(tx: Queryable, id: string): Promise<boolean> {
  const { rowCount } = await tx.query(
    'INSERT INTO deployment (id) VALUES ($1) ON CONFLICT (singleton) DO NOTHING',
    [id],
  );
  return rowCount > 0;
}

/**
 * Root keys of managed custody (the keystore's own) that wrap a live tenant data key, tenant by
 * tenant: the owner login is subject to row-level security like every role but a superuser's.
 */
export async function managedRootKeyIdsInUse(tx: Queryable): Promise<string[]> {
  const tenants = await tx.query<{ id: string }>('SELECT id::text AS id FROM tenants ORDER BY id');
  const ids = new Set<string>();
  for (const { id } of tenants.rows) {
    await tx.query(`SELECT set_config('orthid.tenant_id', $1, true)`, [id]);
    const { rows } = await tx.query<{ root_key_id: string }>(
      `SELECT DISTINCT root_key_id FROM tenant_keys WHERE custody = 'managed' AND status <> 'destroyed'`,
    );
    for (const row of rows) ids.add(row.root_key_id);
  }
  await tx.query(`SELECT set_config('orthid.tenant_id', '', true)`);
  return [...ids].sort();
}
