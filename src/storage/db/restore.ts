// Restores a logical dump into PostgreSQL safely: into a fresh scratch database first (an age
// stream reveals truncation only at its end), promoted to the target name only once pg_restore or
// psql finished cleanly. Also loads plain SQL into an embedded PGlite for drills.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import pg from 'pg';
import { OrthIdError } from '../../core/errors.js';
import { CREATE_APP_ROLE, CREATE_APP_ROLE_IF_MISSING } from './app-role.queries.js';
import { APP_ROLE } from './database.js';
import { libpqConnection } from './libpq.js';
import type { PgliteDriver } from './pglite-driver.js';
import { describeDatabaseUrl } from './postgres-driver.js';
import { canActAsAppRole, joinAppRole, targetLogin } from './target-login.queries.js';

export type DumpFormat = 'custom' | 'plain';

/** Marks a database as restored from a set, so a restore that stopped later can resume. */
const RESTORED_FROM = 'orthid-restored-from:';

/** The URL of another database on the same server, as the same login. */
export function databaseUrlFor(url: string, database: string): string {
  return withDatabase(url, database);
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

export function databaseName(url: string): string {
  const name = decodeURIComponent(new URL(url).pathname.replace(/^\//, ''));
  if (!/^[A-Za-z_][A-Za-z0-9_$-]{0,62}$/.test(name)) {
    throw new OrthIdError(
      'backup.target_invalid',
      `"${name}" is not a database name OrthID restores into; use letters, digits and underscores.`,
    );
  }
  return name;
}

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: 'orthid-restore' });
  // A connection lost between statements emits 'error'; the next statement fails instead.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (cause) {
    throw new OrthIdError('db.unavailable', `Cannot reach PostgreSQL at ${describeDatabaseUrl(url)}.`, {
      cause,
    });
  }
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

export interface TargetState {
  exists: boolean;
  /** Tables in the public schema (0 for an empty database). */
  tables: number;
  /** The set this database was restored from, when a restore promoted it. */
  restoredFrom?: string;
}

/** One thing the target's login lacks, with the statement a superuser runs to grant it. */
export interface TargetProblem {
  cause: string;
  fix: string;
}

export interface TargetPreflight extends TargetState {
  /** The login the restore connects as. */
  login: string;
  /** What keeps this login from loading a dump into the target (creating and replacing it). */
  loadProblems: TargetProblem[];
  /** What keeps it from acting as the application role once the data is in. */
  roleProblems: TargetProblem[];
}

/**
 * Everything a restore needs from the target's login, asked without writing anything: the restore
 * creates a scratch database (CREATEDB), drops the target to put the scratch in its place (owning
 * it), and finally acts as the application role (a member of it, or able to create and grant it,
 * which step 3 then does). Reads through the server's maintenance database.
 */
export async function preflightTarget(targetUrl: string): Promise<TargetPreflight> {
  const name = databaseName(targetUrl);
  const { row, actAsApp } = await withClient(withDatabase(targetUrl, 'postgres'), async (client) => {
    const row = await targetLogin(client, name);
    return { row, actAsApp: row.app_exists && (await canActAsAppRole(client)) };
  });
  const login = pg.escapeIdentifier(row.login);
  const loadProblems: TargetProblem[] = [];
  const roleProblems: TargetProblem[] = [];
  if (!row.superuser && !row.createdb) {
    loadProblems.push({
      cause: `the login ${row.login} may not create databases (the dump is loaded into a scratch database first)`,
      fix: `ALTER ROLE ${login} CREATEDB;`,
    });
  }
  if (row.db_exists && !row.superuser && !row.db_owned) {
    loadProblems.push({
      cause: `the database ${name} belongs to ${row.db_owner}, so ${row.login} may not replace it`,
      fix: `ALTER DATABASE ${pg.escapeIdentifier(name)} OWNER TO ${login};`,
    });
  }
  if (!actAsApp && !row.superuser) {
    // PostgreSQL 16 took from CREATEROLE the right to grant roles one does not administer.
    const mayGrant = row.app_admin === true || (row.createrole && row.version < 160000);
    if (!row.app_exists && !row.createrole) {
      roleProblems.push({
        cause: `the role ${APP_ROLE} does not exist on this server and ${row.login} may not create it`,
        fix: `${CREATE_APP_ROLE}; GRANT ${APP_ROLE} TO ${login};`,
      });
    } else if (row.app_exists && !mayGrant) {
      roleProblems.push({
        cause: `${row.login} may not act as the role ${APP_ROLE}, which the restored data is served as`,
        fix: `GRANT ${APP_ROLE} TO ${login};`,
      });
    }
  }
  if (!row.db_exists) return { login: row.login, exists: false, tables: 0, loadProblems, roleProblems };
  const comment = row.comment;
  const restoredFrom = comment?.startsWith(RESTORED_FROM) ? comment.slice(RESTORED_FROM.length) : undefined;
  if (row.db_connect === false) {
    // Its tables cannot be counted; replacing it needs ownership, which also grants CONNECT.
    if (loadProblems.length === 0)
      loadProblems.push({
        cause: `${row.login} may not connect to the database ${name}`,
        fix: `GRANT CONNECT ON DATABASE ${pg.escapeIdentifier(name)} TO ${login};`,
      });
    return { login: row.login, exists: true, tables: 0, loadProblems, roleProblems };
  }
  const tables = await withClient(targetUrl, async (client) => {
    const { rows } = await client.query<{ n: string }>(
      `SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public'`,
    );
    return Number(rows[0]!.n);
  });
  return {
    login: row.login,
    exists: true,
    tables,
    ...(restoredFrom ? { restoredFrom } : {}),
    loadProblems,
    roleProblems,
  };
}

