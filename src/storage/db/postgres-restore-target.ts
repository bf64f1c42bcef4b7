// A PostgreSQL database as a restore target. The dump is loaded into a fresh scratch database
// on the same server first (an age stream reveals truncation only at its end) and renamed to the
// target's name only once pg_restore or psql finished cleanly; a failed load leaves the target as
// it was. A database the restore replaces (--clean) is renamed aside, not dropped, until the
// whole restore is promoted, so a failure up to then puts it back. A throwaway target (a drill's)
// is dropped when discarded.
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import pg from 'pg';
import { OrthIdError } from '../../core/errors.js';
import { CREATE_APP_ROLE, CREATE_APP_ROLE_IF_MISSING } from './app-role.queries.js';
import { clientToolVersion, runClientToolOn } from './client-tool.js';
import { APP_ROLE, type Database } from './database.js';
import { libpqConnection } from './libpq.js';
import { describeDatabaseUrl, openPostgres } from './postgres-driver.js';
import type { DumpFormat, DumpToRestore, RestoreTarget } from './restore-target.js';
import {
  analyzeDatabase,
  closeDatabase,
  createDatabase,
  databaseExists,
  dropDatabase,
  moveDatabase,
  publicTableCount,
  renameDatabase,
  reopenDatabase,
} from './restore-target.queries.js';
import { canActAsAppRole, joinAppRole, targetLogin } from './target-login.queries.js';

/** Marks a database as restored from a set, so a restore that stopped later can resume. */
const RESTORED_FROM = 'orthid-restored-from:';

