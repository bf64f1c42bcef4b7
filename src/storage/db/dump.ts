// Logical dumps of the OrthID database for backups: the real `pg_dump` (custom format, streamed)
// against PostgreSQL, `pglite-tools` (plain SQL) on the embedded default, and the lock that keeps
// one dump per deployment. The only place backup code learns which driver it is talking to.
//
// Embedded dumps run against a snapshot, not the live instance: PGlite has a single session, and
// pg_dump run on it would interleave its protocol messages with the server's queries and leave
// its session settings (row_security = off, search_path = '') behind. So the live database is
// paused only for as long as copying its data directory takes, the copy is opened as a second
// in-memory instance, and that is dumped. pglite-tools returns the dump as one string, so an
// embedded dump is held in memory once; embedded databases are small by design, and production
// (real PostgreSQL) streams end to end.
import { spawn, spawnSync } from 'node:child_process';
import { Readable, Transform, type TransformCallback, type Writable } from 'node:stream';
import { PGlite } from '@electric-sql/pglite';
import { pgDump as pgliteDump } from '@electric-sql/pglite-tools/pg_dump';
import pg from 'pg';
import { OrthIdError } from '../../core/errors.js';
import { CREATE_APP_ROLE_IF_MISSING } from './app-role.queries.js';
import type { Database, Engine } from './database.js';
import {
  advisoryUnlock,
  endSnapshot,
  exportSnapshot,
  inRecovery,
  primaryWalPosition,
  recoveryConflictCounts,
  replayedPast,
  replayPositionBefore,
  tryAdvisoryLock,
} from './dump.queries.js';
import { libpqConnection } from './libpq.js';
import type { PgliteDriver } from './pglite-driver.js';
import { acquirePidLock } from './pid-lock.js';
import { describeDatabaseUrl, openPostgres } from './postgres-driver.js';

/** Advisory lock key shared by every OrthID process dumping a deployment ("orthid:b"). */
export const BACKUP_LOCK = 0x6f7274686964_62n;

/**
 * pg_dump's zlib level. Sealed fields are AES-GCM ciphertext and do not compress, so higher
 * levels only burn CPU: measured by bench/backup-dump.bench.ts (see the README).
 */
export const PG_DUMP_COMPRESSION = 1;

/**
 * The latest migration applied to `db` (0 before the first). Read directly rather than through
 * migrationStatus(): a backup must succeed even of a database a newer OrthID has migrated.
 */
async function schemaVersionOf(db: Database): Promise<number> {
  const { rows } = await db.ownerQuery<{ v: number | null }>(
    `SELECT CASE WHEN to_regclass('orthid_migrations') IS NULL THEN 0
            ELSE (SELECT coalesce(max(version), 0) FROM orthid_migrations) END AS v`,
  );
  return Number(rows[0]?.v ?? 0);
}

/** Settings newer pg_dump (17+, which PGlite embeds) writes but PostgreSQL 15 rejects. */
const NEWER_SETTINGS = ['transaction_timeout'];

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

// ---------------------------------------------------------------------------------------------
// Real PostgreSQL

/** 150018 → 15; before 10 a major was two numbers (90624 → 9.6). */
function majorOf(versionNum: number): number {
  const first = Math.floor(versionNum / 10000);
  return first >= 10 ? first : first + (Math.floor(versionNum / 100) % 100) / 10;
}

/** `pg_dump --version`: its text and major version; `backup.pg_dump_missing` when it does not run. */
export function pgDumpVersion(binary = 'pg_dump'): { text: string; major: number } {
  const probe = spawnSync(binary, ['--version'], { encoding: 'utf8' });
  const text = (probe.stdout ?? '').trim();
  const match = /\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/.exec(text);
  if (probe.error || probe.status !== 0 || !match) {
    throw new OrthIdError(
      'backup.pg_dump_missing',
      `${binary} is not installed or does not run. Install the PostgreSQL client of the server's major version or newer (Debian: apt-get install -y postgresql-client-NN from apt.postgresql.org).`,
    );
  }
  const major = Number(match[1]);
  // Before 10, majors were two numbers (9.6).
  return { text, major: major >= 10 ? major : Number(`${match[1]}.${match[2] ?? 0}`) };
}

