// The SQL a restore target runs: how full a database is, the scratch database's life (create,
// rename into place, mark, drop), the previous database moved aside and back, and the
// statistics gathered after a restore.
import pg from 'pg';

/** Anything with node-postgres's query signature: a pg.Client, or a Queryable. */
interface Sql {
  query<Row>(sql: string, params?: unknown[]): Promise<{ rows: Row[] }>;
}

/** Tables in the public schema: 0 for a database a restore may fill. */
export async function publicTableCount(sql: Sql): Promise<number> {
  const { rows } = await sql.query<{ n: string }>(
    `SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public'`,
  );
  return Number(rows[0]!.n);
}

export async function createDatabase(sql: Sql, name: string): Promise<void> {
  await sql.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
}

/** Drops `name` even while sessions are connected to it (a check that did not close its pool). */
export async function dropDatabase(sql: Sql, name: string): Promise<void> {
  await sql.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
}

/** Puts the scratch database in the target's place (the target is gone by then) and marks it. */
export async function renameDatabase(sql: Sql, from: string, to: string, comment: string): Promise<void> {
  await sql.query(`ALTER DATABASE ${pg.escapeIdentifier(from)} RENAME TO ${pg.escapeIdentifier(to)}`);
  await sql.query(`COMMENT ON DATABASE ${pg.escapeIdentifier(to)} IS ${pg.escapeLiteral(comment)}`);
}

/** Whether a database named `name` exists on the server. */
export async function databaseExists(sql: Sql, name: string): Promise<boolean> {
  const { rows } = await sql.query<{ n: string }>(
    'SELECT count(*) AS n FROM pg_database WHERE datname = $1',
    [name],
  );
  return Number(rows[0]!.n) > 0;
}

/**
 * Closes `name` to new sessions and ends those connected (a server still using it), so that it
 * can be renamed: PostgreSQL renames no database another session is connected to.
 */
export async function closeDatabase(sql: Sql, name: string): Promise<void> {
  await sql.query(`ALTER DATABASE ${pg.escapeIdentifier(name)} ALLOW_CONNECTIONS false`);
  await sql.query(
    'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
    [name],
  );
}

/** Opens `name` to sessions again (a previous database put back in its place). */
export async function reopenDatabase(sql: Sql, name: string): Promise<void> {
  await sql.query(`ALTER DATABASE ${pg.escapeIdentifier(name)} ALLOW_CONNECTIONS true`);
}

/** Renames a database, keeping its comment (the set a previous database was restored from). */
export async function moveDatabase(sql: Sql, from: string, to: string): Promise<void> {
  await sql.query(`ALTER DATABASE ${pg.escapeIdentifier(from)} RENAME TO ${pg.escapeIdentifier(to)}`);
}

/**
 * Gathers planner statistics for the whole restored database: a dump carries none, and without
 * them the first requests after a restore would get plans made blind.
 */
export async function analyzeDatabase(sql: Sql): Promise<void> {
  await sql.query('ANALYZE');
}

/**
 * After a plain-SQL load into PGlite's single session: the dump empties search_path and turns
 * row security off for its session, which would outlive the restore.
 */
export const RESET_SESSION = 'RESET ALL';
