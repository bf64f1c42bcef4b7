// Whether the database login can act as the application role, asked in a transaction that
// changes nothing, so a command fails up front with the GRANT to run instead of on every query.
import { OrthIdError } from '../../core/errors.js';
import { CREATE_APP_ROLE } from './app-role.queries.js';
import { APP_ROLE, type Database } from './database.js';
import { ACT_AS_APP_ROLE, currentLogin } from './target-login.queries.js';

/** `backup.target_forbidden` naming the login and the GRANT, when `SET ROLE orthid_app` is refused. */
export async function assertActsAsAppRole(db: Database): Promise<void> {
  try {
    await db.ownerTransaction(async () => {}, ACT_AS_APP_ROLE);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code !== '42501' && code !== '42704') throw error;
    const login = await currentLogin({ query: (sql) => db.ownerQuery(sql) });
    const fix =
      code === '42704'
        ? `${CREATE_APP_ROLE}; GRANT ${APP_ROLE} TO "${login.replace(/"/g, `""`)}"; then run orthid migrate`
        : `GRANT ${APP_ROLE} TO "${login.replace(/"/g, `""`)}";`;
    throw new OrthIdError(
      'backup.target_forbidden',
      [
        `The login ${login} cannot act as the role ${APP_ROLE}, which every check runs as${code === '42704' ? ' (it does not exist on this server)' : ''}.`,
        'As a superuser, run:',
        `  ${fix}`,
      ].join('\n'),
      { details: { login, sql: [fix] } },
    );
  }
}
