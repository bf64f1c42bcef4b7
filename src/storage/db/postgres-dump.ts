// Logical dumps of a real PostgreSQL for backups: `pg_dump` in custom format, streamed, reading a
// snapshot exported (and, on a standby, measured) beforehand; and the advisory lock that keeps one
// dump per deployment.
import { Transform, type TransformCallback } from 'node:stream';
import pg from 'pg';
import { OrthIdError } from '../../core/errors.js';
import { clientToolVersion, startClientTool } from './client-tool.js';
import {
  advisoryUnlock,
  endSnapshot,
  exportSnapshot,
  inRecovery,
  primaryWalPosition,
  recoveryConflictCounts,
  replayedPast,
  replayPositionBefore,
  schemaVersion,
  serverInfo,
  tryAdvisoryLock,
} from './dump.queries.js';
import type { DatabaseDump, DumpLock, DumpSnapshotSource, DumpSource } from './dump-source.js';
import { libpqConnection } from './libpq.js';
import { describeDatabaseUrl, openPostgres } from './postgres-driver.js';

/** Advisory lock key shared by every OrthID process dumping a deployment ("orthid:b"). */
export const BACKUP_LOCK = 0x6f7274686964_62n;

/**
 * pg_dump's zlib level. Sealed fields are AES-GCM ciphertext and do not compress, so higher
 * levels only burn CPU: measured by bench/backup-dump.bench.ts (see the README).
 */
export const PG_DUMP_COMPRESSION = 1;

/** 150018 → 15; before 10 a major was two numbers (90624 → 9.6). */
function majorOf(versionNum: number): number {
  const first = Math.floor(versionNum / 10000);
  return first >= 10 ? first : first + (Math.floor(versionNum / 100) % 100) / 10;
}

/** `pg_dump --version`: its text and major version; `backup.pg_dump_missing` when it does not run. */
export function pgDumpVersion(binary = 'pg_dump'): { text: string; major: number } {
  return clientToolVersion('pg_dump', binary);
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
  const tool = startClientTool(
    'pg_dump',
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
    { binary, env, stdout: true },
  );
  const stdout = tool.stdout!;
  if (snapshot) {
    // The custom format writes nothing before pg_dump has read every catalog, which it does
    // after importing the snapshot: from the first byte on, the exporting transaction is not needed.
    stdout.once('data', () => void snapshot.release());
  }
  const exit = tool.exit.then(
    async ({ code, signal }) => {
      // A conflict can end the exporting session before pg_dump imported the snapshot; pg_dump
      // then only says the snapshot is gone, and the session's own error tells why.
      const lost = await snapshot?.release();
      if (code === 0) return;
      const text = tool.stderr();
      const said = recoveryConflictIn(text) ? text : lost ? serverText(lost) : '';
      const conflict = recoveryConflictIn(said) ?? (await snapshot?.conflictSince());
      if (conflict) throw recoveryConflictError(conflict, url, said || text);
      throw new OrthIdError(
        'backup.dump_failed',
        `pg_dump of ${describeDatabaseUrl(url)} failed (${signal ?? `exit ${code}`}): ${text || 'no message'}`,
      );
    },
    (error: unknown) => {
      void snapshot?.release();
      throw error;
    },
  );
  const gate = new ExitGate(exit);
  stdout.pipe(gate);
  // Whoever stops reading (a failed upload) must not leave pg_dump running.
  gate.once('close', () => tool.kill('SIGTERM'));
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
      const server = await serverInfo(db);
      const serverVersion = server.version.split(' ')[0]!;
      assertPgDumpCanRead(tool, server.versionNum, serverVersion);
      if (!server.readsEveryTenant) {
        // Tenant tables FORCE row-level security, so only such a role can read every tenant.
        throw new OrthIdError(
          'backup.dump_forbidden',
          `The backup connection (${describeDatabaseUrl(options.dumpUrl)}) cannot read every tenant: its role must be a superuser or have BYPASSRLS (e.g. CREATE ROLE orthid_backup LOGIN BYPASSRLS IN ROLE pg_read_all_data). Set ORTHID_BACKUP_DATABASE_URL to such a login.`,
        );
      }
      return {
        engine: 'postgres',
        serverVersion,
        serverVersionNum: server.versionNum,
        dumpTool: tool.text,
        schemaVersion: await schemaVersion(db),
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
