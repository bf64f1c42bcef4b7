import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { exitCodes } from '../../src/core/errors.js';
import { runCli } from '../helpers/cli.js';
import { createTestDatabase } from '../helpers/postgres.js';

const MASTER = 'cli-test-master-secret-0123456789-abcdefghijkl';

function requireAge(): void {
  const probe = spawnSync('age', ['--version']);
  if (probe.error) throw new Error('The stock `age` CLI is required for this test: apt-get install -y age');
}

describe('the orthid command on real PostgreSQL', () => {
  let dir: string;
  let env: Record<string, string>;
  let url: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'orthid-cli-'));
    url = await createTestDatabase();
    env = { ORTHID_DATA_DIR: dir, ORTHID_DATABASE_URL: url, ORTHID_MASTER_KEY: MASTER };
    assert.equal((await runCli(['keystore', 'init'], env)).code, 0);
    assert.equal((await runCli(['migrate'], env)).code, 0);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('tenant create --json prints the id, slug and issuer', async () => {
    const result = await runCli(['tenant', 'create', 'acme', '--json'], env);
    assert.equal(result.code, 0, result.stderr);
    const tenant = JSON.parse(result.stdout);
    assert.match(tenant.id, /^[0-9a-f-]{36}$/);
    assert.equal(tenant.slug, 'acme');
    assert.equal(tenant.issuer, 'http://localhost:3000/t/acme');
  });

  test('a taken slug is refused with its code and the conflict exit code', async () => {
    const result = await runCli(['tenant', 'create', 'acme'], env);
    assert.equal(result.code, exitCodes.conflict);
    assert.match(result.stderr, /error\[tenant\.slug_taken\]/);
  });

  test('audit verify names the row an owner edited, and exits 1', async () => {
    await runCli(['user', 'create', '--tenant', 'acme', '--email', 'x@acme.test'], env);
    assert.equal((await runCli(['audit', 'verify', '--tenant', 'acme'], env)).code, 0);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query('ALTER TABLE audit_events DISABLE TRIGGER audit_events_immutable');
    await client.query(`UPDATE audit_events SET action = 'tenant.renamed' WHERE seq = 1`);
    await client.query('ALTER TABLE audit_events ENABLE TRIGGER audit_events_immutable');
    await client.end();
    const result = await runCli(['audit', 'verify', '--tenant', 'acme', '--json'], env);
    assert.equal(result.code, exitCodes.checkFailed);
    const report = JSON.parse(result.stdout);
    assert.equal(report.ok, false);
    assert.equal(report.broken.seq, '1');
    assert.match(report.broken.reason, /altered/);
  });

  test('the application role cannot update or delete audit events', async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query('BEGIN; SET LOCAL ROLE orthid_app');
      await assert.rejects(client.query(`UPDATE audit_events SET action = 'x'`), /permission denied/);
    } finally {
      await client.query('ROLLBACK');
      await client.end();
    }
  });

  test('a wrong master key is refused with keystore.wrong_master_key, exit 3, and the keystore is unchanged', async () => {
    const keystore = join(dir, 'keystore');
    const before = createHash('sha256')
      .update(await readFile(keystore))
      .digest('hex');
    const result = await runCli(['keystore', 'status'], { ...env, ORTHID_MASTER_KEY: `${MASTER}-wrong` });
    assert.equal(result.code, exitCodes.unauthenticated);
    assert.match(result.stderr, /error\[keystore\.wrong_master_key\]/);
    assert.equal(result.stderr.includes(MASTER), false);
    assert.equal(
      createHash('sha256')
        .update(await readFile(keystore))
        .digest('hex'),
      before,
    );
  });

  test('keystore export opens with the stock age CLI and imports into an empty data dir with the same key ids', async () => {
    requireAge();
    const keygen = spawnSync('age-keygen', ['-o', join(dir, 'backup-key.txt')], { encoding: 'utf8' });
    assert.equal(keygen.status, 0, keygen.stderr);
    const recipient = /age1[0-9a-z]+/.exec(keygen.stderr)![0];
    const exportFile = join(dir, 'keystore.age');
    const exported = await runCli(
      ['keystore', 'export', '--recipient', recipient, '-o', exportFile, '--json'],
      env,
    );
    assert.equal(exported.code, 0, exported.stderr);
    const { rootKeyIds } = JSON.parse(exported.stdout);

    const plain = spawnSync('age', ['-d', '-i', join(dir, 'backup-key.txt'), exportFile], {
      encoding: 'utf8',
    });
    assert.equal(plain.status, 0, plain.stderr);
    assert.equal(JSON.parse(plain.stdout).format, 'orthid-keystore-export');

    const fresh = await mkdtemp(join(tmpdir(), 'orthid-import-'));
    try {
      const freshEnv = { ORTHID_DATA_DIR: fresh, ORTHID_MASTER_KEY: `${MASTER}-other-host` };
      const imported = await runCli(
        ['keystore', 'import', exportFile, '--identity', join(dir, 'backup-key.txt')],
        freshEnv,
      );
      assert.equal(imported.code, 0, imported.stderr);
      const status = await runCli(['keystore', 'status', '--json'], freshEnv);
      assert.deepEqual(JSON.parse(status.stdout).rootKeyIds, rootKeyIds);
    } finally {
      await rm(fresh, { recursive: true, force: true });
    }
  });

  test('keystore export --threshold 2 writes one age share per custodian; any 2 import, 1 does not', async () => {
    requireAge();
    const custodians = ['a', 'b', 'c'].map((name) => {
      const file = join(dir, `custodian-${name}.txt`);
      const keygen = spawnSync('age-keygen', ['-o', file], { encoding: 'utf8' });
      assert.equal(keygen.status, 0, keygen.stderr);
      return { file, recipient: /age1[0-9a-z]+/.exec(keygen.stderr)![0] };
    });
    const exported = await runCli(
      [
        'keystore',
        'export',
        ...custodians.flatMap((c) => ['-r', c.recipient]),
        '--threshold',
        '2',
        '-o',
        join(dir, 'ceremony'),
        '--json',
      ],
      env,
    );
    assert.equal(exported.code, 0, exported.stderr);
    const { files, rootKeyIds } = JSON.parse(exported.stdout) as { files: string[]; rootKeyIds: string[] };
    assert.equal(files.length, 3);
    // Each share opens with its own custodian's identity only.
    assert.equal(spawnSync('age', ['-d', '-i', custodians[0]!.file, files[0]!]).status, 0);
    assert.notEqual(spawnSync('age', ['-d', '-i', custodians[0]!.file, files[1]!]).status, 0);

    const fresh = await mkdtemp(join(tmpdir(), 'orthid-shares-'));
    try {
      const freshEnv = { ORTHID_DATA_DIR: fresh, ORTHID_MASTER_KEY: `${MASTER}-other-host` };
      const one = await runCli(
        ['keystore', 'import', files[1]!, '--identity', custodians[1]!.file],
        freshEnv,
      );
      assert.notEqual(one.code, 0);
      const two = await runCli(
        ['keystore', 'import', files[2]!, files[0]!, '-i', custodians[2]!.file, '-i', custodians[0]!.file],
        freshEnv,
      );
      assert.equal(two.code, 0, two.stderr);
      const status = await runCli(['keystore', 'status', '--json'], freshEnv);
      assert.deepEqual(JSON.parse(status.stdout).rootKeyIds, rootKeyIds);
    } finally {
      await rm(fresh, { recursive: true, force: true });
    }
  });

  test('tenant shred refuses without the slug confirmed, then shreds and is audited', async () => {
    assert.equal((await runCli(['tenant', 'create', 'doomed'], env)).code, 0);
    const early = await runCli(['tenant', 'shred', 'doomed', '--confirm', 'doomed'], env);
    assert.equal(early.code, exitCodes.not_found);
    assert.match(early.stderr, /system tenant.*Nothing was destroyed/);
    // What `orthid start` bootstraps: the system tenant, whose audit log records the shred.
    assert.equal((await runCli(['tenant', 'create', 'system'], env)).code, 0);
    const refused = await runCli(['tenant', 'shred', 'doomed'], env);
    assert.equal(refused.code, exitCodes.invalid);
    assert.match(refused.stderr, /error\[tenant\.confirmation_required\].*--confirm doomed/);
    const shredded = await runCli(['tenant', 'shred', 'doomed', '--confirm', 'doomed', '--json'], env);
    assert.equal(shredded.code, 0, shredded.stderr);
    const result = JSON.parse(shredded.stdout);
    assert.equal(result.destroyedRootKeyIds.length, 1);
    const status = JSON.parse((await runCli(['keystore', 'status', '--json'], env)).stdout);
    assert.deepEqual(
      status.destroyedKeys.map((k: { id: string }) => k.id),
      result.destroyedRootKeyIds,
    );
    assert.equal(status.rootKeyIds.includes(result.destroyedRootKeyIds[0]), false);
    const audit = await runCli(['audit', 'tail', '--tenant', 'system', '--json'], env);
    assert.equal(audit.code, 0, audit.stderr);
    const [event] = JSON.parse(audit.stdout);
    assert.equal(event.action, 'tenant.shredded');
    assert.equal(event.details.tenant, 'doomed');
  });

  test('a keystore export cannot be imported with the wrong identity', async () => {
    const other = spawnSync('age-keygen', [], { encoding: 'utf8' }).stdout;
    await writeFile(join(dir, 'other.txt'), other);
    const result = await runCli(
      ['keystore', 'import', join(dir, 'keystore.age'), '--identity', join(dir, 'other.txt')],
      {
        ORTHID_DATA_DIR: join(dir, 'elsewhere'),
        ORTHID_MASTER_KEY: MASTER,
      },
    );
    assert.equal(result.code, exitCodes.invalid);
    assert.match(result.stderr, /error\[age\.decrypt_failed\]/);
  });

  test('invalid configuration lists every problem at once and exits 2', async () => {
    const result = await runCli(['tenant', 'list'], {
      ORTHID_DATABASE_URL: 'mysql://nope',
      ORTHID_PORT: 'eighty',
      ORTHID_REGION: 'Not A Region',
    });
    assert.equal(result.code, exitCodes.invalid);
    assert.match(result.stderr, /ORTHID_DATABASE_URL/);
    assert.match(result.stderr, /ORTHID_PORT/);
    assert.match(result.stderr, /ORTHID_REGION/);
  });
});
