// Turns a PostgreSQL or connection failure into a stable OrthID code with the cause in one line
// and what to run to fix it: the one place that reads SQLSTATEs and socket error codes.
import { isOrthIdError, OrthIdError, toOrthIdError } from '../../core/errors.js';
import { APP_ROLE } from './database.js';
import { isConnectionLoss } from './pg-errors.js';

/** The oldest PostgreSQL major version OrthID supports (server_version_num / 10000). */
export const MIN_SERVER_VERSION = 15;

export interface DatabaseErrorContext {
  /** Describes the connection for messages (host, port, database; never the password). */
  where?: string;
}

interface PgLikeError {
  code?: unknown;
  message?: unknown;
}

/** A SQLSTATE: five characters of digits and upper-case letters. */
const isSqlState = (code: unknown): code is string => typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code);

function quoted(message: string, what: string): string | undefined {
  return new RegExp(`${what} "([^"]+)"`).exec(message)?.[1];
}

/** One line: PostgreSQL's first line, never more (details may carry row values). */
function firstLine(message: string): string {
  return message.split('\n')[0]!.replace(/password=\S+/g, 'password=***');
}

function permissionDenied(message: string, at: string): OrthIdError {
  const line = firstLine(message);
  const details = { reason: line };
  if (/permission denied to set role/.test(line) || /must be member of role/.test(line)) {
    const role = quoted(line, 'role') ?? APP_ROLE;
    return new OrthIdError(
      'db.permission_denied',
      `PostgreSQL${at} refused: ${line}. The login in ORTHID_DATABASE_URL must be a member of ${role}: as a superuser run GRANT ${role} TO <that login>; (orthid db roles --sql prints every login).`,
      { details: { ...details, role } },
    );
  }
  if (/permission denied to create role/.test(line)) {
    return new OrthIdError(
      'db.permission_denied',
      `PostgreSQL${at} refused: ${line}. The login lacks CREATEROLE; have a superuser run the SQL that orthid db roles --sql prints, then run the command again.`,
      { details: { ...details, privilege: 'CREATEROLE' } },
    );
  }
  if (/permission denied to create database/.test(line)) {
    return new OrthIdError(
      'db.permission_denied',
      `PostgreSQL${at} refused: ${line}. The login lacks CREATEDB; as a superuser run ALTER ROLE <that login> CREATEDB; or create the database for it.`,
      { details: { ...details, privilege: 'CREATEDB' } },
    );
  }
  const owner = /must be owner of (\w+) "?([^"\s]+)"?/.exec(line);
  if (owner) {
    return new OrthIdError(
      'db.permission_denied',
      `PostgreSQL${at} refused: ${line}. Only the schema's owner may change it: run orthid migrate with ORTHID_MIGRATION_DATABASE_URL set to the owner login.`,
      { details: { ...details, object: `${owner[1]} ${owner[2]}` } },
    );
  }
  const object = /permission denied for (\w+) "?([^"\s]+)"?/.exec(line);
  if (object && (object[1] === 'table' || object[1] === 'relation' || object[1] === 'function')) {
    return new OrthIdError(
      'db.permission_denied',
      `PostgreSQL${at} refused: ${line}. The role ${APP_ROLE} lacks a privilege OrthID needs: run orthid migrate as the owner, which restores every grant.`,
      { details: { ...details, object: `${object[1]} ${object[2]}` } },
    );
  }
  if (object && object[1] === 'schema') {
    return new OrthIdError(
      'db.permission_denied',
      `PostgreSQL${at} refused: ${line}. Run orthid migrate as the database's owner (CREATE DATABASE … OWNER <owner login>), or as a superuser GRANT USAGE, CREATE ON SCHEMA ${object[2]} TO <owner login>;`,
      { details: { ...details, object: `schema ${object[2]}` } },
    );
  }
  if (object && object[1] === 'database') {
    return new OrthIdError(
      'db.permission_denied',
      `PostgreSQL${at} refused: ${line}. As a superuser run GRANT CONNECT ON DATABASE ${object[2]} TO <that login>;`,
      { details: { ...details, object: `database ${object[2]}` } },
    );
  }
  return new OrthIdError(
    'db.permission_denied',
    `PostgreSQL${at} refused: ${line}. Give the login in the connection URL the privilege named, or use the login the README's Production section describes for this command.`,
    { details },
  );
}