/** Refuses a pg_dump older than the server: it can silently miss what it does not know (GitLab, 2017). */
export function assertPgDumpCanRead(
  tool: { text: string; major: number },
  serverVersionNum: number,
  serverVersion: string,
): void {
  const serverMajor = majorOf(serverVersionNum);
  if (tool.major < serverMajor) {
    throw new OrthIdError(
      'backup.pg_dump_too_old',
      `${tool.text} cannot safely dump PostgreSQL ${serverVersion}: pg_dump must be of major version ${serverMajor} or newer. Install postgresql-client-${serverMajor} (or newer) and put it first on PATH.`,
      { details: { pgDump: tool.text, server: serverVersion } },
    );
  }
}

/** Keeps only the end of a child's stderr, for the error message. */
function tailOf(stream: Readable, limit = 4096): () => string {
  let text = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    text = (text + chunk).slice(-limit);
  });
  return () => text.trim();
}

/**
 * Passes bytes through, but ends only once `exit` says the producer succeeded: a dump tool that
 * dies half-way closes its stdout like one that finished, and a truncated dump must never be stored.
 */
class ExitGate extends Transform {
  constructor(private readonly exit: Promise<void>) {
    super();
    // A failure that arrives while data still flows must stop the pipeline at once.
    exit.catch((error: Error) => this.destroy(error));
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.exit.then(() => callback(), callback);
  }
}

/** The kinds of recovery conflict a hot standby cancels a query for (pg_stat_database_conflicts). */
export type RecoveryConflictKind = 'snapshot' | 'lock' | 'bufferpin' | 'deadlock' | 'tablespace' | 'database';

/** The server's DETAIL line for each kind (src/backend/tcop/postgres.c). */
const CONFLICT_DETAILS: [RegExp, RecoveryConflictKind][] = [
  [/row versions that must be removed/, 'snapshot'],
  [/relation lock for too long/, 'lock'],
  [/shared buffer pin for too long/, 'bufferpin'],
  [/buffer deadlock with recovery/, 'deadlock'],
  [/tablespace that must be dropped/, 'tablespace'],
  [/database that must be dropped/, 'database'],
];

/**
 * The recovery conflict `text` (pg_dump's stderr, or a server error's message and detail) reports,
 * or undefined. `unknown` when the server said "conflict with recovery" without a known detail.
 */
export function recoveryConflictIn(text: string): RecoveryConflictKind | 'unknown' | undefined {
  if (!/conflict with recovery/.test(text)) return undefined;
  return CONFLICT_DETAILS.find(([pattern]) => pattern.test(text))?.[1] ?? 'unknown';
}

