// The production driver: a node-postgres pool against a real PostgreSQL (15 or newer).
// Connection errors become `db.unavailable` with the host named and the password never shown;
// a connection lost mid-request fails that request the same way and never the process.
import { createHash } from 'node:crypto';
import pg from 'pg';
import { OrthIdError } from '../../core/errors.js';
import type { Database, Queryable, QueryResult } from './database.js';
import { classifyDatabaseError } from './database-errors.js';
import { asConnectionLoss, isConnectionLoss } from './pg-errors.js';

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
  const classified = classifyDatabaseError(cause, { where: describeDatabaseUrl(url) });
  if (classified) return classified;
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
      try {
        const result =
          params.length > 0
            ? await client.query({ name: statementName(sql), text: sql, values: params as unknown[] })
            : await client.query(sql);
        return { rows: result.rows as Row[], rowCount: result.rowCount ?? 0 };
      } catch (error) {
        throw asConnectionLoss(error);
      }
    },
    async exec(sql: string): Promise<void> {
      try {
        await client.query(sql);
      } catch (error) {
        throw asConnectionLoss(error);
      }
    },
  };
}

/** Back to the pool, or out of it when its connection is gone (it would fail the next request). */
function release(client: pg.PoolClient, error: unknown): void {
  client.release(isConnectionLoss(error) ? (error as Error) : undefined);
}

/** Statements this module prepared, per connection, known to exist on the server. */
const preparedOn = new WeakMap<object, Set<string>>();

/**
 * One statement preceded by a setup statement in the same extended-protocol pipeline: Parse
 * (first time on a connection) / Bind / Execute for both, then one Sync. Everything before a
 * Sync is one implicit transaction, so the setup's local settings (role, tenant) hold for the
 * statement and end with it, and a failure in either rolls both back. The setup's row and
 * completion are not reported. Named statements are tracked here rather than by pg (which
 * would credit the setup's ParseComplete to the statement); after an error they are closed and
 * parsed again, since Close of a missing statement is not an error.
 */
class StatementAfterSetup extends pg.Query {
  #inSetup = true;
  #parsing: string[] = [];

  constructor(
    readonly setup: { name: string; sql: string; params: readonly unknown[] },
    readonly statement: { name: string | undefined; text: string; values: readonly unknown[] },
    callback: (error: Error | null, result?: pg.QueryResult) => void,
  ) {
    super({
      text: statement.text,
      values: statement.values as unknown[],
      queryMode: 'extended',
      callback,
    } as pg.QueryConfig);
  }

  override prepare(connection: PgConnection): void {
    const known = preparedOn.get(connection) ?? new Set<string>();
    preparedOn.set(connection, known);
    const parse = (name: string, text: string) => {
      if (known.has(name)) return;
      connection.close({ type: 'S', name });
      connection.parse({ name, text });
      this.#parsing.push(name);
    };
    parse(this.setup.name, this.setup.sql);
    connection.bind({ statement: this.setup.name, values: this.setup.params, valueMapper: prepareValue });
    connection.execute({});
    const name = this.statement.name ?? '';
    if (name) parse(name, this.statement.text);
    else connection.parse({ name: '', text: this.statement.text });
    connection.bind({ statement: name, values: this.statement.values, valueMapper: prepareValue });
    connection.describe({ type: 'P', name: '' });
    connection.execute({});
    connection.sync();
  }