/** The URL of another database on the same server, as the same login. */
export function databaseUrlFor(url: string, database: string): string {
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
  const { row, actAsApp } = await withClient(databaseUrlFor(targetUrl, 'postgres'), async (client) => {
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
  const tables = await withClient(targetUrl, publicTableCount);
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
async function ensureAppRole(serverUrl: string): Promise<void> {
  await withClient(databaseUrlFor(serverUrl, 'postgres'), async (client) => {
    await client.query(CREATE_APP_ROLE_IF_MISSING);
    if (!(await canActAsAppRole(client))) await joinAppRole(client);
  });
}

/** The refusal when the target's login lacks something: each cause, then the SQL that grants it. */
function targetForbidden(login: string, database: string, problems: TargetProblem[]): OrthIdError {
  return new OrthIdError(
    'backup.target_forbidden',
    [
      `Cannot restore into ${database} as ${login}: ${problems.map((p) => p.cause).join('; ')}. Nothing was changed.`,
      'As a superuser on the target server, run:',
      ...problems.map((p) => `  ${p.fix}`),
    ].join('\n'),
    { details: { login, database, sql: problems.map((p) => p.fix) } },
  );
}

/** The refusal when the database to replace cannot be moved aside, e.g. a server still connected to it. */
function inUse(database: string, cause: unknown): OrthIdError {
  return new OrthIdError(
    'backup.restore_failed',
    `Cannot move the database ${database} aside to replace it (${(cause as Error)?.message ?? cause}): stop the deployment still connected to it, or restore as a login that may end its sessions, then run the restore again. The target was left as it was.`,
    { cause },
  );
}

/** The client tool that loads `format`; `backup.tool_missing` when it does not run. */
function loaderOf(format: DumpFormat): 'pg_restore' | 'psql' {
  return format === 'custom' ? 'pg_restore' : 'psql';
}

/** pg_restore reads archives of its own major version and older, never newer. */
function checkRestoreTool(dump: DumpToRestore, binaries: PostgresTargetOptions): void {
  const tool = loaderOf(dump.format);
  const { major } = clientToolVersion(tool, tool === 'pg_restore' ? binaries.pgRestore : binaries.psql);
  const dumped = /\(PostgreSQL\)\s+(\d+)/.exec(dump.dumpTool)?.[1];
  if (dump.format === 'custom' && dumped && major < Number(dumped)) {
    throw new OrthIdError(
      'backup.tool_too_old',
      `pg_restore ${major} cannot read a dump made by ${dump.dumpTool}. Install postgresql-client-${dumped} (or newer) and put it first on PATH. Nothing was restored.`,
    );
  }
}

export interface PostgresTargetOptions {
  /** Replace a target database that is not empty. */
  clean?: boolean;
  /** A drill's target: it must not exist beforehand, and discard() drops it. */
  throwaway?: boolean;
  /** The client binaries to run instead of those on PATH. */
  pgRestore?: string;
  psql?: string;
}

/** The database at `url` (created when missing) as a restore target. */
export function postgresRestoreTarget(url: string, options: PostgresTargetOptions = {}): RestoreTarget {
  const target = databaseName(url);
  const suffix = randomBytes(4).toString('hex');
  const scratch = `${target.slice(0, 40)}_restore_${suffix}`;
  /** Where the database a --clean restore replaces waits until release() or discard(). */
  const previous = `${target.slice(0, 40)}_previous_${suffix}`;
  const admin = databaseUrlFor(url, 'postgres');
  let scratchCreated = false;
  let promoted = false;
  let released = false;
  let previousAside = false;
  let opened: Database | undefined;
  const load = async (format: DumpFormat, dump: Readable) => {
    const tool = loaderOf(format);
    const { dbname, env } = libpqConnection(databaseUrlFor(url, scratch), 'orthid-restore');
    // The tools are told never to prompt for a password: their stdin is the dump.
    const args =
      tool === 'pg_restore'
        ? ['--no-owner', '--clean', '--if-exists', '--exit-on-error', '--no-password', '--dbname', dbname]
        : ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '--no-password', '--dbname', dbname, '-f', '-'];
    const binary = tool === 'pg_restore' ? options.pgRestore : options.psql;
    await runClientToolOn(tool, args, dump, { env, what: tool, ...(binary ? { binary } : {}) });
  };
  return {
    kind: 'PostgreSQL',
    description: options.throwaway ? 'throwaway PostgreSQL database' : describeDatabaseUrl(url),
    async inspect(dump) {
      const state = await preflightTarget(url);
      const resumed = !options.throwaway && state.restoredFrom === dump.setId;
      if (state.tables > 0 && !options.clean && !resumed) {
        throw new OrthIdError(
          'backup.target_not_empty',
          'The target database is not empty. Restore into a new database, or pass --clean to replace it.',
        );
      }
      const problems = [...(resumed ? [] : state.loadProblems), ...state.roleProblems];
      if (problems.length > 0) throw targetForbidden(state.login, target, problems);
      if (!resumed) checkRestoreTool(dump, options);
      return { resumed };
    },
    async load(format, openDump) {
      await ensureAppRole(url);
      await withClient(admin, (client) => createDatabase(client, scratch));
      scratchCreated = true;
      const dump = await openDump();
      await load(format, dump).finally(() => dump.destroy());
    },
    async promote(setId) {
      await withClient(admin, async (client) => {
        if (await databaseExists(client, target)) {
          try {
            await closeDatabase(client, target);
            await moveDatabase(client, target, previous);
          } catch (cause) {
            await reopenDatabase(client, target).catch(() => {});
            throw inUse(target, cause);
          }
          previousAside = true;
        }
        try {
          await renameDatabase(client, scratch, target, RESTORED_FROM + setId);
        } catch (error) {
          if (previousAside) {
            await moveDatabase(client, previous, target);
            await reopenDatabase(client, target);
            previousAside = false;
          }
          throw error;
        }
      });
      promoted = true;
    },
    async release() {
      // Released first: a drop that fails must not put the previous database back.
      released = true;
      if (previousAside) await withClient(admin, (client) => dropDatabase(client, previous));
      previousAside = false;
    },
    async open(connections) {
      opened ??= await openPostgres(url, { max: connections });
      return opened;
    },
    async analyze() {
      const db = opened ?? (await this.open(1));
      await analyzeDatabase({ query: (sql, params) => db.ownerQuery(sql, params) });
    },
    async close() {
      const db = opened;
      opened = undefined;
      await db?.close();
    },
    async discard() {
      await this.close().catch(() => {});
      if (scratchCreated && !promoted)
        await withClient(admin, (client) => dropDatabase(client, scratch)).catch(() => {});
      if (promoted && !released && !options.throwaway) {
        // The restore failed after this database took the target's place: the previous one returns.
        await withClient(admin, async (client) => {
          await dropDatabase(client, target);
          if (previousAside) {
            await moveDatabase(client, previous, target);
            await reopenDatabase(client, target);
          }
        });
        previousAside = false;
        promoted = false;
      }
      if (options.throwaway && promoted) await withClient(admin, (client) => dropDatabase(client, target));
    },
  };
}
