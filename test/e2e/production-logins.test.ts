// The README's Production section on a throwaway cluster, as a DBA and an operator would follow
// it: the logins made with exactly the SQL it shows, migrate as a non-superuser owner, start as
// the least-privilege server login, grants and the role repaired by migrate, the admin API
// after a move to another address, and what an owner without CREATEROLE is told.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { exitCodes } from '../../src/core/errors.js';
import { runCli } from '../helpers/cli.js';
import { type Cluster, freePort, query, rowCounts, startCluster } from '../helpers/postgres.js';
import { type ServerProcess, startServer } from '../helpers/server-process.js';

const MASTER = 'production-logins-master-secret-0123456789-abcdef';
const README = new URL('../../README.md', import.meta.url);

/** The README's ```sql block that starts with `firstLine`, verbatim. */
async function readmeSql(firstLine: string): Promise<string> {
  const readme = await readFile(README, 'utf8');
  const block = [...readme.matchAll(/```sql\n([\s\S]*?)```/g)]
    .map((m) => m[1]!)
    .find((b) => b.startsWith(firstLine));
  assert.ok(block, `the README has a sql block starting with ${firstLine}`);
  return block;
}

/** Runs SQL with psql as a DBA would (stopping at the first error). */
function psql(cluster: Cluster, url: string, sql: string): void {
  const result = spawnSync(
    join(cluster.binDir, 'psql'),
    ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '--dbname', url],
    {
      input: sql,
      encoding: 'utf8',
    },
  );
  assert.equal(result.status, 0, `psql failed: ${result.stderr}`);
}

/** The statements a refusal tells a superuser to run: the indented lines after "Have a superuser run:". */
function statementsIn(stderr: string): string {
  const lines = stderr.split('\n');
  const start = lines.indexOf('Have a superuser run:');
  assert.ok(start >= 0, stderr);
  const sql: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (!line.startsWith('  ')) break;
    sql.push(line.trim());
  }
  return sql.join('\n');
}

