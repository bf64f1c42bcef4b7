// SQL for key rotations: their progress rows, and the sealed columns a re-encryption pass rewrites.
import type { Queryable } from '../core/sql.js';

/** Every sealed column that may be rewritten. Audit events are append-only and hash-chained over
 * their ciphertext, so they keep the data key version they were sealed with. */
export const RESEALABLE = [
  { table: 'users', key: 'id', columns: ['email', 'name', 'phone', 'profile'] },
  { table: 'signing_keys', key: 'kid', columns: ['private_jwk'] },
  { table: 'user_factors', key: 'id', columns: ['secret'] },
  { table: 'mail_queue', key: 'id', columns: ['recipient', 'content'] },
  { table: 'account_tokens', key: 'id', columns: ['payload'] },
] as const;

export type Resealable = (typeof RESEALABLE)[number];

export interface RotationRow {
  id: string;
  tenant_id: string;
  kind: 'root' | 'data';
  status: 'running' | 'done';
  target_key_id: string;
  total: number;
  done: number;
  started_at: Date;
  finished_at: Date | null;
  actor: string;
}

const COLUMNS = 'id, tenant_id, kind, status, target_key_id, total, done, started_at, finished_at, actor';

/** A column sealed under another key than `keyId` (sealed values name their key: enc1.<key id>.…). */
const staleCondition = (t: Resealable) =>
  t.columns.map((c) => `(${c} IS NOT NULL AND ${c} NOT LIKE 'enc1.' || $1 || '.%')`).join(' OR ');

export function createKeyRotationQueries(tx: Queryable) {
  return {
    async running(tenantId: string, kind: RotationRow['kind']): Promise<RotationRow | undefined> {
      const { rows } = await tx.query<RotationRow>(
        `SELECT ${COLUMNS} FROM key_rotations WHERE tenant_id = $1 AND kind = $2 AND status = 'running'`,
        [tenantId, kind],
      );
      return rows[0];
    },
    async insert(row: Pick<RotationRow, 'id' | 'tenant_id' | 'kind' | 'target_key_id' | 'total' | 'actor'>) {
      await tx.query(
        `INSERT INTO key_rotations (id, tenant_id, kind, target_key_id, total, actor) VALUES ($1, $2, $3, $4, $5, $6)`,
        [row.id, row.tenant_id, row.kind, row.target_key_id, row.total, row.actor],
      );
    },
    async progress(id: string, done: number, finished: boolean): Promise<void> {
      await tx.query(
        `UPDATE key_rotations SET done = $2, total = GREATEST(total, $2),
                status = CASE WHEN $3 THEN 'done' ELSE status END,
                finished_at = CASE WHEN $3 THEN now() ELSE finished_at END WHERE id = $1`,
        [id, done, finished],
      );
    },
    /** The unfinished rotations of the transaction's tenant (row-level security scopes it). */
    async allRunning(): Promise<Pick<RotationRow, 'tenant_id' | 'kind' | 'actor'>[]> {
      const { rows } = await tx.query<Pick<RotationRow, 'tenant_id' | 'kind' | 'actor'>>(
        `SELECT tenant_id, kind, actor FROM key_rotations WHERE status = 'running' ORDER BY started_at`,
      );
      return rows;
    },
    /** The tenant's newest rotation of each kind, for `orthid keystore status`. */
    async latest(): Promise<RotationRow[]> {
      const { rows } = await tx.query<RotationRow>(
        `SELECT DISTINCT ON (kind) ${COLUMNS} FROM key_rotations ORDER BY kind, started_at DESC`,
      );
      return rows;
    },
    async countStale(table: Resealable, keyId: string): Promise<number> {
      const { rows } = await tx.query<{ n: string }>(
        `SELECT count(*) AS n FROM ${table.table} WHERE ${staleCondition(table)}`,
        [keyId],
      );
      return Number(rows[0]!.n);
    },
    /** A batch of rows with a column sealed under another key, locked; other passes skip them. */
    async stale(table: Resealable, keyId: string, limit: number): Promise<Record<string, string | null>[]> {
      const { rows } = await tx.query<Record<string, string | null>>(
        `SELECT ${table.key}, ${table.columns.join(', ')} FROM ${table.table}
          WHERE ${staleCondition(table)} LIMIT $2 FOR UPDATE SKIP LOCKED`,
        [keyId, limit],
      );
      return rows;
    },
    async reseal(table: Resealable, key: string, values: Record<string, string | null>): Promise<void> {
      const set = table.columns.map((c, i) => `${c} = $${i + 2}`).join(', ');
      await tx.query(`UPDATE ${table.table} SET ${set} WHERE ${table.key} = $1`, [
        key,
        ...table.columns.map((c) => values[c] ?? null),
      ]);
    },
    /** Data key ids that sealed values (audit events included) still name. */
    async keyIdsInUse(): Promise<Set<string>> {
      const sources = [
        ...RESEALABLE.flatMap((t) => t.columns.map((c) => `SELECT ${c} AS v FROM ${t.table}`)),
        ...['ip', 'user_agent', 'details'].map((c) => `SELECT ${c} AS v FROM audit_events`),
      ];
      const { rows } = await tx.query<{ key_id: string }>(
        `SELECT DISTINCT split_part(v, '.', 2) AS key_id FROM (${sources.join(' UNION ALL ')}) s WHERE v IS NOT NULL`,
      );
      return new Set(rows.map((r) => r.key_id));
    },
  };
}
