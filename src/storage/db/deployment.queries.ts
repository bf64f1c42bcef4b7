// The SQL of the deployment binding: the one-row deployment table (migration 0009) that records
// which keystore's deployment the database belongs to. Read by every role; written once, by migrate.
import type { Queryable } from '../../core/sql.js';

export interface RecordedDeployment {
  id: string;
  /** When the id was recorded (the first migrate or embedded start with the keystore). */
  recordedAt: Date;
}

/** The deployment the database records, or undefined when none is (or the schema predates it). */
export async function recordedDeployment(tx: Queryable): Promise<RecordedDeployment | undefined> {
  const exists = await tx.query<{ t: string | null }>(`SELECT to_regclass('deployment')::text AS t`);
  if (!exists.rows[0]?.t) return undefined;
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
