// The SQL a dump runs besides the dump itself: what it dumps (schema version, server version,
// whether the login reads every tenant) and, on PostgreSQL around pg_dump on the backup connection
// (a primary or a hot standby), where the snapshot stands in the primary's history and the lock.
import type { QueryResult } from '../../core/sql.js';

/** The owner-level statements of a Database (ownerQuery), for the reads below. */
export interface OwnerQueryable {
  ownerQuery<Row = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<QueryResult<Row>>;
}

/**
 * The latest migration applied (0 before the first). Read directly rather than through
 * migrationStatus(): a backup must succeed even of a database a newer OrthID has migrated.
 */
export async function schemaVersion(db: OwnerQueryable): Promise<number> {
  const { rows } = await db.ownerQuery<{ v: number | null }>(
    `SELECT CASE WHEN to_regclass('orthid_migrations') IS NULL THEN 0
            ELSE (SELECT coalesce(max(version), 0) FROM orthid_migrations) END AS v`,
  );
  return Number(rows[0]?.v ?? 0);
}

/** The server's version, and whether the current login reads every tenant (superuser or BYPASSRLS). */
export async function serverInfo(
  db: OwnerQueryable,
): Promise<{ version: string; versionNum: number; readsEveryTenant: boolean }> {
  const { rows } = await db.ownerQuery<{ version: string; num: string; can: boolean }>(
    `SELECT current_setting('server_version') AS version, current_setting('server_version_num') AS num,
            (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user) AS can`,
  );
  const row = rows[0]!;
  return { version: row.version, versionNum: Number(row.num), readsEveryTenant: row.can === true };
}

/** A connection of its own (not a pooled one): these statements hold session state. */
export interface SessionQueryable {
  query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<Row>>;
}

/** Where replay stood just before the snapshot, read in this order (see exportDumpSnapshot). */
export async function replayPositionBefore(
  session: SessionQueryable,
): Promise<{ standby: boolean; lastCommitAt: Date | null; lsn: string | null }> {
  // The commit timestamp first, then the position: recovery sets the timestamp only after the
  // commit record has been replayed and the replay position moved past it, so the transaction
  // the timestamp names lies at or before the position read after it.
  const first = await session.query<{ standby: boolean; last_commit_at: Date | null }>(
    'SELECT pg_is_in_recovery() AS standby, pg_last_xact_replay_timestamp() AS last_commit_at',
  );
  const second = await session.query<{ lsn: string | null }>('SELECT pg_last_wal_replay_lsn()::text AS lsn');
  return {
    standby: first.rows[0]!.standby,
    lastCommitAt: first.rows[0]!.last_commit_at,
    lsn: second.rows[0]!.lsn,
  };
}

/**
 * Opens a REPEATABLE READ transaction, exports its snapshot for `pg_dump --snapshot`, and reads,
 * after it was taken (the snapshot is taken when this first statement starts, before its
 * functions run), how far WAL had been received: replay never applies a record the standby has
 * not received and flushed, so no record the snapshot sees ends past that (GREATEST ignores the
 * received position when it is unknown, e.g. WAL restored from an archive).
 */
export async function exportSnapshot(
  session: SessionQueryable,
): Promise<{ snapshot: string; lsnAfter: string | null; at: Date }> {
  await session.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  const { rows } = await session.query<{ snapshot: string; lsn_after: string | null; at: Date }>(
    `SELECT pg_export_snapshot() AS snapshot,
            CASE WHEN pg_is_in_recovery()
              THEN greatest(pg_last_wal_replay_lsn(), pg_last_wal_receive_lsn())::text END AS lsn_after,
            clock_timestamp() AS at`,
  );
  return { snapshot: rows[0]!.snapshot, lsnAfter: rows[0]!.lsn_after, at: rows[0]!.at };
}

/** pg_stat_database_conflicts for this database: queries a standby cancelled, by cause. */
export async function recoveryConflictCounts(session: SessionQueryable): Promise<Record<string, number>> {
  const { rows } = await session.query<Record<string, string>>(
    `SELECT confl_snapshot AS snapshot, confl_lock AS lock, confl_bufferpin AS bufferpin,
            confl_deadlock AS deadlock, confl_tablespace AS tablespace
       FROM pg_stat_database_conflicts WHERE datname = current_database()`,
  );
  return Object.fromEntries(Object.entries(rows[0] ?? {}).map(([kind, n]) => [kind, Number(n)]));
}

export async function endSnapshot(session: SessionQueryable): Promise<void> {
  await session.query('COMMIT');
}

/** Whether the server is a standby (a lock taken there excludes nothing on other servers). */
export async function inRecovery(session: SessionQueryable): Promise<boolean> {
  const { rows } = await session.query<{ standby: boolean }>('SELECT pg_is_in_recovery() AS standby');
  return rows[0]!.standby;
}

export async function tryAdvisoryLock(session: SessionQueryable, key: bigint): Promise<boolean> {
  const { rows } = await session.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [
    key.toString(),
  ]);
  return rows[0]?.locked === true;
}

export async function advisoryUnlock(session: SessionQueryable, key: bigint): Promise<void> {
  await session.query('SELECT pg_advisory_unlock($1)', [key.toString()]);
}

/** The primary's current WAL write position: what a standby must replay to see all it committed. */
export async function primaryWalPosition(session: SessionQueryable): Promise<string> {
  const { rows } = await session.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
  return rows[0]!.lsn;
}

/** Whether a standby has replayed past `lsn`, and how far it stands (null: not a standby). */
export async function replayedPast(
  session: SessionQueryable,
  lsn: string,
): Promise<{ standby: boolean; done: boolean; at: string | null }> {
  const { rows } = await session.query<{ standby: boolean; done: boolean | null; at: string | null }>(
    `SELECT pg_is_in_recovery() AS standby, pg_last_wal_replay_lsn() >= $1::pg_lsn AS done,
            pg_last_wal_replay_lsn()::text AS at`,
    [lsn],
  );
  const row = rows[0]!;
  return { standby: row.standby, done: row.done === true, at: row.at };
}