/**
 * Roles are global to a cluster and not part of a database dump; the dump's GRANTs need the
 * application role to exist on the target server first, and the checks after the restore run
 * as it, so the restoring login is made a member when it can grant that to itself.
 */
export async function ensureAppRole(serverUrl: string): Promise<void> {
  await withClient(withDatabase(serverUrl, 'postgres'), async (client) => {
    await client.query(CREATE_APP_ROLE_IF_MISSING);
    if (!(await canActAsAppRole(client))) await joinAppRole(client);
  });
}

/** `pg_restore --version` or `psql --version`: the major version; `backup.tool_missing` when it does not run. */
export function clientToolMajor(
  format: DumpFormat,
  binary = format === 'custom' ? 'pg_restore' : 'psql',
): number {
  const probe = spawnSync(binary, ['--version'], { encoding: 'utf8' });
  const match = /\(PostgreSQL\)\s+(\d+)/.exec(probe.stdout ?? '');
  if (probe.error || probe.status !== 0 || !match) {
    throw new OrthIdError(
      'backup.tool_missing',
      `${binary} is not installed or does not run, and the restore needs it. Install the PostgreSQL client tools (Debian: apt-get install -y postgresql-client). Nothing was restored.`,
    );
  }
  return Number(match[1]);
}

/**
 * Runs a client tool on `dbUrl`, named by `--dbname` without its password (PGPASSWORD carries it).
 * The tools are told never to prompt for one: their stdin is the dump.
 */
function run(
  command: string,
  args: (dbname: string) => string[],
  dbUrl: string,
  input: Readable,
  what: string,
): Promise<void> {
  const { dbname, env } = libpqConnection(dbUrl, 'orthid-restore');
  return new Promise((resolve, reject) => {
    const child = spawn(command, args(dbname), { env, stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < 8192) stderr += d.toString();
    });
    child.on('error', (cause) =>
      reject(
        new OrthIdError(
          'backup.tool_missing',
          `Cannot run ${command}: install the PostgreSQL client tools.`,
          { cause },
        ),
      ),
    );
    input.on('error', (error) => {
      child.kill('SIGTERM');
      reject(error);
    });
    child.stdin.on('error', () => {}); // EPIPE when the tool exits early; its exit code tells why
    child.on('close', (code) => {
      if (code === 0) resolve();
      else
        reject(
          new OrthIdError(
            'backup.restore_failed',
            `${what} failed (exit ${code}): ${stderr.trim().slice(0, 2000)}`,
          ),
        );
    });
    input.pipe(child.stdin);
  });
}

export interface ScratchRestore {
  /** Loads the dump into the scratch database. */
  load(format: DumpFormat, dump: Readable): Promise<void>;
  /** Renames the scratch database to the target (dropping an empty or --clean target first). */
  promote(setId: string): Promise<void>;
  /** Drops the scratch database; safe to call after promote or failure. */
  discard(): Promise<void>;
}

export async function startScratchRestore(
  targetUrl: string,
  options: { pgRestore?: string; psql?: string } = {},
): Promise<ScratchRestore> {
  const target = databaseName(targetUrl);
  const scratch = `${target.slice(0, 40)}_restore_${randomBytes(4).toString('hex')}`;
  const admin = withDatabase(targetUrl, 'postgres');
  await ensureAppRole(targetUrl);
  await withClient(admin, (client) => client.query(`CREATE DATABASE ${pg.escapeIdentifier(scratch)}`));
  const scratchUrl = withDatabase(targetUrl, scratch);
  let promoted = false;

  const dropDatabase = (client: pg.Client, name: string) =>
    client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);

  return {
    async load(format, dump) {
      if (format === 'custom') {
        await run(
          options.pgRestore ?? 'pg_restore',
          (dbname) => [
            '--no-owner',
            '--clean',
            '--if-exists',
            '--exit-on-error',
            '--no-password',
            '--dbname',
            dbname,
          ],
          scratchUrl,
          dump,
          'pg_restore',
        );
      } else {
        await run(
          options.psql ?? 'psql',
          (dbname) => ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '--no-password', '--dbname', dbname, '-f', '-'],
          scratchUrl,
          dump,
          'psql',
        );
      }
    },
    async promote(setId) {
      await withClient(admin, async (client) => {
        await dropDatabase(client, target);
        await client.query(
          `ALTER DATABASE ${pg.escapeIdentifier(scratch)} RENAME TO ${pg.escapeIdentifier(target)}`,
        );
        await client.query(
          `COMMENT ON DATABASE ${pg.escapeIdentifier(target)} IS ${pg.escapeLiteral(RESTORED_FROM + setId)}`,
        );
      });
      promoted = true;
    },
    async discard() {
      if (promoted) return;
      await withClient(admin, (client) => dropDatabase(client, scratch)).catch(() => {});
    },
  };
}

/** Creates an empty database (drills provision throwaway targets with it). */
export async function createDatabase(serverUrl: string, name: string): Promise<string> {
  await withClient(withDatabase(serverUrl, 'postgres'), (client) =>
    client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`),
  );
  return withDatabase(serverUrl, name);
}

export async function dropDatabase(url: string): Promise<void> {
  const name = databaseName(url);
  await withClient(withDatabase(url, 'postgres'), (client) =>
    client.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`),
  );
}

/** Loads a plain-SQL dump (an embedded set) into an empty PGlite; the whole script runs as one. */
export async function loadSqlIntoPglite(db: PgliteDriver, dump: Readable): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of dump) chunks.push(chunk as Buffer);
  await db.pglite.exec(CREATE_APP_ROLE_IF_MISSING);
  await db.pglite.exec(Buffer.concat(chunks).toString('utf8'));
  // The dump empties search_path and turns row security off for its session, which on PGlite's
  // single session would outlive the restore.
  await db.pglite.exec('RESET ALL');
}