async function adminToken(
  url: string,
  clientId: string,
  secret: string,
  resource: string,
): Promise<Response> {
  return fetch(`${url}/t/system/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope: 'orthid:admin' }),
  });
}

describe("the README's production logins on a clean PostgreSQL", { timeout: 600_000 }, () => {
  let cluster: Cluster;
  let dir: string;
  let env: Record<string, string>;
  let server: ServerProcess | undefined;
  let credentials: { client_id: string; client_secret: string };
  const at = (user: string, database = 'orthid') =>
    `postgres://${user}@127.0.0.1:${cluster.port}/${database}`;

  const listUsers = async (token: string) =>
    fetch(`${server!.url}/api/v1/tenants/system/users`, { headers: { authorization: `Bearer ${token}` } });
  const tokenHere = async () => {
    const response = await adminToken(
      server!.url,
      credentials.client_id,
      credentials.client_secret,
      `${server!.url}/api`,
    );
    assert.equal(response.status, 200, await response.clone().text());
    return ((await response.json()) as { access_token: string }).access_token;
  };

  before(async () => {
    cluster = await startCluster();
    dir = await mkdtemp(join(tmpdir(), 'orthid-prod-'));
    const masterFile = join(dir, 'master-key');
    await writeFile(masterFile, MASTER, { mode: 0o600 });
    env = {
      ORTHID_DATA_DIR: join(dir, 'data'),
      ORTHID_DATABASE_URL: at('orthid_server'),
      ORTHID_MIGRATION_DATABASE_URL: at('orthid_owner'),
      ORTHID_MASTER_KEY_FILE: masterFile,
      // Errors must reach the log at the default level.
      ORTHID_LOG_LEVEL: 'info',
    };
  });
  after(async () => {
    await server?.stop();
    cluster?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('an owner without CREATEROLE on a cluster without orthid_app is told the SQL to run, and nothing is applied', async () => {
    await query(cluster.url, 'CREATE ROLE lone_owner LOGIN');
    await query(cluster.url, 'CREATE DATABASE lone OWNER lone_owner');
    const loneEnv = {
      ORTHID_DATA_DIR: join(dir, 'lone'),
      ORTHID_DATABASE_URL: at('lone_owner', 'lone'),
      ORTHID_MASTER_KEY: MASTER,
    };
    const refused = await runCli(['migrate'], loneEnv);
    assert.equal(refused.code, exitCodes.unavailable, refused.stderr);
    assert.match(refused.stderr, /^error\[db\.role_missing\]: .*lacks the CREATEROLE privilege/);
    assert.doesNotMatch(refused.stderr, /server log/);
    const sql = statementsIn(refused.stderr);
    assert.equal(
      sql,
      'CREATE ROLE orthid_app NOLOGIN NOBYPASSRLS NOSUPERUSER NOCREATEDB NOCREATEROLE;\nGRANT orthid_app TO lone_owner;',
    );
    // Nothing half-applied: no table, no role.
    assert.deepEqual(await rowCounts(at('postgres', 'lone')), {});
    assert.equal((await query(cluster.url, `SELECT 1 FROM pg_roles WHERE rolname = 'orthid_app'`)).length, 0);
    // `orthid db roles --sql` prints the same role.
    const roles = await runCli(['db', 'roles', '--sql'], loneEnv);
    assert.equal(roles.code, 0, roles.stderr);
    assert.ok(roles.stdout.includes(`\n${sql.split('\n')[0]}\n`), roles.stdout);

    // What it printed, run by a superuser, is all that was missing: the same owner now migrates.
    psql(cluster, cluster.url, sql);
    const migrated = await runCli(['migrate', '--json'], loneEnv);
    assert.equal(migrated.code, 0, migrated.stderr);
    assert.ok((JSON.parse(migrated.stdout) as { applied: number[] }).applied.length > 0);
    assert.ok((await rowCounts(at('postgres', 'lone'))).orthid_migrations! > 0);

    // Leave the cluster as a DBA finds it for the README's own statements.
    await query(cluster.url, 'DROP DATABASE lone');
    await query(cluster.url, 'DROP ROLE orthid_app');
    await query(cluster.url, 'DROP ROLE lone_owner');
  });

  test("the README's statements make the logins: keystore init, migrate as the owner, start as the server login", async () => {
    psql(cluster, cluster.url, await readmeSql('-- As a superuser, on the deployment'));
    const [owner] = await query<{ rolsuper: boolean; rolcreaterole: boolean }>(
      cluster.url,
      `SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = 'orthid_owner'`,
    );
    assert.deepEqual(owner, { rolsuper: false, rolcreaterole: false });

    const init = await runCli(['keystore', 'init'], env);
    assert.equal(init.code, 0, init.stderr);
    const migrated = await runCli(['migrate'], env);
    assert.equal(migrated.code, 0, migrated.stderr);
    assert.match(migrated.stdout, /^Applied migrations /);

    server = await startServer(env);
    assert.equal((await fetch(`${server.url}/readyz`)).status, 200);
    credentials = JSON.parse(await readFile(join(env.ORTHID_DATA_DIR!, 'admin-credentials.json'), 'utf8'));
    const users = await listUsers(await tokenHere());
    assert.equal(users.status, 200, await users.text());
  });

  test('a revoked grant fails requests with db.permission_denied in the log, and migrate puts the grants back', async () => {
    const token = await tokenHere();
    await query(at('postgres'), 'REVOKE SELECT ON users FROM orthid_app');
    await query(at('postgres'), 'GRANT TRUNCATE ON audit_events TO orthid_app');
    const denied = await listUsers(token);
    assert.equal(denied.status, 503);
    const problem = (await denied.json()) as { code: string; detail: string };
    assert.equal(problem.code, 'db.permission_denied');
    assert.match(problem.detail, /permission denied for table users.*orthid migrate/);
    await server!.waitForOutput(/"code":"db\.permission_denied"/);

    const repaired = await runCli(['migrate', '--json'], env);
    assert.equal(repaired.code, 0, repaired.stderr);
    assert.deepEqual(JSON.parse(repaired.stdout), {
      applied: [],
      repaired: ['revoked TRUNCATE ON audit_events', 'granted SELECT ON users'],
    });
    assert.equal((await listUsers(token)).status, 200);
    const again = await runCli(['migrate', '--json'], env);
    assert.deepEqual(JSON.parse(again.stdout), { applied: [], repaired: [] });
  });

  test('a dropped orthid_app: migrate says what to run, then restores the role, its membership and every grant', async () => {
    const token = await tokenHere();
    await query(at('postgres'), 'DROP OWNED BY orthid_app');
    await query(cluster.url, 'DROP ROLE orthid_app');
    const missing = await listUsers(token);
    assert.equal(missing.status, 503);
    assert.equal(((await missing.json()) as { code: string }).code, 'db.role_missing');

    const refused = await runCli(['migrate'], env);
    assert.equal(refused.code, exitCodes.unavailable, refused.stderr);
    assert.match(refused.stderr, /^error\[db\.role_missing\]/);
    const sql = statementsIn(refused.stderr);
    assert.match(sql, /GRANT orthid_app TO orthid_server;/);
    psql(cluster, cluster.url, sql);
    const repaired = await runCli(['migrate', '--json'], env);
    assert.equal(repaired.code, 0, repaired.stderr);
    const { repaired: changes } = JSON.parse(repaired.stdout) as { repaired: string[] };
    assert.ok(changes.includes('granted SELECT, INSERT, UPDATE, DELETE ON users'), changes.join('\n'));
    assert.ok(changes.includes('granted SELECT ON orthid_migrations'), changes.join('\n'));
    assert.equal((await listUsers(token)).status, 200);
  });

  test('an orthid_app given BYPASSRLS by hand is refused with the ALTER ROLE to run, unchanged', async () => {
    await query(cluster.url, 'ALTER ROLE orthid_app BYPASSRLS');
    const refused = await runCli(['migrate'], env);
    assert.equal(refused.code, exitCodes.unavailable);
    assert.match(refused.stderr, /^error\[db\.app_role_unsafe\]/);
    const sql = statementsIn(refused.stderr);
    assert.equal(sql, 'ALTER ROLE orthid_app NOBYPASSRLS;');
    const [role] = await query<{ rolbypassrls: boolean }>(
      cluster.url,
      `SELECT rolbypassrls FROM pg_roles WHERE rolname = 'orthid_app'`,
    );
    assert.equal(role!.rolbypassrls, true);
    psql(cluster, cluster.url, sql);
    assert.equal((await runCli(['migrate'], env)).code, 0);
  });

  test('the backup login dumps every tenant with pg_dump; the server login cannot', async () => {
    const pgDump = join(cluster.binDir, 'pg_dump');
    const dump = (url: string) =>
      spawnSync(
        pgDump,
        ['--format=custom', '--no-owner', `--dbname=${url}`, `--file=${join(dir, 'x.dump')}`],
        {
          encoding: 'utf8',
        },
      );
    const asBackup = dump(at('orthid_backup'));
    assert.equal(asBackup.status, 0, asBackup.stderr);
    const asServer = dump(at('orthid_server'));
    assert.notEqual(asServer.status, 0);
    assert.match(asServer.stderr, /row-level security|permission denied/);
  });

  test('restarted at another ORTHID_PUBLIC_URL, the admin API issues tokens for the new address', async () => {
    const oldUrl = server!.url;
    assert.equal(await server!.stop(), 0);
    const port = await freePort();
    server = await startServer({ ...env, ORTHID_PUBLIC_URL: `http://localhost:${port}` }, 60_000, port);
    // startServer reaches it at 127.0.0.1; the public URL is what issuers and audiences use.
    const here = `http://localhost:${port}`;
    const response = await adminToken(
      server.url,
      credentials.client_id,
      credentials.client_secret,
      `${here}/api`,
    );
    assert.equal(response.status, 200, await response.clone().text());
    const { access_token } = (await response.json()) as { access_token: string };
    const users = await fetch(`${server.url}/api/v1/tenants/system/users`, {
      headers: { authorization: `Bearer ${access_token}` },
    });
    assert.equal(users.status, 200, await users.text());
    const stale = await adminToken(
      server.url,
      credentials.client_id,
      credentials.client_secret,
      `${oldUrl}/api`,
    );
    assert.equal(stale.status, 400);
    assert.equal(((await stale.json()) as { error: string }).error, 'invalid_target');
    // The verification checks (restore, drill, backup check) still get their token.
    const check = await runCli(['backup', 'check', '--json'], { ...env, ORTHID_PUBLIC_URL: here });
    assert.equal(check.code, 0, check.stdout + check.stderr);
  });
});