/**
 * The OrthID error for a PostgreSQL or connection failure that is the environment's doing (a
 * privilege, a login, a missing database or role, an unreachable or too old server), or
 * undefined for anything else (a bug, a constraint): those keep their own handling.
 */
export function classifyDatabaseError(
  error: unknown,
  context: DatabaseErrorContext = {},
): OrthIdError | undefined {
  if (typeof error !== 'object' || error === null || isOrthIdError(error)) return undefined;
  const { code, message: raw } = error as PgLikeError;
  const message = typeof raw === 'string' ? raw : '';
  const at = context.where ? ` at ${context.where}` : '';
  const line = firstLine(message);
  // What counts as a lost or impossible connection is decided once, in pg-errors.ts.
  if (isConnectionLoss(error)) {
    return new OrthIdError(
      'db.unavailable',
      `Cannot reach PostgreSQL${at} (${line}). Check the host and port in the connection URL and that the server is running; OrthID retries once it answers.`,
      { cause: error, details: { reason: line } },
    );
  }
  if (!isSqlState(code)) return undefined;
  let classified: OrthIdError | undefined;
  if (code === '42501') {
    // The audit log's own refusal is a rule of the product, not a missing grant.
    if (/append-only/.test(message)) return undefined;
    classified = permissionDenied(message, at);
  } else if (code === '3D000') {
    const name = quoted(line, 'database') ?? 'the database';
    classified = new OrthIdError(
      'db.database_missing',
      `PostgreSQL${at} has no database "${name}". Create it for the owner login (as a superuser: CREATE DATABASE ${name} OWNER <owner login>;) or correct the database name in the connection URL.`,
      { details: { reason: line, database: name } },
    );
  } else if (code === '28P01' || (code === '28000' && !/role "[^"]+" does not exist/.test(line))) {
    classified = new OrthIdError(
      'db.authentication_failed',
      `PostgreSQL${at} refused the login (${line}). Check the user and password in the connection URL (or PGPASSFILE), and that pg_hba.conf admits this host.`,
      { details: { reason: line } },
    );
  } else if (code === '28000' || (code === '22023' && /role "[^"]+" does not exist/.test(line))) {
    const role = quoted(line, 'role') ?? APP_ROLE;
    classified = new OrthIdError(
      'db.role_missing',
      role === APP_ROLE
        ? `PostgreSQL${at} has no role ${APP_ROLE}. Run orthid migrate as the owner (it creates the role and its grants), or have a superuser run the SQL orthid db roles --sql prints.`
        : `PostgreSQL${at} has no role "${role}". Create the login (orthid db roles --sql prints a template for each) or correct the user in the connection URL.`,
      { details: { reason: line, role } },
    );
  } else if (code === '53300') {
    classified = new OrthIdError(
      'db.unavailable',
      `PostgreSQL${at} has no free connections (${line}). Raise max_connections or lower the pool sizes of the processes using it; OrthID retries once it answers.`,
      { details: { reason: line } },
    );
  }
  if (!classified) return undefined;
  return new OrthIdError(classified.code, classified.message, {
    cause: error,
    ...(classified.details ? { details: classified.details } : {}),
  });
}

/** The refusal for a server older than OrthID supports. */
export function unsupportedServer(versionNum: number, where?: string): OrthIdError {
  const major = Math.floor(versionNum / 10_000);
  return new OrthIdError(
    'db.version_unsupported',
    `PostgreSQL${where ? ` at ${where}` : ''} is version ${major}; OrthID needs ${MIN_SERVER_VERSION} or newer. Upgrade the server (pg_upgrade) or point the connection URL at a newer one.`,
    { details: { serverVersion: versionNum, minimum: MIN_SERVER_VERSION } },
  );
}

/** Refuses a server older than OrthID supports, before anything is read or written. */
export async function requireSupportedServer(
  db: { serverVersion(): Promise<number> },
  where?: string,
): Promise<void> {
  const version = await db.serverVersion();
  if (version < MIN_SERVER_VERSION * 10_000) throw unsupportedServer(version, where);
}

/**
 * What a user is shown for any failure: an OrthID error as it is, a database environment
 * problem classified, anything else `internal.unexpected` pointing where its cause is recorded.
 */
export function explainError(error: unknown, whereToLook?: string): OrthIdError {
  return classifyDatabaseError(error) ?? toOrthIdError(error, whereToLook);
}
