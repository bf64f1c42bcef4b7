// Restores a logical dump into PostgreSQL safely: into a fresh scratch database first (an age
// stream reveals truncation only at its end), promoted to the target name only once pg_restore or
// psql finished cleanly. Also loads plain SQL into an embedded PGlite for drills.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import pg from 'pg';
import { OrthIdError } from '../../core/errors.js';
import { CREATE_APP_ROLE_IF_MISSING } from './app-role.queries.js';
import type { PgliteDriver } from './pglite-driver.js';
import { describeDatabaseUrl } from './postgres-driver.js';

export type DumpFormat = 'custom' | 'plain';

/** Marks a database as restored from a set, so a restore that stopped later can resume. */
const RESTORED_FROM = 'orthid-restored-from:';

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

/** What is at the target now; reads through the server's maintenance database. */
export async function inspectTarget(targetUrl: string): Promise<TargetState> {
  const name = databaseName(targetUrl);
  const state = await withClient(withDatabase(targetUrl, 'postgres'), async (client) => {
    const { rows } = await client.query<{ comment: string | null }>(
      `SELECT shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = $1`,
      [name],
    );
    return rows[0];
  });
  if (!state) return { exists: false, tables: 0 };
  const tables = await withClient(targetUrl, async (client) => {
    const { rows } = await client.query<{ n: string }>(
      `SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public'`,
    );
    return Number(rows[0]!.n);
  });
  const restoredFrom = state.comment?.startsWith(RESTORED_FROM)
    ? state.comment.slice(RESTORED_FROM.length)
    : undefined;
  return { exists: true, tables, ...(restoredFrom ? { restoredFrom } : {}) };
}

/**
 * Roles are global to a cluster and not part of a database dump; the dump's GRANTs need the
 * application role to exist on the target server first.
 */
export async function ensureAppRole(serverUrl: string): Promise<void> {
  await withClient(withDatabase(serverUrl, 'postgres'), (client) => client.query(CREATE_APP_ROLE_IF_MISSING));
}

function run(command: string, args: string[], input: Readable, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'ignore', 'pipe'] });
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
          ['--no-owner', '--clean', '--if-exists', '--exit-on-error', '--dbname', scratchUrl],
          dump,
          'pg_restore',
        );
      } else {
        await run(
          options.psql ?? 'psql',
          ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '--dbname', scratchUrl, '-f', '-'],
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
