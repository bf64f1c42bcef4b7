import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { exitCodes } from '../../src/core/errors.js';
import { ageKeygen, requireAgeCli } from '../helpers/age-cli.js';
import { runCli } from '../helpers/cli.js';
import { backupDeploymentEnv, initDeployment } from '../helpers/deployment.js';
import { createTestDatabase, query, rowCounts, testCluster } from '../helpers/postgres.js';
import { startS3Server, TEST_CREDENTIALS } from '../helpers/s3-server.js';
import { type ServerProcess, startServer } from '../helpers/server-process.js';

const MASTER = 'restore-drill-master-secret-0123456789abcdef';

describe('backup, restore and drill on real PostgreSQL', () => {
  let dir: string;
  let env: Record<string, string>;
  let sourceUrl: string;
  let server: ServerProcess;
  let key: { file: string; recipient: string };

  before(async () => {
    requireAgeCli();
    dir = await mkdtemp(join(tmpdir(), 'orthid-restore-'));
    key = ageKeygen(dir);
    sourceUrl = await createTestDatabase();
    env = backupDeploymentEnv(dir, sourceUrl, MASTER, key);
    await initDeployment(env);
    server = await startServer(env); // bootstraps the system tenant and the canary
    for (const slug of ['alpha', 'beta']) {
      assert.equal((await runCli(['tenant', 'create', slug], env)).code, 0);
      const user = await runCli(
        [
          'user',
          'create',
          '--tenant',
          slug,
          '--email',
          `someone@${slug}.test`,
          '--name',
          `Someone of ${slug}`,
          '--password-stdin',
        ],
        env,
        'a restorable passphrase of sufficient length',
      );
      assert.equal(user.code, 0, user.stderr);
    }
    const dump = await runCli(['backup', 'dump', '--encrypt', '--json'], env);
    assert.equal(dump.code, 0, dump.stderr);
  });

  after(async () => {
    if (server && server.child.exitCode === null) await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('a restore into a fresh database passes every check and keeps rows, policies and tenant boundaries', async () => {
    const targetUrl = await createTestDatabase('orthid_restored');
    const restoredEnv = {
      ...env,
      ORTHID_DATA_DIR: join(dir, 'restored'),
      ORTHID_DATABASE_URL: targetUrl,
      ORTHID_MASTER_KEY: `${MASTER}-on-another-host`,
    };
    const restored = await runCli(['backup', 'restore', 'latest', '--json'], restoredEnv);
    assert.equal(restored.code, 0, restored.stderr + restored.stdout);
    const outcome = JSON.parse(restored.stdout);
    assert.equal(outcome.ok, true, restored.stdout);
    assert.deepEqual(
      outcome.checks.map((c: { name: string }) => c.name),
      ['sign-in', 'token', 'audit-log', 'decrypted-fields', 'object-store'],
    );
    // The canary's second factor: its sealed TOTP secret came back and verifies on the copy.
    assert.match(outcome.checks[0].detail, /with its password and a TOTP code/);
    for (const step of ['[1/6]', '[2/6] Restore the keystore first', '[3/6]', '[4/6]', '[5/6]', '[6/6]']) {
      assert.ok(restored.stderr.includes(step), `missing step ${step} in:\n${restored.stderr}`);
    }

    const [before, afterRestore] = [await rowCounts(sourceUrl), await rowCounts(targetUrl)];
    // The checks themselves sign in and audit on the restored copy; everything else is equal.
    for (const table of Object.keys(before)) {
      if (['audit_events', 'sign_in_throttle', 'oidc_payloads'].includes(table)) continue;
      assert.equal(afterRestore[table], before[table], `row count of ${table}`);
    }
    assert.ok(afterRestore.audit_events! >= before.audit_events!);
    assert.ok(afterRestore.user_factors! >= 1, 'factors are in the set');
    const analysed = await query<{ tablename: string }>(
      targetUrl,
      `SELECT DISTINCT tablename FROM pg_stats WHERE schemaname = 'public' AND tablename IN ('users', 'audit_events') ORDER BY 1`,
    );
    assert.deepEqual(
      analysed.map((r) => r.tablename),
      ['audit_events', 'users'],
      'the restore gathers planner statistics',
    );
    const policies = await query<{ n: string }>(
      targetUrl,
      `SELECT count(*) AS n FROM pg_policy WHERE polname = 'tenant_isolation'`,
    );
    assert.ok(Number(policies[0]!.n) >= 15);

    const alpha = (await query<{ id: string }>(targetUrl, `SELECT id FROM tenants WHERE slug = 'alpha'`))[0]!
      .id;
    const client = new pg.Client({ connectionString: targetUrl });
    await client.connect();
    await client.query('BEGIN');
    await client.query(
      `SELECT set_config('role', 'orthid_app', true), set_config('orthid.tenant_id', $1, true)`,
      [alpha],
    );
    const seen = await client.query<{ tenant_id: string }>('SELECT DISTINCT tenant_id FROM users');
    await client.query('ROLLBACK');
    await client.end();
    assert.deepEqual(
      seen.rows.map((r) => r.tenant_id),
      [alpha],
    );
  });

  test('a set taken with dump --encrypt --upload to S3 restores from there and passes every check', async () => {
    const s3 = await startS3Server({ prefix: 'orthid-backups', region: 'au-syd-1' });
    try {
      const s3Env = {
        ...env,
        ORTHID_REGION: s3.region,
        ORTHID_BACKUP_DEST: s3.url,
        ORTHID_BACKUP_KEYSTORE_DEST: `file://${join(dir, 'keys-s3')}`,
        AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
      };
      const dumped = await runCli(['dump', '--encrypt', '--upload', '--json'], s3Env);
      assert.equal(dumped.code, 0, dumped.stderr);
      assert.equal(JSON.parse(dumped.stdout).region, 'au-syd-1');
      const targetUrl = await createTestDatabase('orthid_from_s3');
      const restored = await runCli(['backup', 'restore', 'latest', '--json'], {
        ...s3Env,
        ORTHID_DATA_DIR: join(dir, 'from-s3'),
        ORTHID_DATABASE_URL: targetUrl,
        ORTHID_MASTER_KEY: `${MASTER}-s3-host`,
      });
      assert.equal(restored.code, 0, restored.stderr + restored.stdout);
      assert.equal(JSON.parse(restored.stdout).ok, true, restored.stdout);
    } finally {
      await s3.stop();
    }
  });

  test("the page's manual procedure works on OrthID's files: age -d, pg_restore, keystore import", async () => {
    const cluster = await testCluster();
    const setDir = spawnSync('find', [join(dir, 'sets'), '-name', 'db.dump.age'], { encoding: 'utf8' })
      .stdout.trim()
      .split('\n')[0]!;
    const keystoreFile = spawnSync('find', [join(dir, 'keys'), '-name', 'keystore.age'], { encoding: 'utf8' })
      .stdout.trim()
      .split('\n')[0]!;
    const plain = join(dir, 'orthid-restore.dump');
    const decrypted = spawnSync('age', ['-d', '-i', key.file, '-o', plain, setDir]);
    assert.equal(decrypted.status, 0, String(decrypted.stderr));
    const targetUrl = await createTestDatabase('orthid_manual');
    const restored = spawnSync(
      join(cluster.binDir, 'pg_restore'),
      ['--no-owner', '--clean', '--if-exists', '--dbname', targetUrl, plain],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(restored.status, 0, restored.stderr);
    const manualEnv = {
      ...env,
      ORTHID_DATA_DIR: join(dir, 'manual'),
      ORTHID_DATABASE_URL: targetUrl,
      ORTHID_MASTER_KEY: `${MASTER}-manual`,
    };
    const imported = await runCli(['keystore', 'import', keystoreFile, '--identity', key.file], manualEnv);
    assert.equal(imported.code, 0, imported.stderr);
    // Step 4 by hand: the objects archive is a tar of the object store's keys.
    const objectsFile = spawnSync('find', [join(dir, 'sets'), '-name', 'objects.tar.age'], {
      encoding: 'utf8',
    })
      .stdout.trim()
      .split('\n')[0]!;
    const objectsDir = join(dir, 'manual', 'objects');
    spawnSync('mkdir', ['-p', objectsDir]);
    const untar = spawnSync(
      'sh',
      [
        '-c',
        `age -d -i "${key.file}" "${objectsFile}" | tar -x --warning=no-unknown-keyword -C "${objectsDir}"`,
      ],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(untar.status, 0, untar.stderr);
    const checked = await runCli(['backup', 'check', '--json'], manualEnv);
    assert.equal(checked.code, 0, checked.stdout + checked.stderr);
    assert.equal(JSON.parse(checked.stdout).ok, true);
  });

  test("a restore whose keystore is withheld, or is another deployment's, is refused with backup.keystore_mismatch and leaves the target untouched", async () => {
    const other = await mkdtemp(join(tmpdir(), 'orthid-other-'));
    const keystoreFile = spawnSync('find', [join(dir, 'keys'), '-name', 'keystore.age'], { encoding: 'utf8' })
      .stdout.trim()
      .split('\n')[0]!;
    const withheld = join(other, 'withheld.age');
    try {
      const otherEnv = { ORTHID_DATA_DIR: other, ORTHID_MASTER_KEY: MASTER };
      assert.equal((await runCli(['keystore', 'init'], otherEnv)).code, 0);
      const foreign = join(other, 'foreign.age');
      assert.equal(
        (await runCli(['keystore', 'export', '-r', key.recipient, '-o', foreign], otherEnv)).code,
        0,
      );
      const targetUrl = await createTestDatabase('orthid_mismatch');
      const targetEnv = { ...env, ORTHID_DATA_DIR: join(dir, 'mismatch'), ORTHID_DATABASE_URL: targetUrl };

      const wrong = await runCli(['backup', 'restore', 'latest', '--keystore-file', foreign], targetEnv);
      assert.equal(wrong.code, exitCodes.conflict, wrong.stderr);
      assert.match(wrong.stderr, /error\[backup\.keystore_mismatch\]: The keystore belongs to deployment/);

      await rename(keystoreFile, withheld);
      const without = await runCli(['backup', 'restore', 'latest'], targetEnv);
      assert.equal(without.code, exitCodes.conflict, without.stderr);
      assert.match(without.stderr, /error\[backup\.keystore_mismatch\]: The set's keystore export is not at/);

      assert.deepEqual(await rowCounts(targetUrl), {});
      assert.equal(existsSync(join(dir, 'mismatch', 'keystore')), false);
    } finally {
      if (existsSync(withheld)) await rename(withheld, keystoreFile);
      await rm(other, { recursive: true, force: true });
    }
  });

  test('a drill of a good set passes, stores its report beside the set and is audited in the live deployment', async () => {
    const result = await runCli(['backup', 'drill', '--json'], env);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const report = JSON.parse(result.stdout);
    assert.equal(report.ok, true);
    assert.ok(report.restore_seconds > 0);
    assert.deepEqual(
      report.checks.map((c: { ok: boolean }) => c.ok),
      [true, true, true, true, true],
    );
    const list = await runCli(['backup', 'list', '--json'], env);
    assert.match(list.stdout, /"drill"/);
    const audit = await runCli(['audit', 'tail', '--tenant', 'system', '--json'], env);
    assert.ok(
      JSON.parse(audit.stdout).some(
        (e: { action: string; outcome: string }) => e.action === 'backup.drill' && e.outcome === 'success',
      ),
    );
    const leftovers = await query<{ datname: string }>(
      sourceUrl,
      `SELECT datname FROM pg_database WHERE datname LIKE 'orthid_drill_%'`,
    );
    assert.deepEqual(leftovers, []);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const drilled = Number(/^orthid_backup_last_drill_success_timestamp_seconds (\d+)$/m.exec(metrics)?.[1]);
    const dumped = Number(/^orthid_backup_last_success_timestamp_seconds (\d+)$/m.exec(metrics)?.[1]);
    assert.ok(Math.abs(drilled - Date.now() / 1000) < 600, metrics);
    assert.ok(dumped > 0 && dumped <= drilled);
  });

  test('a drill whose dump is corrupt fails, names the failure and exits non-zero', async () => {
    const dumpFile = spawnSync('find', [join(dir, 'sets'), '-name', 'db.dump.age'], { encoding: 'utf8' })
      .stdout.trim()
      .split('\n')[0]!;
    const original = await readFile(dumpFile);
    const damaged = Buffer.from(original);
    damaged[Math.floor(damaged.length / 2)]! ^= 0x01;
    await writeFile(dumpFile, damaged);
    try {
      const result = await runCli(['backup', 'drill', '--json'], env);
      assert.equal(result.code, exitCodes.checkFailed, result.stderr + result.stdout);
      assert.ok(result.stdout.startsWith('{'), result.stderr);
      const report = JSON.parse(result.stdout);
      assert.equal(report.ok, false);
      assert.match(report.error.code, /backup\.checksum_mismatch|objects\.checksum_mismatch/);
      assert.match(report.error.message, /db\.dump\.age|db\.dump/);
    } finally {
      await writeFile(dumpFile, original);
    }
  });
});
