// The embedded driver: a real PostgreSQL compiled to WebAssembly, running in this process and
// persisting to the data directory. One connection, so transactions are serialised by PGlite.
import { mkdir } from 'node:fs/promises';
import { PGlite, types } from '@electric-sql/pglite';
import { OrthIdError } from '../../core/errors.js';
import type { Database, Queryable, QueryResult } from './database.js';

/**
 * Postgres zeroes its shared memory at start, and PGlite runs that memset in WebAssembly before
 * V8 has optimised it: at the stock 128 MB of shared_buffers that alone was ~0.4 s of every
 * start. One in-process backend needs far less; a page that misses is one read from the OS
 * page cache, not from disk.
 */
const START_PARAMS = [...PGlite.defaultStartParams, '-c', 'shared_buffers=16MB'];

/** Make PGlite return the same JavaScript types as node-postgres, so queries are driver-agnostic. */
const parsers = {
  [types.INT8]: (value: string) => value,
  [types.NUMERIC]: (value: string) => value,
};

function wrap(target: Pick<PGlite, 'query' | 'exec'>): Queryable {
  return {
    async query<Row>(sql: string, params: readonly unknown[] = []): Promise<QueryResult<Row>> {
      const result = await target.query<Row>(sql, params as unknown[]);
      // PGlite reports 0 affected rows for SELECT; node-postgres reports the rows returned.
      return { rows: result.rows, rowCount: result.affectedRows || result.rows.length };
    },
    async exec(sql: string): Promise<void> {
      await target.exec(sql);
    },
  };
}

export interface PgliteDriver extends Database {
  /** The underlying instance, for embedded dumps (pglite-tools) and nothing else. */
  readonly pglite: PGlite;
}

/** Opens (creating when absent) the embedded database at `dir`, or in memory for `memory://`. */
export async function openPglite(
  dir: string | 'memory://',
  options: { loadDataDir?: Blob } = {},
): Promise<PgliteDriver> {
  if (dir !== 'memory://') await mkdir(dir, { recursive: true });
  let pglite: PGlite;
  try {
    pglite = await PGlite.create({
      ...(dir === 'memory://' ? {} : { dataDir: dir }),
      ...(options.loadDataDir ? { loadDataDir: options.loadDataDir } : {}),
      startParams: START_PARAMS,
      parsers,
    });
  } catch (cause) {
    throw new OrthIdError(
      'db.unavailable',
      `Could not open the embedded database at ${dir}. Is another OrthID process using this data directory?`,
      { cause },
    );
  }
  const direct = wrap(pglite);
  return {
    engine: 'pglite',
    pglite,
    ownerTransaction: (fn, setup) =>
      pglite.transaction(async (tx) => {
        if (setup) await tx.exec(setup);
        return fn(wrap(tx));
      }),
    statements: (setup) => ({
      query: (sql, params) =>
        pglite.transaction(async (tx) => {
          await tx.query(setup.sql, setup.params as unknown[]);
          return wrap(tx).query(sql, params);
        }),
      exec: (sql) =>
        pglite.transaction(async (tx) => {
          await tx.query(setup.sql, setup.params as unknown[]);
          await tx.exec(sql);
        }),
    }),
    ownerQuery: (sql, params) => direct.query(sql, params),
    // In process: the subscription cannot be lost, so there is no connection state to report.
    async listen(channel, onPayload) {
      const unlisten = await pglite.listen(channel, onPayload);
      return () => unlisten();
    },
    async serverVersion() {
      const { rows } = await direct.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`);
      return Number(rows[0]!.v);
    },
    close: () => pglite.close(),
  };
}
