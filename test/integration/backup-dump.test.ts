import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import type { DumpOptions } from '../../src/backup/dump-set.js';
import type { Manifest } from '../../src/backup/manifest.js';
import { runBackupDump } from '../../src/backup/run-dump.js';
import { findBackupSet, listBackupSets } from '../../src/backup/sets.js';
import { verifyBackupSet } from '../../src/backup/verify.js';
import { systemClock } from '../../src/core/clock.js';
import { isOrthIdError } from '../../src/core/errors.js';
import { withTenant } from '../../src/storage/db/database.js';
import { assertPgDumpCanRead, openPostgresDumpSource } from '../../src/storage/db/postgres-dump.js';
import type { ObjectStore } from '../../src/storage/objects/object-store.js';
import { openObjectStore } from '../../src/storage/objects/open-object-store.js';
import { ageKeygen, requireAgeCli } from '../helpers/age-cli.js';
import { createTestOrthId, type TestOrthId } from '../helpers/orthid.js';
import { createTestDatabase } from '../helpers/postgres.js';
import { type S3TestServer, startS3Server } from '../helpers/s3-server.js';

function requirePgTools(): void {
  for (const tool of ['pg_dump', 'pg_restore', 'psql']) {
    const probe = spawnSync(tool, ['--version']);
    if (probe.error || probe.status !== 0) {
      throw new Error(
        `\`${tool}\` is required for the backup tests but does not run. Install it: apt-get install -y postgresql-client`,
      );
    }
  }
}

/** Tenants with users (sealed fields), audit events from every change, and objects with odd keys. */
async function seed(app: TestOrthId): Promise<void> {
  for (const slug of ['acme', 'globex', 'initech']) {
    const tenant = await app.tenants.create({ slug, actor: 'test' });
    await withTenant(app.db, tenant.id, async (tx) => {
      for (const name of ['Ann', 'Bob', 'Cy']) {
        await app.users.create(
          tx,
          tenant.id,
          { email: `${name.toLowerCase()}@${slug}.example`, name: `${name} of ${slug}` },
          'test',
        );
      }
    });
  }
  await app.objects.put('media/ann.png', randomBytes(70_000), {
    contentType: 'image/png',
    metadata: { owner: 'ann' },
  });
  await app.objects.put(`exports/${'ü'.repeat(60)}/bundle.json`, Buffer.from('{"signed":true}'), {
    contentType: 'application/json',
  });
}

function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function fileOf(dir: string, part: { key: string }): string {
  return join(dir, ...part.key.split('/'));
}