/** `backup.recovery_conflict`, naming the standby setting that would have let the dump finish. */
export function recoveryConflictError(
  kind: RecoveryConflictKind | 'unknown',
  url: string,
  serverMessage: string,
): OrthIdError {
  const where = describeDatabaseUrl(url);
  const [why, fix, setting] =
    kind === 'snapshot'
      ? [
          "VACUUM on the primary removed row versions the dump's snapshot still needed",
          'Set hot_standby_feedback = on on the standby (the primary then keeps those rows until the dump ends), or raise max_standby_streaming_delay above the time a dump takes',
          'hot_standby_feedback',
        ]
      : kind === 'lock' || kind === 'bufferpin' || kind === 'deadlock'
        ? [
            'the primary took an ACCESS EXCLUSIVE lock (a migration, DROP, TRUNCATE, or VACUUM shortening a table) on a table the dump was reading',
            'Raise max_standby_streaming_delay on the standby above the time a dump takes (hot_standby_feedback does not prevent lock conflicts), or run the dump away from migrations',
            'max_standby_streaming_delay',
          ]
        : [
            'the standby had to replay a change the dump stood in the way of',
            'Raise max_standby_streaming_delay on the standby above the time a dump takes, and set hot_standby_feedback = on',
            'max_standby_streaming_delay',
          ];
  const lines = serverMessage.split('\n');
  const said = [lines.find((l) => /conflict with recovery/.test(l)), lines.find((l) => /^DETAIL:/.test(l))]
    .filter((l): l is string => l !== undefined)
    .map((l) => l.replace(/^.*?(ERROR|FATAL|DETAIL):\s+/, '').replace(/\.$/, ''))
    .join(': ');
  const evidence = said
    ? `The server said: ${said}`
    : `pg_dump lost its connection, and the standby counted a ${kind} conflict in pg_stat_database_conflicts meanwhile`;
  return new OrthIdError(
    'backup.recovery_conflict',
    `The dump of ${where} was cancelled by a recovery conflict on the standby: ${why}. ${fix}, then run the dump again. No complete set was written. (${evidence}.)`,
    { details: { conflict: kind, setting } },
  );
}

/** An exported snapshot, held open by its transaction until pg_dump has imported it. */
interface ExportedSnapshot {
  id: string;
  source: DumpSnapshotSource;
  /**
   * Ends the exporting transaction and its connection; resolves with the error that ended the
   * session early (a recovery conflict terminates an idle transaction on a standby), if any.
   */
  release(): Promise<unknown>;
  /**
   * The kind of recovery conflict the standby counted in this database since the snapshot, if
   * any. A conflict with a session idle in its transaction terminates it, and pg_dump, blocked
   * meanwhile on its own output, then only finds the connection closed: the count says why.
   */
  conflictSince(): Promise<RecoveryConflictKind | undefined>;
}

/**
 * Exports the snapshot pg_dump will read and measures where it stands, on a standby. The replay
 * position is read just before the snapshot is taken: recovery moves it past a record only after
 * applying it, so every transaction whose commit record ends at or before it is visible to the
 * snapshot (the lower bound, what the set promises). Just after, the received WAL position is
 * read: a record the snapshot sees had been received, so none it sees ends after it (the upper
 * bound). pg_dump then reads this very snapshot (`--snapshot`, which a standby can export since
 * PostgreSQL 10), so the two positions bound the dump's data, not a moment near it.
 */
async function exportDumpSnapshot(url: string): Promise<ExportedSnapshot> {
  const client = new pg.Client({ connectionString: url, application_name: 'orthid-backup' });
  let lost: unknown;
  client.on('error', (error) => {
    lost ??= error;
  });
  try {
    await client.connect();
  } catch (cause) {
    throw new OrthIdError(
      'db.unavailable',
      `Cannot reach PostgreSQL at ${describeDatabaseUrl(url)} to dump it.`,
      {
        cause,
      },
    );
  }
  let id: string;
  let source: DumpSnapshotSource;
  let conflicts: Record<string, number> | undefined;
  try {
    const before = await replayPositionBefore(client);
    conflicts = before.standby ? await recoveryConflictCounts(client) : undefined;
    const exported = await exportSnapshot(client);
    id = exported.snapshot;
    source = {
      standby: before.standby,
      snapshotAt: exported.at.toISOString(),
      ...(before.standby && before.lsn !== null
        ? {
            replay: {
              lsn: before.lsn,
              lsnAfter: exported.lsnAfter ?? before.lsn,
              lastCommitAt: before.lastCommitAt?.toISOString() ?? null,
            },
          }
        : {}),
    };
  } catch (cause) {
    await client.end().catch(() => {});
    const conflict = recoveryConflictIn(serverText(cause));
    if (conflict) throw recoveryConflictError(conflict, url, serverText(cause));
    throw new OrthIdError(
      'backup.dump_failed',
      `Could not take the dump's snapshot on ${describeDatabaseUrl(url)}: ${(cause as Error).message}`,
      { cause },
    );
  }
  let released: Promise<unknown> | undefined;
  return {
    id,
    source,
    release() {
      released ??= (async () => {
        try {
          await endSnapshot(client);
        } catch (error) {
          lost ??= error;
        }
        await client.end().catch(() => {});
        return lost;
      })();
      return released;
    },
    async conflictSince() {
      if (conflicts === undefined) return undefined;
      const counter = new pg.Client({ connectionString: url, application_name: 'orthid-backup' });
      counter.on('error', () => {});
      try {
        await counter.connect();
        const now = await recoveryConflictCounts(counter);
        const kind = Object.keys(now).find((k) => now[k]! > (conflicts![k] ?? 0));
        return kind as RecoveryConflictKind | undefined;
      } catch {
        return undefined;
      } finally {
        await counter.end().catch(() => {});
      }
    },
  };
}

