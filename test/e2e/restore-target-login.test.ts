// `orthid backup restore`, `drill` and `check` with least-privilege logins on real PostgreSQL: step 1
// refuses a login that lacks something, names the SQL that grants it, and changes nothing.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { exitCodes } from '../../src/core/errors.js';
import { ageKeygen, requireAgeCli } from '../helpers/age-cli.js';
import { runCli } from '../helpers/cli.js';
import { backupDeploymentEnv, initDeployment } from '../helpers/deployment.js';
import { type Cluster, query, startCluster } from '../helpers/postgres.js';
import { startServer } from '../helpers/server-process.js';

const MASTER = 'restore-login-master-secret-0123456789abcdef';

function loginUrl(cluster: Cluster, login: string, database: string): string {
  return `postgres://${login}@127.0.0.1:${cluster.port}/${database}`;
}

describe('restore, drill and check as least-privilege logins', { timeout: 600_000 }, () => {
  let dir: string;
  let env: Record<string, string>;
  let source: Cluster;
  let clean: Cluster;
  let run = 0;

  /** The environment of a restore onto another host: its own data directory and master secret. */
  const targetEnv = () => ({
    ...env,
    ORTHID_DATA_DIR: join(dir, `target-${++run}`),
    ORTHID_MASTER_KEY: `${MASTER}-target`,
  });

  const databases = async (cluster: Cluster) =>
    (
      await query<{ datname: string }>(
        cluster.url,
        `SELECT datname FROM pg_database WHERE datname NOT IN ('postgres', 'template0', 'template1') ORDER BY 1`,
      )
    ).map((r) => r.datname);
  const appRoleExists = async (cluster: Cluster) =>
    (await query(cluster.url, `SELECT 1 FROM pg_roles WHERE rolname = 'orthid_app'`)).length === 1;

  before(async () => {
    requireAgeCli();
    dir = await mkdtemp(join(tmpdir(), 'orthid-restore-login-'));
    const key = ageKeygen(dir);
    // Clusters of its own: the assertions that nothing was created must not see other files' databases.
    [source, clean] = await Promise.all([startCluster(), startCluster()]);
    await query(source.url, 'CREATE DATABASE orthid_login_src');
    const sourceUrl = loginUrl(source, 'postgres', 'orthid_login_src');
    env = backupDeploymentEnv(dir, sourceUrl, MASTER, key);
    await initDeployment(env);
    await (await startServer(env)).stop(); // the first start creates the canary the checks use
    const dump = await runCli(['backup', 'dump', '--encrypt'], env);
    assert.equal(dump.code, 0, dump.stderr);
    const suffix = Date.now().toString(36);
    for (const cluster of [source, clean]) {
      await query(cluster.url, `CREATE ROLE restore_nocreatedb_${suffix} LOGIN`);
      await query(cluster.url, `CREATE ROLE restore_createdb_${suffix} LOGIN CREATEDB`);
    }
    env.SUFFIX = suffix;
  });

  after(async () => {
    source?.stop();
    clean?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('a login without CREATEDB on a clean server is refused at step 1 with the SQL to run, and nothing is created', async () => {
    const login = `restore_nocreatedb_${env.SUFFIX}`;
    const before = await databases(clean);
    const target = targetEnv();
    const result = await runCli(
      [
        'backup',
        'restore',
        'latest',
        '--into-live-stores',
        '--database-url',
        loginUrl(clean, login, 'orthid_restored'),
      ],
      target,
    );
    assert.equal(result.code, exitCodes.unavailable, result.stderr);
    assert.match(result.stderr, /\[1\/6\] Check the target/);
    assert.doesNotMatch(result.stderr, /\[2\/6\]/);
    assert.match(result.stderr, /error\[backup\.target_forbidden\]: Cannot restore into orthid_restored as /);
    assert.ok(result.stderr.includes(`ALTER ROLE "${login}" CREATEDB;`), result.stderr);
    assert.ok(
      result.stderr.includes(
        `CREATE ROLE orthid_app NOLOGIN NOBYPASSRLS NOSUPERUSER NOCREATEDB NOCREATEROLE; GRANT orthid_app TO "${login}";`,
      ),
      result.stderr,
    );
    assert.deepEqual(await databases(clean), before, 'no database was created');
    assert.equal(await appRoleExists(clean), false, 'no role was created');
    assert.equal(existsSync(join(target.ORTHID_DATA_DIR, 'keystore')), false, 'no keystore was written');
  });

  test('a login that may not act as orthid_app is refused with the GRANT, before the keystore is written', async () => {
    const login = `restore_createdb_${env.SUFFIX}`;
    const before = await databases(source);
    const target = targetEnv();
    const result = await runCli(
      [
        'backup',
        'restore',
        'latest',
        '--into-live-stores',
        '--json',
        '--database-url',
        loginUrl(source, login, 'orthid_not_member'),
      ],
      target,
    );
    assert.equal(result.code, exitCodes.unavailable, result.stderr);
    assert.match(result.stderr, /error\[backup\.target_forbidden\]: .* may not act as the role orthid_app/);
    assert.ok(result.stderr.includes(`run:\n  GRANT orthid_app TO "${login}";\n`), result.stderr);
    assert.deepEqual(await databases(source), before);
    assert.equal(existsSync(join(target.ORTHID_DATA_DIR, 'keystore')), false);
  });

  test('an existing target owned by someone else is refused with the ALTER DATABASE that hands it over', async () => {
    const login = `restore_createdb_${env.SUFFIX}`;
    await query(clean.url, 'CREATE DATABASE orthid_owned_elsewhere');
    const result = await runCli(
      [
        'backup',
        'restore',
        'latest',
        '--into-live-stores',
        '--database-url',
        loginUrl(clean, login, 'orthid_owned_elsewhere'),
      ],
      targetEnv(),
    );
    assert.equal(result.code, exitCodes.unavailable, result.stderr);
    assert.ok(
      result.stderr.includes(`ALTER DATABASE "orthid_owned_elsewhere" OWNER TO "${login}";`),
      result.stderr,
    );
    assert.equal(await appRoleExists(clean), false);
  });

  test('without pg_restore on PATH the restore stops at step 1 with backup.tool_missing and creates nothing', async () => {
    const before = await databases(source);
    const target = { ...targetEnv(), PATH: join(dir, 'no-tools') };
    const result = await runCli(
      [
        'backup',
        'restore',
        'latest',
        '--into-live-stores',
        '--database-url',
        loginUrl(source, 'postgres', 'orthid_no_tools'),
      ],
      target,
    );
    assert.equal(result.code, exitCodes.unavailable, result.stderr);
    assert.match(result.stderr, /error\[backup\.tool_missing\]: pg_restore is not installed/);
    assert.deepEqual(await databases(source), before);
    assert.equal(existsSync(join(target.ORTHID_DATA_DIR, 'keystore')), false);
  });

  test('a drill whose server login lacks CREATEDB is refused before its throwaway database exists', async () => {
    const login = `restore_nocreatedb_${env.SUFFIX}`;
    const before = await databases(source);
    const result = await runCli(['backup', 'drill'], {
      ...env,
      ORTHID_DRILL_DATABASE_URL: loginUrl(source, login, 'postgres'),
    });
    assert.equal(result.code, exitCodes.unavailable, result.stderr);
    assert.match(
      result.stderr,
      /error\[backup\.target_forbidden\]: Cannot restore into orthid_drill_\w+ as /,
    );
    assert.ok(result.stderr.includes(`ALTER ROLE "${login}" CREATEDB;`), result.stderr);
    assert.deepEqual(await databases(source), before);
  });

  test('once the printed SQL is run, the same login restores onto the clean server and passes every check; check says when it cannot act as orthid_app', async () => {
    const login = `restore_nocreatedb_${env.SUFFIX}`;
    const url = loginUrl(clean, login, 'orthid_fixed');
    const target = targetEnv();
    const refused = await runCli(
      ['backup', 'restore', 'latest', '--into-live-stores', '--json', '--database-url', url],
      target,
    );
    assert.equal(refused.code, exitCodes.unavailable, refused.stderr);
    // The lines after "run:", as a DBA would paste them into psql.
    const sql = refused.stderr
      .split('run:\n')[1]!
      .split('\n')
      .filter((l) => l.startsWith('  '));
    assert.ok(sql.length > 0, refused.stderr);
    await query(clean.url, sql.join('\n'));

    const restored = await runCli(
      ['backup', 'restore', 'latest', '--into-live-stores', '--json', '--database-url', url],
      target,
    );
    assert.equal(restored.code, 0, restored.stderr + restored.stdout);
    assert.equal(JSON.parse(restored.stdout).ok, true, restored.stdout);

    // The restored database belongs to the login; without membership in orthid_app no check can run.
    await query(clean.url, `REVOKE orthid_app FROM "${login}"`);
    const checked = await runCli(['backup', 'check', '--json', '--database-url', url], target);
    assert.equal(checked.code, exitCodes.unavailable, checked.stderr + checked.stdout);
    assert.ok(
      checked.stderr.includes(
        `error[backup.target_forbidden]: The login ${login} cannot act as the role orthid_app`,
      ),
      checked.stderr,
    );
    assert.ok(checked.stderr.includes(`GRANT orthid_app TO "${login}";`), checked.stderr);
  });

  test('a login with CREATEDB and CREATEROLE on a clean server creates orthid_app, joins it and passes every check', async () => {
    const other = await startCluster();
    try {
      await query(other.url, 'CREATE ROLE restorer LOGIN CREATEDB CREATEROLE');
      const restored = await runCli(
        [
          'backup',
          'restore',
          'latest',
          '--into-live-stores',
          '--json',
          '--database-url',
          loginUrl(other, 'restorer', 'orthid'),
        ],
        targetEnv(),
      );
      assert.equal(restored.code, 0, restored.stderr + restored.stdout);
      assert.equal(JSON.parse(restored.stdout).ok, true, restored.stdout);
      const role = await query<{ rolbypassrls: boolean; rolcanlogin: boolean }>(
        other.url,
        `SELECT rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = 'orthid_app'`,
      );
      assert.deepEqual(role, [{ rolbypassrls: false, rolcanlogin: false }]);
    } finally {
      other.stop();
    }
  });
});