describe('backup dump on real PostgreSQL', () => {
  let app: TestOrthId;
  let work: string;
  let key: ReturnType<typeof ageKeygen>;
  let sets: string;
  let keys: string;
  let manifest: Manifest;
  const options = (extra: Partial<DumpOptions> = {}): DumpOptions => ({
    encrypt: true,
    upload: false,
    recipients: [key.recipient],
    dest: pathToFileURL(sets).href,
    destConfigured: true,
    keystoreDest: pathToFileURL(keys).href,
    ...extra,
  });
  const dump = (extra: Partial<DumpOptions> = {}, config = app.config) =>
    runBackupDump(
      { config, objects: app.objects, keystore: app.keystore, clock: systemClock },
      options(extra),
    );

  before(async () => {
    requireAgeCli();
    requirePgTools();
    work = mkdtempSync(join(tmpdir(), 'orthid-backup-'));
    key = ageKeygen(work);
    sets = join(work, 'sets');
    keys = join(work, 'keys');
    app = await createTestOrthId('postgres');
    await seed(app);
    manifest = await dump();
  });
  after(async () => {
    await app.close();
    rmSync(work, { recursive: true, force: true });
  });

  test('writes a complete set laid out by date, with the manifest last and the keystore apart', async () => {
    const started = new Date(manifest.startedAt);
    const day = `${started.getUTCFullYear()}/${String(started.getUTCMonth() + 1).padStart(2, '0')}/${String(started.getUTCDate()).padStart(2, '0')}`;
    assert.match(manifest.setId, new RegExp(`^${app.keystore.deploymentId}-\\d{8}T\\d{6}Z$`));
    assert.deepEqual(
      manifest.parts.map((p) => [p.name, p.location, p.key]),
      [
        ['db.dump.age', 'dest', `${day}/${manifest.setId}/db.dump.age`],
        ['objects.tar.age', 'dest', `${day}/${manifest.setId}/objects.tar.age`],
        ['keystore.age', 'keystore-dest', `${day}/${manifest.setId}/keystore.age`],
      ],
    );
    assert.deepEqual(
      readdirSync(join(sets, day, manifest.setId))
        .filter((f) => !f.startsWith('.'))
        .sort(),
      ['db.dump.age', 'manifest.json', 'objects.tar.age'],
    );
    assert.equal(existsSync(join(keys, day, manifest.setId, 'keystore.age')), true);
    const listed = await listBackupSets(
      await openObjectStore(pathToFileURL(sets).href),
      await openObjectStore(pathToFileURL(keys).href),
    );
    assert.deepEqual(
      listed.map((s) => [s.id, s.status]),
      [[manifest.setId, 'complete']],
    );
  });

  test('db.dump.age opens with `age -d -i key.txt` and pg_restore --list reads every table, policy and role grant', () => {
    const part = manifest.parts.find((p) => p.name === 'db.dump.age')!;
    const plain = join(work, 'x.dump');
    execFileSync('age', ['-d', '-i', key.file, '-o', plain, fileOf(sets, part)]);
    const toc = execFileSync('pg_restore', ['--list', plain], { encoding: 'utf8' });
    for (const entry of [
      'TABLE DATA public users',
      'TABLE DATA public audit_events',
      'TABLE DATA public tenant_keys',
      'POLICY public users tenant_isolation',
    ]) {
      assert.match(toc, new RegExp(entry), entry);
    }
    assert.match(toc, /Format: CUSTOM/);
    assert.equal(manifest.database.format, 'custom');
    assert.equal(manifest.database.compression, 'gzip:1');
    assert.match(manifest.database.dumpTool, /^pg_dump \(PostgreSQL\) \d+/);
  });

  test('keystore.age opens with `age -d` and holds the root keys the manifest says the data needs', async () => {
    const part = manifest.parts.find((p) => p.name === 'keystore.age')!;
    const exported = JSON.parse(
      execFileSync('age', ['-d', '-i', key.file, fileOf(keys, part)], { encoding: 'utf8' }),
    );
    assert.equal(exported.format, 'orthid-keystore-export');
    assert.equal(exported.keystore.deploymentId, manifest.deploymentId);
    // Each tenant's keys are wrapped by its own root key; the deployment's own one wraps nothing.
    const tenantRoots = (await app.custody.rootKeys()).filter((k) => k.scope !== 'deployment');
    assert.deepEqual([...manifest.keys.rootKeyIds].sort(), tenantRoots.map((k) => k.id).sort());
    for (const id of manifest.keys.rootKeyIds)
      assert.ok(exported.keystore.rootKeys.some((k: { id: string }) => k.id === id));
  });

  test('objects.tar.age opens with age and tar lists every object under its key', () => {
    const part = manifest.parts.find((p) => p.name === 'objects.tar.age')!;
    const tar = execFileSync('age', ['-d', '-i', key.file, fileOf(sets, part)]);
    const listing = spawnSync('tar', ['-t'], { input: tar, encoding: 'utf8' });
    assert.equal(listing.stderr, '');
    assert.deepEqual(listing.stdout.trim().split('\n').sort(), [
      `exports/${'ü'.repeat(60)}/bundle.json`,
      'media/ann.png',
    ]);
    assert.deepEqual(manifest.objects, { count: 2, bytes: 70_000 + 15 });
  });

  test('the manifest records each stored part’s size and SHA-256 and holds no key material', () => {
    for (const part of manifest.parts) {
      const file = fileOf(part.location === 'dest' ? sets : keys, part);
      assert.equal(sha256File(file), part.sha256, part.name);
      assert.equal(readFileSync(file).length, part.size, part.name);
      assert.equal(part.encrypted, true);
    }
    const text = readFileSync(join(sets, manifest.parts[0]!.key.replace(/[^/]+$/, 'manifest.json')), 'utf8');
    for (const rootKey of app.keystore.exportContents().rootKeys)
      assert.equal(text.includes(rootKey.key), false, 'root key material');
    assert.equal(text.includes(key.recipient), false, 'recipients appear only as fingerprints');
    assert.equal(text.includes('AGE-SECRET-KEY'), false);
    assert.match(manifest.recipients[0]!, /^sha256:[0-9a-f]{16}$/);
    assert.equal(manifest.region, 'local');
    assert.equal(manifest.database.engine, 'postgres');
    assert.ok(manifest.schemaVersion >= 1);
    assert.ok(new Date(manifest.finishedAt) >= new Date(manifest.startedAt));
  });

  test('verify passes on the set, and names the part when one byte of it is flipped', async () => {
    const dest = await openObjectStore(pathToFileURL(sets).href);
    const keystoreStore = await openObjectStore(pathToFileURL(keys).href);
    const set = await findBackupSet(dest, 'latest', keystoreStore);
    const deps = { dest, keystoreStore, identities: [key.identity], clock: systemClock };
    const good = await verifyBackupSet(deps, set);
    assert.equal(good.ok, true, JSON.stringify(good, null, 2));
    assert.deepEqual(
      good.parts.map((p) => p.checks.map((c) => c.name)),
      [
        ['present', 'checksum', 'decrypts', 'readable'],
        ['present', 'checksum', 'decrypts', 'readable'],
        ['present', 'checksum', 'decrypts', 'readable'],
      ],
    );
    for (const part of manifest.parts) {
      const file = fileOf(part.location === 'dest' ? sets : keys, part);
      const original = readFileSync(file);
      const damaged = Buffer.from(original);
      damaged[Math.floor(damaged.length / 2)]! ^= 0x01;
      writeFileSync(file, damaged);
      try {
        const report = await verifyBackupSet(deps, set);
        assert.equal(report.ok, false);
        const failed = report.parts.filter((p) => !p.ok);
        assert.deepEqual(
          failed.map((p) => p.part),
          [part.name],
        );
        assert.equal(failed[0]!.error?.code, 'backup.checksum_mismatch');
        assert.match(failed[0]!.error!.message, new RegExp(part.name.replace('.', '\\.')));
        assert.equal(failed[0]!.checks.find((c) => c.name === 'decrypts')?.ok, false);
      } finally {
        writeFileSync(file, original);
      }
    }
  });

  test('--encrypt without a recipient fails before anything is written', async () => {
    const empty = join(work, 'never');
    await assert.rejects(
      dump({ recipients: [], dest: pathToFileURL(empty).href, keystoreDest: undefined }),
      (e) => isOrthIdError(e, 'backup.no_recipients'),
    );
    assert.equal(existsSync(empty), false);
  });

  test('an unencrypted upload is refused unless --allow-plaintext-upload', async () => {
    await assert.rejects(
      dump({ encrypt: false, upload: true, dest: 's3://orthid-backups/x?region=local' }),
      (e) => isOrthIdError(e, 'backup.plaintext_upload'),
    );
  });

  test('an unencrypted local set has no keystore export (never root keys in plaintext)', async () => {
    const plain = join(work, 'plain');
    const m = await dump({ encrypt: false, dest: pathToFileURL(plain).href, keystoreDest: undefined });
    assert.deepEqual(
      m.parts.map((p) => p.name),
      ['db.dump', 'objects.tar'],
    );
    assert.equal(m.keys.keystoreIncluded, false);
    assert.match(
      execFileSync('pg_restore', ['--list', fileOf(plain, m.parts[0]!)], { encoding: 'utf8' }),
      /TABLE DATA public users/,
    );
  });

  test('two concurrent dumps: one completes, the other fails with backup.locked', async () => {
    const dest = join(work, 'concurrent');
    const results = await Promise.allSettled([
      dump({ dest: pathToFileURL(dest).href }),
      dump({ dest: pathToFileURL(dest).href }),
    ]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    assert.equal(rejected.reason.code, 'backup.locked');
  });

  test('a pg_dump older than the server is refused with backup.pg_dump_too_old before anything is written', async () => {
    assert.throws(
      () => assertPgDumpCanRead({ text: 'pg_dump (PostgreSQL) 9.2.24', major: 9.2 }, 90624, '9.6.24'),
      (e) => isOrthIdError(e, 'backup.pg_dump_too_old'),
    );
    const fake = join(work, 'old-pg_dump');
    writeFileSync(fake, '#!/bin/sh\necho "pg_dump (PostgreSQL) 14.11"\n');
    chmodSync(fake, 0o755);
    const source = await openPostgresDumpSource({
      dumpUrl: app.databaseUrl!,
      lockUrl: app.databaseUrl!,
      pgDump: fake,
    });
    try {
      await assert.rejects(
        source.describe(),
        (e) => isOrthIdError(e, 'backup.pg_dump_too_old') && /postgresql-client-\d+/.test(e.message),
      );
    } finally {
      await source.close();
    }
  });

  test('a backup login that cannot read every tenant is refused with backup.dump_forbidden', async () => {
    const role = `orthid_backup_${randomBytes(4).toString('hex')}`;
    const admin = new pg.Client({ connectionString: app.databaseUrl });
    await admin.connect();
    await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw' IN ROLE pg_read_all_data`);
    await admin.end();
    const url = new URL(app.databaseUrl!);
    url.username = role;
    url.password = 'pw';
    const config = { ...app.config, backupDatabaseUrl: url.toString() };
    const dest = join(work, 'forbidden');
    await assert.rejects(dump({ dest: pathToFileURL(dest).href }, config), (e) =>
      isOrthIdError(e, 'backup.dump_forbidden'),
    );
    assert.equal(existsSync(dest), false);
  });
});

describe('backup dump to S3', () => {
  let app: TestOrthId;
  let s3: S3TestServer;
  let work: string;
  let key: ReturnType<typeof ageKeygen>;

  before(async () => {
    requireAgeCli();
    work = mkdtempSync(join(tmpdir(), 'orthid-backup-s3-'));
    key = ageKeygen(work);
    s3 = await startS3Server({ prefix: 'orthid-backups' });
    app = await createTestOrthId('postgres', { env: { ORTHID_REGION: s3.region } });
    await seed(app);
  });
  after(async () => {
    await app.close();
    await s3.stop();
    rmSync(work, { recursive: true, force: true });
  });

  const run = (config: typeof app.config, extra: Partial<DumpOptions> = {}) =>
    runBackupDump(
      { config, objects: app.objects, keystore: app.keystore, clock: systemClock },
      {
        encrypt: true,
        upload: true,
        recipients: [key.recipient],
        dest: s3.url,
        destConfigured: true,
        ...extra,
      },
    );

  async function stored(store: ObjectStore): Promise<string[]> {
    return (await store.list('')).items.map((i) => i.key);
  }

  test('refuses a bucket in another region before a single object is written', async () => {
    const store = await openObjectStore(s3.url);
    await assert.rejects(
      run({ ...app.config, region: 'au-syd-1' }),
      (e) => isOrthIdError(e, 'backup.region_mismatch') && /au-syd-1/.test(e.message),
    );
    assert.deepEqual(await stored(store), []);
  });

  test('uploads an encrypted set (SSE-KMS passed through) that verifies from the bucket', async () => {
    const manifest = await run(app.config, { sse: { type: 'aws:kms', kmsKeyId: 'alias/orthid-backups' } });
    const store = await openObjectStore(s3.url);
    const keys = await stored(store);
    for (const part of manifest.parts) assert.ok(keys.includes(part.key), part.key);
    assert.ok(keys.some((k) => k.endsWith('/manifest.json')));
    const set = await findBackupSet(store, 'latest');
    const report = await verifyBackupSet(
      { dest: store, keystoreStore: store, identities: [key.identity], clock: systemClock },
      set,
    );
    assert.equal(report.ok, true, JSON.stringify(report, null, 2));
    assert.equal(manifest.region, s3.region);
  });
});

describe('backup dump on the embedded default (PGlite)', () => {
  let app: TestOrthId;
  let work: string;
  let key: ReturnType<typeof ageKeygen>;
  let manifest: Manifest;

  before(async () => {
    requireAgeCli();
    requirePgTools();
    work = mkdtempSync(join(tmpdir(), 'orthid-backup-embedded-'));
    key = ageKeygen(work);
    app = await createTestOrthId('pglite');
    await seed(app);
    manifest = await runBackupDump(
      { config: app.config, db: app.db, objects: app.objects, keystore: app.keystore, clock: systemClock },
      {
        encrypt: true,
        upload: false,
        recipients: [key.recipient],
        dest: pathToFileURL(join(work, 'sets')).href,
        destConfigured: true,
      },
    );
  });
  after(async () => {
    await app.close();
    rmSync(work, { recursive: true, force: true });
  });

  test('writes db.sql.age, a plain SQL dump that restores into a fresh real PostgreSQL with psql', async () => {
    assert.equal(manifest.database.engine, 'pglite');
    assert.equal(manifest.database.format, 'plain');
    const part = manifest.parts.find((p) => p.kind === 'database')!;
    assert.equal(part.name, 'db.sql.age');
    const sql = join(work, 'restore.sql');
    execFileSync('age', ['-d', '-i', key.file, '-o', sql, fileOf(join(work, 'sets'), part)]);
    assert.equal(/^SET transaction_timeout/m.test(readFileSync(sql, 'utf8')), false);
    const target = await createTestDatabase('orthid_from_embedded');
    execFileSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '--dbname', target, '-f', sql], {
      stdio: 'pipe',
    });

    const client = new pg.Client({ connectionString: target });
    await client.connect();
    try {
      const count = async (table: string) =>
        Number((await client.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);
      assert.equal(await count('tenants'), 3);
      assert.equal(await count('users'), 9);
      assert.ok((await count('audit_events')) >= 12);
      const policies = await client.query(
        `SELECT count(*) AS n FROM pg_policies WHERE policyname = 'tenant_isolation'`,
      );
      assert.ok(Number(policies.rows[0].n) >= 5);
      // Tenant boundaries survive the move: the application role sees one tenant's users only.
      const acme = (await client.query(`SELECT id FROM tenants WHERE slug = 'acme'`)).rows[0].id;
      await client.query('BEGIN');
      await client.query(
        `SELECT set_config('role', 'orthid_app', true), set_config('orthid.tenant_id', $1, true)`,
        [acme],
      );
      assert.equal(Number((await client.query('SELECT count(*) AS n FROM users')).rows[0].n), 3);
      await client.query('ROLLBACK');
    } finally {
      await client.end();
    }
  });

  test('verify reads the SQL dump, the objects and the keystore export', async () => {
    const dest = await openObjectStore(pathToFileURL(join(work, 'sets')).href);
    const report = await verifyBackupSet(
      { dest, keystoreStore: dest, identities: [key.identity], clock: systemClock },
      await findBackupSet(dest, 'latest'),
    );
    assert.equal(report.ok, true, JSON.stringify(report, null, 2));
    assert.match(report.parts[0]!.checks.at(-1)!.detail, /plain SQL/);
  });

  test('two concurrent embedded dumps: one completes, the other fails with backup.locked', async () => {
    const dest = pathToFileURL(join(work, 'concurrent')).href;
    const one = () =>
      runBackupDump(
        { config: app.config, db: app.db, objects: app.objects, keystore: app.keystore, clock: systemClock },
        { encrypt: true, upload: false, recipients: [key.recipient], dest, destConfigured: true },
      );
    const results = await Promise.allSettled([one(), one()]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    assert.equal(
      (results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason.code,
      'backup.locked',
    );
  });
});
