// The application role and every privilege it holds, written once: `orthid migrate` creates and
// repairs them from here, `orthid db roles --sql` prints them, and restores create the role from here.
import type { Queryable } from '../../core/sql.js';
import { APP_ROLE } from './database.js';

/** What the application role may never be: a login, above row-level security, or an admin. */
export const APP_ROLE_ATTRIBUTES = 'NOLOGIN NOBYPASSRLS NOSUPERUSER NOCREATEDB NOCREATEROLE';

/** The statement that creates the application role (it is known to be absent). */
export const CREATE_APP_ROLE = `CREATE ROLE ${APP_ROLE} ${APP_ROLE_ATTRIBUTES}`;

/**
 * Creates the application role when the cluster has none. Roles are global to a cluster, so a
 * database dump never carries them: every restore onto a fresh server needs this first.
 */
export const CREATE_APP_ROLE_IF_MISSING = `DO $orthid$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${APP_ROLE}') THEN
    ${CREATE_APP_ROLE};
  END IF;
END $orthid$`;

type TablePrivilege = 'SELECT' | 'INSERT' | 'UPDATE' | 'DELETE';

const READ = ['SELECT'] as const;
const APPEND = ['SELECT', 'INSERT'] as const;
const WRITE = ['SELECT', 'INSERT', 'UPDATE'] as const;
const ALL = ['SELECT', 'INSERT', 'UPDATE', 'DELETE'] as const;

/**
 * Exactly the table privileges of the application role, on every table of the schema: a table
 * missing here gets none, and a privilege granted by hand beyond these is revoked by migrate. A
 * migration that adds a table adds it here; the grants then need not be repeated in the migration.
 */
export const APP_TABLE_PRIVILEGES: Readonly<Record<string, readonly TablePrivilege[]>> = {
  // Read by `orthid start` and /readyz to check that the schema is current.
  orthid_migrations: READ,
  deployment: READ,
  tenants: WRITE,
  tenant_keys: WRITE,
  signing_keys: WRITE,
  key_rotations: WRITE,
  users: ALL,
  organisations: ALL,
  memberships: ALL,
  api_resources: ALL,
  permissions: ALL,
  roles: ALL,
  role_permissions: ALL,
  membership_roles: ALL,
  client_roles: ALL,
  oidc_clients: ALL,
  oidc_payloads: ALL,
  sign_in_throttle: ALL,
  user_factors: ALL,
  user_recovery_codes: ALL,
  passkey_user_handles: ALL,
  passkey_credentials: ALL,
  passkey_challenges: ALL,
  mail_queue: ALL,
  account_tokens: ALL,
  // Deployment-wide, and only outside any tenant (its policy); the oldest finished jobs are deleted.
  backup_jobs: ALL,
  // Append-only: a trigger also refuses updates and deletes from anyone.
  audit_events: APPEND,
};

/** Functions the row-level-security policies call as the querying role. */
export const APP_FUNCTIONS = ['orthid_current_tenant()'] as const;

export interface RoleAttributes {
  rolcanlogin: boolean;
  rolbypassrls: boolean;
  rolsuper: boolean;
  rolcreatedb: boolean;
  rolcreaterole: boolean;
}

/** Which attribute each ATTRIBUTES keyword is about, and the value it requires. */
export const ATTRIBUTE_COLUMNS: ReadonlyArray<[keyof RoleAttributes, string]> = [
  ['rolcanlogin', 'NOLOGIN'],
  ['rolbypassrls', 'NOBYPASSRLS'],
  ['rolsuper', 'NOSUPERUSER'],
  ['rolcreatedb', 'NOCREATEDB'],
  ['rolcreaterole', 'NOCREATEROLE'],
];

export interface Grantee {
  user: string;
  superuser: boolean;
  createRole: boolean;
}

const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** Lets a login act as the application role (what the server login needs). */
export const grantMembershipSql = (login: string) =>
  `GRANT ${APP_ROLE} TO ${/^[a-z_][a-z0-9_]*$/.test(login) ? login : quoteIdent(login)}`;

