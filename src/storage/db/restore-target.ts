// The database a backup set is restored into, for every driver: asked first (inspect), loaded
// from a dump into a place of its own (load), put in the target's place only once the load
// finished cleanly (promote, with the previous database kept aside until release), then handed
// back as a Database for the migrations and the checks (open, analyze) and let go (close), or
// removed with everything it created, the previous database put back (discard).
// postgres-restore-target.ts and pglite-restore-target.ts are the two kinds; backup code sees
// only this interface.
import type { Readable } from 'node:stream';
import type { Database } from './database.js';

/** `custom`: pg_dump's archive format (pg_restore); `plain`: SQL text (psql, or PGlite itself). */
export type DumpFormat = 'custom' | 'plain';

/** What a target needs to know of the dump it is asked to take. */
export interface DumpToRestore {
  /** The set the dump belongs to: a target promoted from it by an earlier run is resumed. */
  setId: string;
  format: DumpFormat;
  /** What wrote the dump, e.g. "pg_dump (PostgreSQL) 15.18". */
  dumpTool: string;
}

export interface TargetInspection {
  /** An earlier, interrupted run already promoted this set's database here: load and promote are skipped. */
  resumed: boolean;
}

export interface RestoreTarget {
  /** The kind of target, as the restore's step 1 announces it ("PostgreSQL", "embedded database"). */
  readonly kind: string;
  /** Where the data went, as a report names it (never a password). */
  readonly description: string;
  /**
   * Step 1, asking without writing: the target is empty (or to be replaced), its login may load
   * and replace it and act as the application role, the client tool reads this dump. Throws
   * `backup.target_not_empty`, `backup.target_forbidden`, `backup.tool_missing`,
   * `backup.tool_too_old` or `backup.format_unsupported`.
   */
  inspect(dump: DumpToRestore): Promise<TargetInspection>;
  /**
   * Loads the dump into the target's staging database; the target itself is not touched yet.
   * `openDump` is called once the staging database is ready to read it: a stream that fails
   * before anyone listens would take the process down instead of failing the restore.
   */
  load(format: DumpFormat, openDump: () => Promise<Readable>): Promise<void>;
  /**
   * Replaces the target with the staged database, marked as restored from `setId`. The database
   * it replaces (with `--clean`) is only moved aside: release() drops it, discard() puts it back.
   */
  promote(setId: string): Promise<void>;
  /** Ends the promotion: the database the target replaced is dropped. */
  release(): Promise<void>;
  /** The target as a Database with up to `connections` connections; closed by close() or discard(). */
  open(connections: number): Promise<Database>;
  /** Gathers planner statistics on the opened target, on a connection of its own. */
  analyze(): Promise<void>;
  /** Closes what open() opened; the restored target stays. */
  close(): Promise<void>;
  /**
   * Removes what this restore created and did not keep: the staging database, or a promoted one
   * not yet released, whose place the previous database takes again; a throwaway target (a
   * drill's) is removed entirely. Safe to call after close(), promote(), release() or a failure.
   */
  discard(): Promise<void>;
}
