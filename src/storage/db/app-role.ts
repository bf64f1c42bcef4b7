// Creates or repairs the application role and its grants so they equal app-role.queries.ts,
// whatever a restore or a hand edit left. Refuses before changing anything when it cannot.
import { OrthIdError } from '../../core/errors.js';
import type { Queryable } from '../../core/sql.js';
import {
  APP_TABLE_PRIVILEGES,
  ATTRIBUTE_COLUMNS,
  CREATE_APP_ROLE,
  createAppRoleQueries,
  type Grantee,
  grantMembershipSql,
  type RoleAttributes,
} from './app-role.queries.js';
import { APP_ROLE } from './database.js';

/** What a repair changed, one line each (e.g. `granted SELECT ON orthid_migrations`). */
export type AppRoleChanges = string[];

/** The SQL a superuser runs when OrthID's owner login may not create the role itself. */
export const APP_ROLE_SQL = `${CREATE_APP_ROLE};`;

function wrongAttributes(role: RoleAttributes): string[] {
  return ATTRIBUTE_COLUMNS.filter(([column]) => role[column]).map(([, keyword]) => keyword);
}

export interface AppRoleReport {
  changes: AppRoleChanges;
  /** What migrate could not do itself, with the statement a superuser runs. */
  warnings: string[];
}

/**
 * Makes sure the application role exists with exactly its attributes, and that `members` (the
 * server login) may act as it. Runs before any migration: when the connecting login cannot
 * create or fix the role, nothing has been changed yet.
 */
export async function ensureAppRoleExists(
  tx: Queryable,
  members: readonly string[] = [],
): Promise<AppRoleReport> {
  const q = createAppRoleQueries(tx);
  const role = await q.role();
  const report: AppRoleReport = { changes: [], warnings: [] };
  let self: Grantee | undefined;
  const me = async () => {
    self ??= await q.self();
    return self;
  };
  if (!role) {
    const { user, superuser, createRole } = await me();
    if (!superuser && !createRole) {
      const membership = await Promise.all(members.map(async (m) => ({ m, ...(await q.membership(m)) })));
      const sql = [
        APP_ROLE_SQL,
        ...membership.filter((m) => m.exists).map((m) => `${grantMembershipSql(m.m)};`),
      ];
      throw new OrthIdError(
        'db.role_missing',
        [
          `The role ${APP_ROLE} does not exist, and ${user} may not create it: it lacks the CREATEROLE privilege. Nothing was changed.`,
          'Have a superuser run:',
          ...sql.map((line) => `  ${line}`),
          `then run orthid migrate again; it grants the role its privileges. (orthid db roles --sql prints the role with a template for each login. Or give ${user} CREATEROLE: ALTER ROLE ${user} CREATEROLE;)`,
        ].join('\n'),
        { details: { role: APP_ROLE, privilege: 'CREATEROLE', login: user, sql: sql.join('\n') } },
      );
    }
    await q.createRole();
    report.changes.push(`created role ${APP_ROLE}`);
  } else {
    const wrong = wrongAttributes(role);
    if (wrong.length > 0) {
      const { user, superuser, createRole } = await me();
      // PostgreSQL 15: CREATEROLE may change LOGIN, CREATEDB and CREATEROLE of a non-superuser
      // role; SUPERUSER and BYPASSRLS only a superuser may change.
      const needsSuperuser = role.rolsuper || role.rolbypassrls;
      if (!superuser && (needsSuperuser || !createRole)) {
        const sql = `ALTER ROLE ${APP_ROLE} ${wrong.join(' ')};`;
        throw new OrthIdError(
          'db.app_role_unsafe',
          [
            `The role ${APP_ROLE} may do more than OrthID allows (it needs ${wrong.join(', ')}): with it, row-level security would not hold. ${user} may not change it${needsSuperuser ? ' (only a superuser may)' : ': it lacks CREATEROLE'}. Nothing was changed.`,
            'Have a superuser run:',
            `  ${sql}`,
            'then run orthid migrate again.',
          ].join('\n'),
          { details: { role: APP_ROLE, attributes: wrong, login: user, sql } },
        );
      }
      await q.alterRole();
      report.changes.push(`set ${wrong.join(' ')} on role ${APP_ROLE}`);
    }
  }
  for (const login of members) {
    const { exists, member } = await q.membership(login);
    if (!exists || member) continue;
    const { superuser, createRole } = await me();
    if (superuser || createRole) {
      await q.grantMembership(login);
      report.changes.push(`granted ${APP_ROLE} to ${login}`);
    } else {
      report.warnings.push(
        `${login} (ORTHID_DATABASE_URL) is not a member of ${APP_ROLE}, so requests cannot run as it. As a superuser run: ${grantMembershipSql(login)};`,
      );
    }
  }
  return report;
}

/**
 * Grants the application role exactly its privileges on the schema's tables, the schema and
 * the policies' functions, revoking any table privilege beyond them. Run after the migrations.
 */
export async function repairAppRoleGrants(tx: Queryable): Promise<AppRoleChanges> {
  const q = createAppRoleQueries(tx);
  const changes: AppRoleChanges = [];
  const tables = await q.tables();
  const plan = tables
    .map((t) => {
      const want = APP_TABLE_PRIVILEGES[t.table] ?? [];
      return {
        ...t,
        grant: want.filter((p) => !t.privileges.includes(p)),
        revoke: t.privileges.filter((p) => !(want as readonly string[]).includes(p)),
      };
    })
    .filter((t) => t.grant.length > 0 || t.revoke.length > 0);
  const notOurs: { table: string; owner: string }[] = [];
  for (const t of plan) if (!(await q.actsAs(t.owner))) notOurs.push(t);
  if (notOurs.length > 0) {
    const self = await q.self();
    const owners = [...new Set(notOurs.map((t) => t.owner))];
    throw new OrthIdError(
      'db.permission_denied',
      `The grants of ${APP_ROLE} on ${notOurs.map((t) => t.table).join(', ')} need repair, but those tables belong to ${owners.join(', ')}, not ${self.user}. Run orthid migrate with ORTHID_MIGRATION_DATABASE_URL set to ${owners.length === 1 ? owners[0] : 'their owner'}, or as a superuser hand them over: ALTER TABLE … OWNER TO ${self.user};`,
      { details: { tables: notOurs.map((t) => t.table), owners, login: self.user } },
    );
  }
  for (const t of plan) {
    if (t.grant.length > 0) {
      await q.grant(t.grant, t.table);
      changes.push(`granted ${t.grant.join(', ')} ON ${t.table}`);
    }
    if (t.revoke.length > 0) {
      await q.revoke(t.revoke, t.table);
      changes.push(`revoked ${t.revoke.join(', ')} ON ${t.table}`);
    }
  }
  if (!(await q.schemaUsage())) {
    await q.grantSchemaUsage();
    // A login that does not own the schema gets a warning, not an error, and nothing granted.
    if (!(await q.schemaUsage())) {
      throw new OrthIdError(
        'db.permission_denied',
        `The role ${APP_ROLE} has no USAGE on schema public, and this login may not grant it. As a superuser run: GRANT USAGE ON SCHEMA public TO ${APP_ROLE};`,
        { details: { object: 'schema public', privilege: 'USAGE' } },
      );
    }
    changes.push('granted USAGE ON SCHEMA public');
  }
  for (const fn of await q.functionsMissing()) {
    await q.grantExecute(fn);
    changes.push(`granted EXECUTE ON FUNCTION ${fn}`);
  }
  return changes;
}