/** A server error's message and detail, as pg_dump would print them. */
function serverText(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const detail = (error as { detail?: unknown }).detail;
  return typeof detail === 'string' ? `${error.message}\nDETAIL: ${detail}` : error.message;
}

/**
 * Spawns `pg_dump --format=custom --no-owner` and streams its archive; with `snapshot`, pg_dump
 * reads that exported snapshot, whose transaction is ended once pg_dump has imported it.
 */
export function spawnPgDump(
  url: string,
  compression = PG_DUMP_COMPRESSION,
  binary = 'pg_dump',
  snapshot?: ExportedSnapshot,
): DatabaseDump {
  const { dbname, env } = libpqConnection(url, 'orthid-backup');
  const child = spawn(
    binary,
    [
      '--format=custom',
      '--no-owner',
      `--compress=${compression}`,
      // A migration holding an exclusive lock should fail the nightly dump, not hang it forever.
      '--lock-wait-timeout=120000',
      // The password comes in PGPASSWORD; without one, fail rather than prompt on a terminal.
      '--no-password',
      ...(snapshot ? [`--snapshot=${snapshot.id}`] : []),
      `--dbname=${dbname}`,
    ],
    { env, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const stderr = tailOf(child.stderr);
  if (snapshot) {
    // The custom format writes nothing before pg_dump has read every catalog, which it does
    // after importing the snapshot: from the first byte on, the exporting transaction is not needed.
    child.stdout.once('data', () => void snapshot.release());
  }
  const exit = new Promise<void>((resolve, reject) => {
    child.once('error', (cause) => {
      void snapshot?.release();
      reject(
        new OrthIdError('backup.pg_dump_missing', `${binary} could not be started: ${cause.message}`, {
          cause,
        }),
      );
    });
    child.once('close', async (code, signal) => {
      // A conflict can end the exporting session before pg_dump imported the snapshot; pg_dump
      // then only says the snapshot is gone, and the session's own error tells why.
      const lost = await snapshot?.release();
      if (code === 0) return resolve();
      const text = stderr();
      const said = recoveryConflictIn(text) ? text : lost ? serverText(lost) : '';
      const conflict = recoveryConflictIn(said) ?? (await snapshot?.conflictSince());
      if (conflict) return reject(recoveryConflictError(conflict, url, said || text));
      reject(
        new OrthIdError(
          'backup.dump_failed',
          `pg_dump of ${describeDatabaseUrl(url)} failed (${signal ?? `exit ${code}`}): ${text || 'no message'}`,
        ),
      );
    });
  });
  const gate = new ExitGate(exit);
  child.stdout.pipe(gate);
  // Whoever stops reading (a failed upload) must not leave pg_dump running.
  gate.once('close', () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  });
  return {
    format: 'custom',
    compression: `gzip:${compression}`,
    stream: gate,
    ...(snapshot ? { source: snapshot.source } : {}),
  };
}

/** How long a dump waits for a standby to replay what the primary had when the dump began. */
const STANDBY_CATCH_UP_MS = 60_000;

async function connected(url: string, applicationName: string, purpose: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: applicationName });
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (cause) {
    throw new OrthIdError(
      'db.unavailable',
      `Cannot reach PostgreSQL at ${describeDatabaseUrl(url)} ${purpose}.`,
      {
        cause,
      },
    );
  }
  return client;
}

