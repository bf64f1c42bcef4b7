// Whether a node-postgres failure is a lost connection (a server restart, a failover, a network
// cut, a pool that cannot connect in time): decided here, for the driver (which turns it into
// `db.unavailable`), the OIDC endpoints and the token writes. database-errors.ts names the other
// environment problems (a grant, a login, a missing database).
import { OrthIdError } from '../../core/errors.js';

/**
 * SQLSTATEs that mean the session is gone or cannot start: class 08 (connection exception),
 * 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now (starting up, shutting
 * down, in recovery). 57P04 (database dropped) and 57P05 (idle session timeout) end one session
 * the same way.
 */
const LOST_SQLSTATE = /^(08...|57P0[1-5])$/;

/** Socket errors of a connection that broke or never opened. */
const LOST_ERRNO = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/**
 * node-postgres reports these as plain Errors without a code: the socket closed under a client,
 * a client used after its connection failed, the pool's connectionTimeoutMillis ran out.
 */
const LOST_MESSAGES = [
  'Connection terminated', // also "... unexpectedly" and "... due to connection timeout"
  'Client has encountered a connection error and is not queryable',
  'timeout exceeded when trying to connect',
];

/** Whether `error` (or what it wraps) says the connection to PostgreSQL was lost or never made. */
export function isConnectionLoss(error: unknown): boolean {
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof OrthIdError) return e.code === 'db.unavailable';
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (LOST_SQLSTATE.test(code) || LOST_ERRNO.has(code))) return true;
    if (LOST_MESSAGES.some((m) => e instanceof Error && e.message.startsWith(m))) return true;
  }
  return false;
}

/** How long a client should wait before retrying a request refused for connection loss. */
export const DB_RETRY_AFTER_SECONDS = 2;

/**
 * The error a request gets when its connection was lost: `db.unavailable` (HTTP 503 with
 * Retry-After). Anything else is returned unchanged. No part of the cause's message is
 * repeated, so a connection string in it never reaches a caller.
 */
export function asConnectionLoss(error: unknown): unknown {
  if (error instanceof OrthIdError || !isConnectionLoss(error)) return error;
  return new OrthIdError(
    'db.unavailable',
    `The connection to PostgreSQL was lost or could not be made; retry in ${DB_RETRY_AFTER_SECONDS} seconds. If this persists, check that PostgreSQL is running and reachable.`,
    { cause: error },
  );
}
