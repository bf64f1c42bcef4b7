// The production driver: a node-postgres pool against a real PostgreSQL (15 or newer).
// Connection errors become `db.unavailable` with the host named and the password never shown.
import { createHash } from 'node:crypto';
import pg from 'pg';
import { OrthIdError } from '../../core/errors.js';
import type { Database, Queryable, QueryResult } from './database.js';

/** Describes a connection URL for messages: host, port and database, never the password. */
export function describeDatabaseUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname || 'localhost'}:${u.port || '5432'}${u.pathname}`;
  } catch {
    return 'the configured database';
  }
}

function connectionError(url: string, cause: unknown): OrthIdError {
  const reason =
    cause instanceof Error ? cause.message.replace(/password=\S+/g, 'password=***') : String(cause);
  return new OrthIdError(
    'db.unavailable',
    `Cannot reach PostgreSQL at ${describeDatabaseUrl(url)} (${reason}). Check ORTHID_DATABASE_URL and that the server is running.`,
    { cause },
  );
}

/** Past this many distinct statements (none expected: SQL is static) new ones go unnamed. */
const MAX_NAMED_STATEMENTS = 2_000;
const statementNames = new Map<string, string>();

/**
 * A server-side prepared statement name for a parameterised query, so each connection parses
 * and plans it once instead of on every call (most of PostgreSQL's work for a short lookup).
 * Plans still follow role and schema changes: PostgreSQL replans on invalidation.
 */
function statementName(sql: string): string | undefined {
  let name = statementNames.get(sql);
  if (!name && statementNames.size < MAX_NAMED_STATEMENTS) {
    name = `orthid_${createHash('sha256').update(sql).digest('base64url').slice(0, 22)}`;
    statementNames.set(sql, name);
  }
  return name;
}

function wrap(client: pg.PoolClient | pg.Pool): Queryable {
  return {
    async query<Row>(sql: string, params: readonly unknown[] = []): Promise<QueryResult<Row>> {
      const result =
        params.length > 0
          ? await client.query({ name: statementName(sql), text: sql, values: params as unknown[] })
          : await client.query(sql);
      return { rows: result.rows as Row[], rowCount: result.rowCount ?? 0 };
    },
    async exec(sql: string): Promise<void> {
      await client.query(sql);
    },
  };
}

export interface PostgresOptions {
  max?: number;
  applicationName?: string;
}

export async function openPostgres(url: string, options: PostgresOptions = {}): Promise<Database> {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'orthid',
  });
  // An idle client's error (e.g. the server restarting) must not crash the process.
  pool.on('error', () => {});
  try {
    const client = await pool.connect();
    client.release();
  } catch (cause) {
    await pool.end().catch(() => {});
    throw connectionError(url, cause);
  }
  const direct = wrap(pool);
  return {
    engine: 'postgres',
    async ownerTransaction(fn, setup) {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (cause) {
        throw connectionError(url, cause);
      }
      try {
        await client.query(setup ? `BEGIN; ${setup}` : 'BEGIN');
        const result = await fn(wrap(client));
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    },
    ownerQuery: (sql, params) => direct.query(sql, params),
    async listen(channel, onPayload) {
      // A dedicated connection: pooled clients are shared and would drop the subscription.
      const client = new pg.Client({ connectionString: url, application_name: 'orthid-listen' });
      client.on('error', () => {});
      await client.connect().catch((cause) => {
        throw connectionError(url, cause);
      });
      client.on('notification', (message) => {
        if (message.channel === channel) onPayload(message.payload ?? '');
      });
      await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
      return async () => {
        await client.end().catch(() => {});
      };
    },
    async serverVersion() {
      const { rows } = await direct.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`);
      return Number(rows[0]!.v);
    },
    close: () => pool.end(),
  };
}
