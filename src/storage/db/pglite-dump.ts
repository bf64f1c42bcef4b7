// Logical dumps of the embedded database (PGlite) for backups, and the lock file that keeps one
// dump per deployment.
//
// Embedded dumps run against a snapshot, not the live instance: PGlite has a single session, and
// pg_dump run on it would interleave its protocol messages with the server's queries and leave
// its session settings (row_security = off, search_path = '') behind. So the live database is
// paused only for as long as copying its data directory takes, the copy is opened as a second
// in-memory instance, and that is dumped. pglite-tools returns the dump as one string, so an
// embedded dump is held in memory once; embedded databases are small by design, and production
// (real PostgreSQL) streams end to end.
import { Readable } from 'node:stream';
import { PGlite } from '@electric-sql/pglite';
import { pgDump as pgliteDump } from '@electric-sql/pglite-tools/pg_dump';
import { type Clock, systemClock } from '../../core/clock.js';
import { OrthIdError } from '../../core/errors.js';
import { CREATE_APP_ROLE_IF_MISSING } from './app-role.queries.js';
import type { Database } from './database.js';
import { schemaVersion, serverInfo } from './dump.queries.js';
import type { DumpLock, DumpSource } from './dump-source.js';
import type { PgliteDriver } from './pglite-driver.js';
import { acquirePidLock } from './pid-lock.js';

/** Settings newer pg_dump (17+, which PGlite embeds) writes but PostgreSQL 15 rejects. */
const NEWER_SETTINGS = ['transaction_timeout'];

function pgliteOf(db: Database): PGlite {
  const pglite = (db as Partial<PgliteDriver>).pglite;
  if (db.engine !== 'pglite' || !(pglite instanceof PGlite)) {
    throw new OrthIdError('internal.unexpected', 'An embedded dump needs the embedded database.');
  }
  return pglite;
}

/**
 * The dump's lock file (a kernel lock, gone with its process). Unlike the database lock it is not
 * re-entrant: two dumps forwarded to the same server run in one process and must still exclude
 * each other.
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
            `Another backup dump of this deployment holds ${path}; wait for it to finish.`,
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
export function pgliteDumpSource(db: Database, lockFile: string, clock: Clock = systemClock): DumpSource {
  const pglite = pgliteOf(db);
  return {
    engine: 'pglite',
    db,
    async describe() {
      const server = await serverInfo(db);
      const serverVersion = server.version.split(' ')[0]!;
      return {
        engine: 'pglite',
        serverVersion,
        serverVersionNum: server.versionNum,
        dumpTool: `pglite-tools pg_dump (PostgreSQL ${serverVersion})`,
        schemaVersion: await schemaVersion(db),
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
      const snapshotAt = clock.now().toISOString();
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
