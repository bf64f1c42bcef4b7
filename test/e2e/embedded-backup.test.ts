import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ageKeygen, requireAgeCli } from '../helpers/age-cli.js';
import { runCli } from '../helpers/cli.js';
import { type ServerProcess, startServer } from '../helpers/server-process.js';

/** The whole page on the embedded default: no PostgreSQL server anywhere. */
describe('backup, drill and restore on the embedded default', () => {
  let dir: string;
  let env: Record<string, string>;
  let server: ServerProcess;

  before(async () => {
    requireAgeCli();
    dir = await mkdtemp(join(tmpdir(), 'orthid-embedded-backup-'));
    const key = ageKeygen(dir);
    env = {
      ORTHID_DATA_DIR: join(dir, 'live'),
      ORTHID_BACKUP_DEST: `file://${join(dir, 'sets')}`,
      ORTHID_BACKUP_KEYSTORE_DEST: `file://${join(dir, 'keys')}`,
      ORTHID_BACKUP_AGE_RECIPIENTS: key.recipient,
      ORTHID_BACKUP_AGE_IDENTITY_FILE: key.file,
    };
    server = await startServer(env);
    assert.equal((await runCli(['tenant', 'create', 'acme'], env)).code, 0);
    const user = await runCli(
      [
        'user',
        'create',
        '--tenant',
        'acme',
        '--email',
        'em@acme.test',
        '--name',
        'Em Bedded',
        '--password-stdin',
      ],
      env,
      'embedded and still restorable',
    );
    assert.equal(user.code, 0, user.stderr);
  });

  after(async () => {
    if (server?.child.exitCode === null) await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('a dump taken while the server runs produces a plain-SQL set', async () => {
    const dump = await runCli(['backup', 'dump', '--encrypt', '--json'], env);
    assert.equal(dump.code, 0, dump.stderr);
    const manifest = JSON.parse(dump.stdout);
    assert.equal(manifest.database.engine, 'pglite');
    assert.equal(manifest.database.format, 'plain');
    assert.ok(manifest.parts.some((p: { name: string }) => p.name === 'db.sql.age'));
  });

  test('a drill restores it into an in-memory database and every check passes', async () => {
    const drill = await runCli(['backup', 'drill', '--json'], env);
    assert.equal(drill.code, 0, drill.stdout + drill.stderr);
    const report = JSON.parse(drill.stdout);
    assert.equal(report.ok, true, drill.stdout);
    assert.equal(report.target, 'in-memory embedded database');
  });

  test('a restore into a new data directory serves the same tenant and passes every check', async () => {
    const restoredEnv = { ...env, ORTHID_DATA_DIR: join(dir, 'restored') };
    const restored = await runCli(
      ['backup', 'restore', 'latest', '--into-live-stores', '--json'],
      restoredEnv,
    );
    assert.equal(restored.code, 0, restored.stdout + restored.stderr);
    assert.equal(JSON.parse(restored.stdout).ok, true);
    const second = await startServer(restoredEnv);
    try {
      const tenants = await runCli(['tenant', 'list', '--json'], restoredEnv);
      assert.deepEqual(
        JSON.parse(tenants.stdout).map((t: { slug: string }) => t.slug),
        ['acme', 'system'],
      );
      const check = await runCli(['backup', 'check', '--json'], restoredEnv);
      assert.equal(check.code, 0, check.stdout + check.stderr);
    } finally {
      await second.stop();
    }
  });
});