export function createAppRoleQueries(tx: Queryable) {
  return {
    /** The application role's attributes, or undefined when the cluster has no such role. */
    async role(): Promise<RoleAttributes | undefined> {
      const { rows } = await tx.query<RoleAttributes>(
        `SELECT rolcanlogin, rolbypassrls, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = $1`,
        [APP_ROLE],
      );
      return rows[0];
    },
    /** The connecting role and whether it may create roles. */
    async self(): Promise<Grantee> {
      const { rows } = await tx.query<Grantee>(
        `SELECT current_user AS "user", rolsuper AS superuser, rolcreaterole AS "createRole"
           FROM pg_roles WHERE rolname = current_user`,
      );
      return rows[0]!;
    },
    /** Every table of the public schema with its owner and the application role's own privileges on it. */
    async tables(): Promise<{ table: string; owner: string; privileges: string[] }[]> {
      const { rows } = await tx.query<{ table: string; owner: string; privileges: string[] | null }>(
        `SELECT c.relname AS "table", pg_get_userbyid(c.relowner) AS owner,
                (SELECT array_agg(a.privilege_type ORDER BY a.privilege_type)
                   FROM aclexplode(c.relacl) a
                  WHERE a.grantee = (SELECT oid FROM pg_roles WHERE rolname = $1)) AS privileges
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
          ORDER BY 1`,
        [APP_ROLE],
      );
      return rows.map((r) => ({ table: r.table, owner: r.owner, privileges: r.privileges ?? [] }));
    },
    /** Whether the role's current user may act as the table owner `owner` (owns it, or is a member). */
    async actsAs(owner: string): Promise<boolean> {
      const { rows } = await tx.query<{ ok: boolean }>(
        `SELECT pg_has_role(current_user, $1, 'USAGE') AS ok`,
        [owner],
      );
      return rows[0]?.ok === true;
    },
    async schemaUsage(): Promise<boolean> {
      const { rows } = await tx.query<{ ok: boolean }>(
        `SELECT has_schema_privilege($1, 'public', 'USAGE') AS ok`,
        [APP_ROLE],
      );
      return rows[0]?.ok === true;
    },
    async functionsMissing(): Promise<string[]> {
      const missing: string[] = [];
      for (const fn of APP_FUNCTIONS) {
        const { rows } = await tx.query<{ ok: boolean | null }>(
          `SELECT CASE WHEN to_regprocedure($2) IS NULL THEN NULL
                       ELSE has_function_privilege($1, $2, 'EXECUTE') END AS ok`,
          [APP_ROLE, fn],
        );
        if (rows[0]?.ok === false) missing.push(fn);
      }
      return missing;
    },
    /** Whether `login` exists, and whether it may act as the application role. */
    async membership(login: string): Promise<{ exists: boolean; member: boolean }> {
      const { rows } = await tx.query<{ member: boolean }>(
        `SELECT pg_has_role(oid, (SELECT oid FROM pg_roles WHERE rolname = $2), 'MEMBER') AS member
           FROM pg_roles WHERE rolname = $1`,
        [login, APP_ROLE],
      );
      return { exists: rows.length > 0, member: rows[0]?.member === true };
    },
    async grantMembership(login: string): Promise<void> {
      await tx.exec(grantMembershipSql(login));
    },
    async createRole(): Promise<void> {
      await tx.exec(CREATE_APP_ROLE);
    },
    async alterRole(): Promise<void> {
      await tx.exec(`ALTER ROLE ${APP_ROLE} ${APP_ROLE_ATTRIBUTES}`);
    },
    async grant(privileges: readonly string[], table: string): Promise<void> {
      await tx.exec(`GRANT ${privileges.join(', ')} ON TABLE ${quoteIdent(table)} TO ${APP_ROLE}`);
    },
    async revoke(privileges: readonly string[], table: string): Promise<void> {
      await tx.exec(`REVOKE ${privileges.join(', ')} ON TABLE ${quoteIdent(table)} FROM ${APP_ROLE}`);
    },
    async grantSchemaUsage(): Promise<void> {
      await tx.exec(`GRANT USAGE ON SCHEMA public TO ${APP_ROLE}`);
    },
    async grantExecute(fn: string): Promise<void> {
      await tx.exec(`GRANT EXECUTE ON FUNCTION ${fn} TO ${APP_ROLE}`);
    },
  };
}

/**
 * What `orthid db roles --sql` prints for a DBA: the application role (migrate then grants it
 * its privileges) and, commented out, one least-privilege login per job.
 */
export const ROLES_SCRIPT = `-- OrthID's PostgreSQL roles. Run as a superuser: psql -v ON_ERROR_STOP=1 -f roles.sql
-- The application role every request runs as (SET LOCAL ROLE): no login, row-level security
-- applies to it. \`orthid migrate\` creates it when its login has CREATEROLE, and grants it its
-- table privileges on every run; created here, the owner login needs no CREATEROLE.
${CREATE_APP_ROLE};

-- Logins: uncomment the ones you use and choose their passwords.
-- Owner: owns the schema; only \`orthid migrate\` connects as it (ORTHID_MIGRATION_DATABASE_URL).
-- CREATE ROLE orthid_owner LOGIN PASSWORD 'change-me';
-- CREATE DATABASE orthid OWNER orthid_owner;
-- Server: \`orthid start\` and the other commands (ORTHID_DATABASE_URL): a member of orthid_app, nothing more.
-- CREATE ROLE orthid_server LOGIN PASSWORD 'change-me' IN ROLE orthid_app;
-- Backup: \`orthid backup dump\` and pg_dump (ORTHID_BACKUP_DATABASE_URL, or ORTHID_DATABASE_URL in the
-- backup job's secret). Reads every tenant past row-level security: never give it to the server.
-- CREATE ROLE orthid_backup LOGIN PASSWORD 'change-me' BYPASSRLS IN ROLE pg_read_all_data;
-- Drill: \`orthid backup drill\` creates, checks and drops a throwaway database (ORTHID_DRILL_DATABASE_URL).
-- CREATE ROLE orthid_drill LOGIN PASSWORD 'change-me' CREATEDB IN ROLE orthid_app;
-- Restore target: \`orthid backup restore --database-url\` or pg_restore into a new database, which it
-- then owns (it becomes that deployment's owner login).
-- CREATE ROLE orthid_restore LOGIN PASSWORD 'change-me' CREATEDB IN ROLE orthid_app;
`;
