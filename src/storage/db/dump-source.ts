// What a backup dump reads from, whatever the driver: a dump source describes the database, takes
// the deployment's one-dump-at-a-time lock and streams a logical dump. postgres-dump.ts and
// pglite-dump.ts are the two sources; backup code sees only this interface.
import type { Readable } from 'node:stream';
import type { Database, Engine } from './database.js';

export interface DumpSourceInfo {
  engine: Engine;
  /** `server_version`, e.g. "15.18". */
  serverVersion: string;
  serverVersionNum: number;
  /** What writes the dump, e.g. "pg_dump (PostgreSQL) 15.18" or "pglite-tools pg_dump (PostgreSQL 17.5)". */
  dumpTool: string;
  /** Latest applied OrthID migration. */
  schemaVersion: number;
}

/**
 * Where the snapshot a dump reads stands. A hot standby's snapshot sees exactly the primary's
 * transactions whose commit records it had replayed when the snapshot was taken, so a dump from
 * a standby stands at a WAL position of the primary: its recovery point.
 */
export interface DumpSnapshotSource {
  /** `pg_is_in_recovery()` on the connection the dump read from. */
  standby: boolean;
  /** When the snapshot was taken, by the database server's clock. */
  snapshotAt: string;
  /** Standby only. */
  replay?: {
    /** Every transaction the primary committed at or before this WAL position is in the dump. */
    lsn: string;
    /**
     * No transaction the primary committed after this position is in the dump; equals `lsn`
     * when the standby had replayed all it had received.
     */
    lsnAfter: string;
    /**
     * The primary's commit time of the last transaction replayed by then (null when the standby
     * has replayed none since it started): the dump holds everything committed up to it. On a
     * busy primary, `snapshotAt` minus this is how far the standby lagged; on an idle one it is
     * only the time of the last write.
     */
    lastCommitAt: string | null;
  };
}

export interface DatabaseDump {
  /** `custom`: pg_dump's archive format (pg_restore); `plain`: SQL text (psql). */
  format: 'custom' | 'plain';
  /** e.g. "gzip:1", or "none". */
  compression: string;
  /** The dump's bytes; errors (never ends cleanly) when the dump tool fails. */
  stream: Readable;
  /** Where the dump's snapshot stands, when it is known. */
  source?: DumpSnapshotSource;
}

export interface DumpLock {
  release(): Promise<void>;
}

/** A database a backup can be taken from. */
export interface DumpSource {
  readonly engine: Engine;
  /** The database, for the backup's own read-only queries (on the owner/backup connection). */
  readonly db: Database;
  /**
   * Versions and schema; throws `backup.pg_dump_missing`, `backup.pg_dump_too_old` or
   * `backup.dump_forbidden` before anything is written.
   */
  describe(): Promise<DumpSourceInfo>;
  /** Takes the deployment's backup lock; `backup.locked` when another dump holds it. */
  lock(): Promise<DumpLock>;
  /** Starts the dump. */
  dump(): Promise<DatabaseDump>;
  close(): Promise<void>;
}
