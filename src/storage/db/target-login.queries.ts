// What the connecting login may do on its server, asked without changing anything: the questions
// a restore, a drill and a check put before they start. SQL only; the callers judge the answers.
import { APP_ROLE } from './database.js';

/** Anything with node-postgres's query signature: a pg.Client, or a Queryable. */
interface Sql {
  query<Row>(sql: string, params?: unknown[]): Promise<{ rows: Row[] }>;
}

export interface TargetLogin {
  login: string;
  superuser: boolean;
  createdb: boolean;
  createrole: boolean;
  version: number;
  app_exists: boolean;
  app_admin: boolean | null;
  db_exists: boolean;
  db_owned: boolean | null;
  db_owner: string | null;
  db_connect: boolean | null;
  comment: string | null;
}

/** The login's attributes, its standing towards the application role and towards `database`. */
export async function targetLogin(sql: Sql, database: string): Promise<TargetLogin> {
  const { rows } = await sql.query<TargetLogin>(
    `SELECT r.rolname AS login, r.rolsuper AS superuser, r.rolcreatedb AS createdb,
            r.rolcreaterole AS createrole, current_setting('server_version_num')::int AS version,
            a.oid IS NOT NULL AS app_exists,
            pg_has_role(r.oid, a.oid, 'MEMBER WITH ADMIN OPTION') AS app_admin,
            d.oid IS NOT NULL AS db_exists,
            pg_has_role(r.oid, d.datdba, 'MEMBER') AS db_owned,
            pg_get_userbyid(d.datdba) AS db_owner,
            has_database_privilege(r.oid, d.oid, 'CONNECT') AS db_connect,
            shobj_description(d.oid, 'pg_database') AS comment
       FROM pg_roles r
       LEFT JOIN pg_roles a ON a.rolname = $2
       LEFT JOIN pg_database d ON d.datname = $1
      WHERE r.rolname = current_user`,
    [database, APP_ROLE],
  );
  return rows[0]!;
}

/** Whether `SET ROLE` to the application role works for this login, tried and rolled back. */
export async function canActAsAppRole(sql: Sql): Promise<boolean> {
  await sql.query('BEGIN');
  try {
    await sql.query(`SET LOCAL ROLE ${APP_ROLE}`);
    return true;
  } catch (error) {
    if ((error as { code?: string }).code === '42501') return false;
    throw error;
  } finally {
    await sql.query('ROLLBACK');
  }
}

/** Makes the login a member of the application role (it created the role, or administers it). */
export async function joinAppRole(sql: Sql): Promise<void> {
  await sql.query(`GRANT ${APP_ROLE} TO CURRENT_USER`);
}

/** Tried as a transaction's setup: fails with 42501 (not a member) or 42704 (no such role). */
export const ACT_AS_APP_ROLE = `SET LOCAL ROLE ${APP_ROLE}`;

export async function currentLogin(sql: Sql): Promise<string> {
  const { rows } = await sql.query<{ login: string }>('SELECT current_user AS login');
  return rows[0]!.login;
}