/**
 * Waits until the standby at `dumpUrl` has replayed the primary's WAL up to where it stood now.
 * Everything the deployment wrote before the dump began (its audit checkpoints among it) is then
 * in the snapshot, so a set taken from a lagging replica never disagrees with the checkpoints its
 * manifest names. A no-op when `dumpUrl` is the primary.
 */
async function awaitStandbyCatchUp(dumpUrl: string, primaryUrl: string): Promise<void> {
  if (dumpUrl === primaryUrl) return;
  const primary = await connected(primaryUrl, 'orthid-backup', 'to read its WAL position');
  const target = await primaryWalPosition(primary).finally(() => primary.end().catch(() => {}));
  const standby = await connected(dumpUrl, 'orthid-backup', 'to dump it');
  try {
    const deadline = Date.now() + STANDBY_CATCH_UP_MS;
    for (;;) {
      const replay = await replayedPast(standby, target);
      if (!replay.standby || replay.done) return;
      if (Date.now() > deadline) {
        throw new OrthIdError(
          'backup.dump_failed',
          `The standby at ${describeDatabaseUrl(dumpUrl)} has replayed the primary's WAL only to ${replay.at}, not to ${target} where the primary stood when the dump began, after ${STANDBY_CATCH_UP_MS / 1000} s. Check its replication (pg_stat_replication on the primary), or dump the primary.`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } finally {
    await standby.end().catch(() => {});
  }
}

/** A session-level advisory lock on a connection of its own, held until released or disconnected. */
async function advisoryLock(url: string): Promise<DumpLock> {
  const client = await connected(url, 'orthid-backup-lock', 'to take the backup lock');
  if (await inRecovery(client)) {
    await client.end().catch(() => {});
    // Advisory locks on a standby are its own: dumps from two replicas would both get one.
    throw new OrthIdError(
      'config.invalid',
      `ORTHID_DATABASE_URL (${describeDatabaseUrl(url)}) is a standby, and the backup lock must be taken on the primary every replica shares, or dumps from different replicas would run at once. Point ORTHID_DATABASE_URL at the primary; ORTHID_BACKUP_DATABASE_URL names the replica to dump.`,
    );
  }
  if (!(await tryAdvisoryLock(client, BACKUP_LOCK))) {
    await client.end().catch(() => {});
    throw new OrthIdError(
      'backup.locked',
      'Another backup dump of this deployment is running (it holds the backup lock); wait for it to finish. Only one dump runs at a time.',
    );
  }
  return {
    async release() {
      await advisoryUnlock(client, BACKUP_LOCK).catch(() => {});
      await client.end().catch(() => {});
    },
  };
}

export interface PostgresDumpOptions {
  /** What to dump: the backup connection (a replica, or the owner). */
  dumpUrl: string;
  /** Where the deployment-wide lock is taken: the primary every replica of the deployment shares. */
  lockUrl: string;
  /** The pg_dump binary (default: `pg_dump` on PATH). */
  pgDump?: string;
}

/** A dump source over a real PostgreSQL. */
export async function openPostgresDumpSource(options: PostgresDumpOptions): Promise<DumpSource> {
  const db = await openPostgres(options.dumpUrl, { max: 2, applicationName: 'orthid-backup' });
  const binary = options.pgDump ?? 'pg_dump';
  return {
    engine: 'postgres',
    db,
    async describe() {
      const tool = pgDumpVersion(binary);
      const { rows } = await db.ownerQuery<{ version: string; num: string; can: boolean }>(
        `SELECT current_setting('server_version') AS version, current_setting('server_version_num') AS num,
                (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user) AS can`,
      );
      const row = rows[0]!;
      const serverVersion = row.version.split(' ')[0]!;
      assertPgDumpCanRead(tool, Number(row.num), serverVersion);
      if (!row.can) {
        // Tenant tables FORCE row-level security, so only such a role can read every tenant.
        throw new OrthIdError(
          'backup.dump_forbidden',
          `The backup connection (${describeDatabaseUrl(options.dumpUrl)}) cannot read every tenant: its role must be a superuser or have BYPASSRLS (e.g. CREATE ROLE orthid_backup LOGIN BYPASSRLS IN ROLE pg_read_all_data). Set ORTHID_BACKUP_DATABASE_URL to such a login.`,
        );
      }
      return {
        engine: 'postgres',
        serverVersion,
        serverVersionNum: Number(row.num),
        dumpTool: tool.text,
        schemaVersion: await schemaVersionOf(db),
      };
    },
    lock: () => advisoryLock(options.lockUrl),
    async dump() {
      await awaitStandbyCatchUp(options.dumpUrl, options.lockUrl);
      const snapshot = await exportDumpSnapshot(options.dumpUrl);
      return spawnPgDump(options.dumpUrl, PG_DUMP_COMPRESSION, binary, snapshot);
    },
    close: () => db.close(),
  };
}

// ---------------------------------------------------------------------------------------------
// Embedded (PGlite)

function pgliteOf(db: Database): PGlite {
  const pglite = (db as Partial<PgliteDriver>).pglite;
  if (db.engine !== 'pglite' || !(pglite instanceof PGlite)) {
    throw new OrthIdError('internal.unexpected', 'An embedded dump needs the embedded database.');
  }
  return pglite;
}

/**
 * A lock file holding the dumping process's pid. Unlike the database lock it is not re-entrant:
 * two dumps forwarded to the same server run in one process and must still exclude each other.
 */
export function acquireDumpLockFile(path: string): Promise<DumpLock> {
  return acquirePidLock(path, {
    reentrant: false,
    locked: (pid) =>
      pid > 0
        ? new OrthIdError(
            'backup.locked',
            `Another backup dump of this deployment is running (process ${pid} holds ${path}); wait for it to finish.`,
            { details: { pid } },
          )
        : new OrthIdError(
            'backup.locked',
            `Could not take the backup lock ${path}; remove it if no dump is running.`,
          ),
  });
}

/** Drops settings PostgreSQL 15 does not know and stays line-oriented, so memory is one line at a time. */
export function* pgliteSqlForPostgres15(sql: string): Generator<Buffer> {
  const drop = new RegExp(`^SET (${NEWER_SETTINGS.join('|')}) = .*;$`);
  // pg_dump never dumps roles; the policies and grants name the application role, so a fresh
  // cluster gets it here exactly as migration 0001 creates it.
  yield Buffer.from(
    [
      '-- Added by OrthID: the application role the grants below name (roles are global, so pg_dump omits them).',
      `${CREATE_APP_ROLE_IF_MISSING};`,
      '',
      '',
    ].join('\n'),
  );
  let batch: string[] = [];
  let size = 0;
  let start = 0;
  while (start < sql.length) {
    let end = sql.indexOf('\n', start);
    if (end === -1) end = sql.length;
    const line = sql.slice(start, end);
    start = end + 1;
    if (drop.test(line)) continue;
    batch.push(line);
    size += line.length + 1;
    if (size >= 64 * 1024) {
      yield Buffer.from(`${batch.join('\n')}\n`);
      batch = [];
      size = 0;
    }
  }
  if (batch.length > 0) yield Buffer.from(`${batch.join('\n')}${sql.endsWith('\n') ? '\n' : ''}`);
}

/** A dump source over the embedded database `db`; `lockFile` lives in the data directory. */
export function pgliteDumpSource(db: Database, lockFile: string): DumpSource {
  const pglite = pgliteOf(db);
  return {
    engine: 'pglite',
    db,
    async describe() {
      const { rows } = await db.ownerQuery<{ version: string; num: string }>(
        `SELECT current_setting('server_version') AS version, current_setting('server_version_num') AS num`,
      );
      const serverVersion = rows[0]!.version.split(' ')[0]!;
      return {
        engine: 'pglite',
        serverVersion,
        serverVersionNum: Number(rows[0]!.num),
        dumpTool: `pglite-tools pg_dump (PostgreSQL ${serverVersion})`,
        schemaVersion: await schemaVersionOf(db),
      };
    },
    lock: () => acquireDumpLockFile(lockFile),
    async dump() {
      // Writes since the last checkpoint are in the WAL and replayed when the copy opens; the
      // checkpoint only makes that replay short.
      await pglite.exec('CHECKPOINT');
      // The transaction mutex keeps every query and transaction out while the files are copied,
      // so the copy is of committed state. (query/exec/transaction all take it first.)
      const snapshot = await pglite._runExclusiveTransaction(() => pglite.dumpDataDir('none'));
      const snapshotAt = new Date().toISOString();
      const copy = await PGlite.create({ loadDataDir: snapshot });
      let sql: string;
      try {
        const file = await pgliteDump({ pg: copy, args: ['--no-owner'] });
        sql = await file.text();
      } catch (cause) {
        throw new OrthIdError(
          'backup.dump_failed',
          `The embedded database could not be dumped: ${(cause as Error).message}`,
          { cause },
        );
      } finally {
        await copy.close();
      }
      return {
        format: 'plain',
        compression: 'none',
        stream: Readable.from(pgliteSqlForPostgres15(sql)),
        source: { standby: false, snapshotAt },
      };
    },
    // The caller owns `db`.
    close: async () => {},
  };
}

// ---------------------------------------------------------------------------------------------
// Reading dumps back (verify)

/** Resolves once `stream` can take more, or has closed (the reader went away). */
function drained(stream: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      stream.off('error', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
    stream.on('error', done);
  });
}

/**
 * Feeds a custom-format archive to `pg_restore --list` and returns how many TOC entries it read;
 * `backup.dump_unreadable` when pg_restore cannot read it. The input is read to its end even
 * after pg_restore has what it needs, so a caller decrypting it still authenticates every byte.
 */
export async function pgRestoreList(
  archive: AsyncIterable<Buffer>,
  binary = 'pg_restore',
): Promise<{ entries: number }> {
  const child = spawn(binary, ['--list'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const stderr = tailOf(child.stderr);
  let entries = 0;
  let partial = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() ?? '';
    entries += lines.filter((line) => line !== '' && !line.startsWith(';')).length;
  });
  const exit = new Promise<number | null>((resolve, reject) => {
    child.once('error', (cause) =>
      reject(
        new OrthIdError(
          'backup.pg_dump_missing',
          `${binary} could not be started (${cause.message}); install the PostgreSQL client.`,
          { cause },
        ),
      ),
    );
    child.once('close', (code) => resolve(code));
  });
  exit.catch(() => {}); // awaited below, after the input is read
  // pg_restore stops reading once it has the table of contents: later writes fail with EPIPE.
  child.stdin.on('error', () => {});
  try {
    for await (const chunk of archive) {
      if (child.stdin.writable && !child.stdin.write(chunk)) await drained(child.stdin);
    }
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  child.stdin.end();
  const code = await exit;
  if (code !== 0) {
    throw new OrthIdError(
      'backup.dump_unreadable',
      `pg_restore --list cannot read the dump: ${stderr() || `exit ${code}`}`,
    );
  }
  return { entries };
}
