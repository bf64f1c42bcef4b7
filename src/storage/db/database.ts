// The one way OrthID reaches its database: a small interface both drivers (embedded PGlite and
// node-postgres) implement, plus the tenant-scoped transaction every request runs in.
import { OrthIdError } from '../../core/errors.js';
import { isUuid } from '../../core/ids.js';
import type { Queryable, QueryResult } from '../../core/sql.js';

export type { Queryable, QueryResult } from '../../core/sql.js';

export type Engine = 'pglite' | 'postgres';

export interface Database {
  readonly engine: Engine;
  /**
   * Runs `fn` in one transaction on the connecting role (the owner on the embedded default).
   * Only migrations, bootstrap and backup tooling use it; request code uses withTenant/withSystem.
   * `setup` (parameter-free statements) runs right after BEGIN, sent with it in one round trip.
   */
  ownerTransaction<T>(fn: (tx: Queryable) => Promise<T>, setup?: string): Promise<T>;
  /**
   * A Queryable whose every statement runs alone in its own transaction, right after `setup`
   * (one parameterised statement, e.g. setting the role and tenant). On PostgreSQL both go out
   * in one pipeline: one round trip per statement instead of four. See withTenantStatements.
   */
  statements(setup: { sql: string; params: readonly unknown[] }): Queryable;
  /** A single statement outside any transaction (e.g. CREATE DATABASE, advisory session locks). */
  ownerQuery<Row = Record<string, unknown>>(
    sql: string,
    params?: readonly unknown[],
  ): Promise<QueryResult<Row>>;
  /**
   * Subscribes to a LISTEN/NOTIFY channel, so every replica hears about changes (e.g. a rotated
   * key) made by any other. A lost subscription is re-established; `onConnection(false)` says
   * notifications may be missed from now on, `onConnection(true)` that they flow again (what was
   * cached meanwhile must be dropped). Returns the unsubscribe function.
   */
  listen(
    channel: string,
    onPayload: (payload: string) => void,
    onConnection?: (connected: boolean) => void,
  ): Promise<() => Promise<void>>;
  /** Server version as reported by `server_version_num`, e.g. 150018. */
  serverVersion(): Promise<number>;
  close(): Promise<void>;
}

/** The role every request runs as: no BYPASSRLS, DML only. `orthid migrate` creates and repairs it (app-role.ts). */
export const APP_ROLE = 'orthid_app';

/**
 * Runs `fn` in a transaction as the application role with the tenant set, the way PostgREST
 * does it: row-level security then hides every other tenant's rows, even from a query that
 * forgets its WHERE clause.
 */
export function withTenant<T>(db: Database, tenantId: string, fn: (tx: Queryable) => Promise<T>): Promise<T> {
  if (!isUuid(tenantId)) {
    throw new OrthIdError('tenant.required', 'A tenant id (UUID) is required for tenant-scoped work.');
  }
  // Sent with BEGIN in one round trip; the id is inlined only because it is a checked UUID.
  return db.ownerTransaction(fn, `SET LOCAL ROLE ${APP_ROLE}; SET LOCAL orthid.tenant_id = '${tenantId}'`);
}

/**
 * Like withTenant, but every statement `fn` sends is its own transaction (one round trip on
 * PostgreSQL). Only for work that is a single statement, or reads that need no common snapshot:
 * the oidc-provider adapter's lookups and writes, each of which is one statement.
 */
export function withTenantStatements<T>(
  db: Database,
  tenantId: string,
  fn: (q: Queryable) => Promise<T>,
): Promise<T> {
  if (!isUuid(tenantId)) {
    throw new OrthIdError('tenant.required', 'A tenant id (UUID) is required for tenant-scoped work.');
  }
  return fn(
    db.statements({
      sql: `SELECT set_config('role', '${APP_ROLE}', true), set_config('orthid.tenant_id', $1, true)`,
      params: [tenantId],
    }),
  );
}

/** Tells every listening replica about a change; delivered when the transaction commits. */
export async function notify(tx: Queryable, channel: string, payload: string): Promise<void> {
  await tx.query('SELECT pg_notify($1, $2)', [channel, payload]);
}

/** Switches an application-role transaction to `tenantId` (e.g. right after creating it). */
export async function enterTenant(tx: Queryable, tenantId: string): Promise<void> {
  await tx.query(`SELECT set_config('orthid.tenant_id', $1, true)`, [tenantId]);
}

/**
 * Runs `fn` as the application role with no tenant set: it sees the tenant registry and no
 * tenant-owned rows. Used to resolve a tenant before entering it.
 */
export function withSystem<T>(db: Database, fn: (tx: Queryable) => Promise<T>): Promise<T> {
  return db.ownerTransaction(fn, `SET LOCAL ROLE ${APP_ROLE}`);
}