  override handleDataRow(message: unknown): void {
    if (!this.#inSetup) super.handleDataRow(message);
  }

  override handleCommandComplete(message: unknown, connection: PgConnection): void {
    if (this.#inSetup) this.#inSetup = false;
    else super.handleCommandComplete(message, connection);
  }

  override handleReadyForQuery(connection: PgConnection): void {
    const known = preparedOn.get(connection);
    for (const name of this.#parsing) known?.add(name);
    super.handleReadyForQuery(connection);
  }

  override handleError(error: Error, connection: PgConnection): void {
    // Whether our Parse messages took effect is unknown: parse again next time.
    const known = preparedOn.get(connection);
    known?.delete(this.setup.name);
    if (this.statement.name) known?.delete(this.statement.name);
    this.#parsing = [];
    super.handleError(error, connection);
  }
}

const prepareValue = (pg as unknown as { utils: { prepareValue(value: unknown): unknown } }).utils
  .prepareValue;

/** The parts of pg's (untyped) connection the pipelined statement uses. */
interface PgConnection {
  parse(message: { name: string; text: string }): void;
  bind(message: {
    statement: string;
    values: readonly unknown[];
    valueMapper: (v: unknown) => unknown;
  }): void;
  describe(message: { type: 'P'; name: string }): void;
  execute(message: Record<string, never>): void;
  close(message: { type: 'S'; name: string }): void;
  sync(): void;
}

declare module 'pg' {
  interface Query {
    prepare(connection: unknown): void;
    handleDataRow(message: unknown): void;
    handleCommandComplete(message: unknown, connection: unknown): void;
    handleReadyForQuery(connection: unknown): void;
    handleError(error: Error, connection: unknown): void;
  }
}

export interface PostgresOptions {
  max?: number;
  applicationName?: string;
  /** How long a request waits for a connection (a free one, or a new one) before `db.unavailable`. */
  connectTimeoutMs?: number;
}

/**
 * While PostgreSQL is down every request fails fast (connection refused); this bounds the
 * other cases (a server that accepts but does not answer, every pooled connection busy), so
 * a request is answered 503 within seconds instead of hanging until the client gives up.
 */
const CONNECT_TIMEOUT_MS = 5_000;

export async function openPostgres(url: string, options: PostgresOptions = {}): Promise<Database> {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'orthid',
    connectionTimeoutMillis: options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS,
    // A peer that vanished without closing (a failover, a cut network) is noticed by TCP.
    keepAlive: true,
  });
  // A lost connection emits 'error' on its client: the pool listens only while the client is
  // idle, and an unheard 'error' ends the process. A checked-out client (between statements, or
  // in a transaction) gets its own listener; the statement it was running, or the next one,
  // fails with the same loss, and the request gets `db.unavailable`.
  pool.on('error', () => {});
  pool.on('connect', (client) => {
    client.on('error', () => {});
  });
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
      const tx = wrap(client);
      let failure: unknown;
      try {
        await tx.exec(setup ? `BEGIN; ${setup}` : 'BEGIN');
        const result = await fn(tx);
        await tx.exec('COMMIT');
        return result;
      } catch (error) {
        failure = error;
        if (!isConnectionLoss(error)) await client.query('ROLLBACK').catch(() => {});
        throw error;
      } finally {
        release(client, failure);
      }
    },
    statements(setup) {
      const prepared = { ...setup, name: statementName(setup.sql) ?? 'orthid_setup' };
      const run = async (sql: string, params: readonly unknown[]) => {
        let client: pg.PoolClient;
        try {
          client = await pool.connect();
        } catch (cause) {
          throw connectionError(url, cause);
        }
        let failure: unknown;
        try {
          // A submittable is queued and reports through its callback, not a promise.
          return await new Promise<pg.QueryResult>((resolve, reject) => {
            // Its own name, not the one pg's path uses for the same text: the two paths keep
            // separate books of what each connection has prepared, and must never collide.
            const name = statementName(sql);
            const statement = { name: name && `${name}_p`, text: sql, values: params };
            const query = new StatementAfterSetup(prepared, statement, (error, result) =>
              error ? reject(error) : resolve(result!),
            );
            client.query(query as unknown as pg.QueryConfig);
          });
        } catch (error) {
          failure = error;
          throw asConnectionLoss(error);
        } finally {
          release(client, failure);
        }
      };
      return {
        async query<Row>(sql: string, params: readonly unknown[] = []): Promise<QueryResult<Row>> {
          const result = await run(sql, params);
          return { rows: result.rows as Row[], rowCount: result.rowCount ?? 0 };
        },
        async exec(sql: string): Promise<void> {
          await run(sql, []);
        },
      };
    },
    ownerQuery: (sql, params) => direct.query(sql, params),
    async listen(channel, onPayload, onConnection) {
      let stopped = false;
      let client: pg.Client | undefined;
      let retry: NodeJS.Timeout | undefined;
      // A dedicated connection: pooled clients are shared and would drop the subscription.
      const connect = async (): Promise<void> => {
        const next = new pg.Client({
          connectionString: url,
          application_name: 'orthid-listen',
          connectionTimeoutMillis: options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS,
          keepAlive: true,
        });
        next.on('error', () => {});
        next.on('notification', (message) => {
          if (message.channel === channel) onPayload(message.payload ?? '');
        });
        next.once('end', () => {
          // Only a subscription that was up is lost; a failed attempt is retried by reconnect()
          // alone (two retries per failure would multiply during a long outage).
          if (stopped || client !== next) return;
          client = undefined;
          onConnection?.(false);
          reconnect(1000);
        });
        try {
          await next.connect();
          await next.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
        } catch (cause) {
          await next.end().catch(() => {});
          throw connectionError(url, cause);
        }
        if (stopped) {
          await next.end().catch(() => {});
          return;
        }
        client = next;
      };
      // After a server restart or a network cut, try again with backoff until it is back.
      const reconnect = (delayMs: number): void => {
        retry = setTimeout(() => {
          connect().then(
            () => onConnection?.(true),
            () => reconnect(Math.min(delayMs * 2, 30_000)),
          );
        }, delayMs);
        retry.unref();
      };
      await connect();
      return async () => {
        stopped = true;
        clearTimeout(retry);
        await client?.end().catch(() => {});
      };
    },
    async serverVersion() {
      const { rows } = await direct.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`);
      return Number(rows[0]!.v);
    },
    close: () => pool.end(),
  };
}
