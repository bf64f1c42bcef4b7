// Applies the numbered .sql files beside this module in order, each in its own transaction,
// under an advisory lock so two processes never migrate the same database at once; then makes
// the application role and its grants whole, on every run.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { OrthIdError } from '../../core/errors.js';
import { type AppRoleChanges, ensureAppRoleExists, repairAppRoleGrants } from './app-role.js';
import type { Database, Queryable } from './database.js';
import { classifyDatabaseError, requireSupportedServer } from './database-errors.js';
import { assertMigratableWith, bindDeployment, type RecordedDeployment } from './deployment-binding.js';

/** Advisory lock key shared by every OrthID process migrating a database ("orthid:m"). */
const MIGRATION_LOCK = 0x6f7274686964_6dn.toString();

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export interface MigrationStatus {
  current: number;
  latest: number;
  pending: Migration[];
}

const MIGRATIONS_DIR = new URL('./migrations/', import.meta.url);

let cached: Promise<Migration[]> | undefined;

/** The migrations shipped with this build, ordered by version. */
export function loadMigrations(): Promise<Migration[]> {
  cached ??= (async () => {
    const files = (await readdir(MIGRATIONS_DIR)).filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f)).sort();
    return Promise.all(
      files.map(async (file) => {
        const sql = await readFile(new URL(file, MIGRATIONS_DIR), 'utf8');
        return {
          version: Number(file.slice(0, 4)),
          name: file.slice(5, -4),
          sql,
          checksum: createHash('sha256').update(sql).digest('hex'),
        };
      }),
    );
  })();
  return cached;
}

const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS orthid_migrations (
  version integer PRIMARY KEY,
  name text NOT NULL,
  checksum text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
)`;

async function applied(tx: Queryable): Promise<Map<number, string>> {
  const exists = await tx.query<{ t: string | null }>(`SELECT to_regclass('orthid_migrations')::text AS t`);
  if (!exists.rows[0]?.t) return new Map();
  const { rows } = await tx.query<{ version: number; checksum: string }>(
    'SELECT version, checksum FROM orthid_migrations ORDER BY version',
  );
  return new Map(rows.map((r) => [r.version, r.checksum]));
}

function checkHistory(done: Map<number, string>, all: Migration[]): void {
  for (const [version, checksum] of done) {
    const known = all.find((m) => m.version === version);
    if (!known) {
      throw new OrthIdError(
        'db.migration_failed',
        `The database has migration ${version}, which this OrthID does not know: it was migrated by a newer version. Run that version or restore a matching backup.`,
      );
    }
    if (known.checksum !== checksum) {
      throw new OrthIdError(
        'db.migration_failed',
        `Migration ${version} (${known.name}) was changed after it was applied; refusing to continue.`,
      );
    }
  }
}

export async function migrationStatus(db: Database): Promise<MigrationStatus> {
  const all = await loadMigrations();
  const done = await db.ownerTransaction(applied);
  checkHistory(done, all);
  const pending = all.filter((m) => !done.has(m.version));
  return { current: Math.max(0, ...done.keys()), latest: all.at(-1)?.version ?? 0, pending };
}

/**
 * Applies every pending migration and repairs the application role's grants (also when nothing
 * is pending: a database restored onto a fresh server has its tables but none of its grants).
 * Returns the versions applied by this call.
 */
export interface MigrateOptions {
  /** Logins that must be able to act as the application role (the server login). */
  members?: readonly string[];
  /** Hears every role or grant change, once, after the migrations. */
  onRepair?: (changes: AppRoleChanges) => void;
  /** Hears what migrate could not do itself, with the statement a superuser runs. */
  onWarning?: (message: string) => void;
  /**
   * The keystore's deployment id: a database bound to another is refused before anything is
   * applied, and one that records none is bound to this one (deployment-binding.ts).
   */
  deploymentId?: string;
  /** The root keys that keystore holds: an unbound database naming others is not bound to it. */
  rootKeyIds?: readonly string[];
  /** Hears the binding when this run recorded it. */
  onBind?: (binding: RecordedDeployment) => void;
}

export async function migrate(
  db: Database,
  onApply?: (m: Migration) => void,
  options: MigrateOptions = {},
): Promise<number[]> {
  const all = await loadMigrations();
  await requireSupportedServer(db);
  // First the role, which every migration's grants name: a login that may not create it is
  // told what to run before anything is applied.
  const role = await db.ownerTransaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    if (options.deploymentId) {
      await assertMigratableWith(tx, {
        deploymentId: options.deploymentId,
        ...(options.rootKeyIds ? { rootKeyIds: options.rootKeyIds } : {}),
      });
    }
    return ensureAppRoleExists(tx, options.members);
  });
  for (const warning of role.warnings) options.onWarning?.(warning);
  const appliedNow: number[] = [];
  for (const migration of all) {
    const didApply = await db.ownerTransaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await tx.exec(CREATE_TABLE);
      const done = await applied(tx);
      checkHistory(done, all);
      if (done.has(migration.version)) return false;
      onApply?.(migration);
      try {
        await tx.exec(migration.sql);
      } catch (cause) {
        const environment = classifyDatabaseError(cause);
        if (environment) {
          throw new OrthIdError(
            environment.code,
            `Migration ${migration.version} (${migration.name}) was not applied: ${environment.message}`,
            { cause, ...(environment.details ? { details: environment.details } : {}) },
          );
        }
        throw new OrthIdError(
          'db.migration_failed',
          `Migration ${migration.version} (${migration.name}) failed: ${(cause as Error).message}. Nothing from it was applied.`,
          { cause },
        );
      }
      await tx.query('INSERT INTO orthid_migrations (version, name, checksum) VALUES ($1, $2, $3)', [
        migration.version,
        migration.name,
        migration.checksum,
      ]);
      return true;
    });
    if (didApply) appliedNow.push(migration.version);
  }
  const grantChanges = await db.ownerTransaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    if (options.deploymentId) {
      const { binding, recorded } = await bindDeployment(tx, options.deploymentId);
      if (recorded) options.onBind?.(binding);
    }
    return repairAppRoleGrants(tx);
  });
  const changes = [...role.changes, ...grantChanges];
  if (changes.length > 0) options.onRepair?.(changes);
  return appliedNow;
}
