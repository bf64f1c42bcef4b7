import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { openBackupStores } from '../../src/backup/destination.js';
import type { Manifest } from '../../src/backup/manifest.js';
import { restoreBackupSet } from '../../src/backup/restore-set.js';
import { runBackupDump } from '../../src/backup/run-dump.js';
import { systemClock } from '../../src/core/clock.js';
import { isOrthIdError } from '../../src/core/errors.js';
import { withTenant } from '../../src/storage/db/database.js';
import { openRestoreTarget } from '../../src/storage/db/open-restore-target.js';
import { openObjectStore } from '../../src/storage/objects/open-object-store.js';
import { ageKeygen, requireAgeCli } from '../helpers/age-cli.js';
import { createTestOrthId, TEST_MASTER_KEY, type TestOrthId } from '../helpers/orthid.js';
import { createTestDatabase, query, rowCounts } from '../helpers/postgres.js';

/** Every file under `dir` (the keystore, the object store) with the SHA-256 of its bytes. */
async function tree(dir: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    files[path.slice(dir.length)] = createHash('sha256')
      .update(await readFile(path))
      .digest('hex');
  }
  return files;
}

describe('a restore that fails on any part leaves the target as it found it', () => {
  let app: TestOrthId;
  let work: string;
  let targetUrl: string;
  let identity: string;
  const targetDir = () => join(work, 'target');
  const keystorePath = () => join(targetDir(), 'keystore');

  let latest: Manifest;

  const restore = async (sets: string, set = 'latest') =>
    restoreBackupSet({
      set,
      ...(await openBackupStores(pathToFileURL(sets).href, undefined)),
      identities: [identity],
      target: openRestoreTarget({ postgresUrl: targetUrl, clean: true }),
      objects: await openObjectStore(pathToFileURL(join(targetDir(), 'objects')).href),
      keystorePath: keystorePath(),
      masterSecret: TEST_MASTER_KEY,
    });

  /** What a user of the target would notice: its keystore and objects byte for byte, its database. */
  const snapshot = async () => {
    const name = new URL(targetUrl).pathname.slice(1);
    return {
      files: await tree(targetDir()),
      // A database dropped and put back (even with the same rows) has another oid.
      // So has a scratch database left behind; the comment marks the set it was restored from.
      database: await query(
        targetUrl,
        `SELECT oid::text, datname, shobj_description(oid, 'pg_database') AS comment
           FROM pg_database WHERE starts_with(datname, $1) ORDER BY datname`,
        [name],
      ),
      rows: await rowCounts(targetUrl),
    };
  };

  before(async () => {
    requireAgeCli();
    work = mkdtempSync(join(tmpdir(), 'orthid-restore-staging-'));
    app = await createTestOrthId('postgres');
    const tenant = await app.tenants.create({ slug: 'acme', actor: 'test' });
    await withTenant(app.db, tenant.id, (tx) =>
      app.users.create(tx, tenant.id, { email: 'ann@acme.example', name: 'Ann' }, 'test'),
    );
    await app.objects.put('avatars/ann', Buffer.from('the avatar in the backup'));
    const key = ageKeygen(work);
    identity = key.identity;
    const dump = () =>
      runBackupDump(
        { config: app.config, db: app.db, objects: app.objects, keystore: app.keystore, clock: systemClock },
        {
          encrypt: true,
          upload: false,
          recipients: [key.recipient],
          dest: pathToFileURL(join(work, 'sets')).href,
          destConfigured: true,
        },
      );
    const older = await dump();
    // The target as an operator would find it: restored from an older set, then changed since.
    targetUrl = await createTestDatabase('orthid_staged');
    const first = await restore(join(work, 'sets'), older.setId);
    await first.db.close();
    const live = await openObjectStore(pathToFileURL(join(targetDir(), 'objects')).href);
    await live.put('avatars/ann', Buffer.from('changed after the backup'));
    await live.put('avatars/bob', Buffer.from('written after the backup'));
    await withTenant(app.db, tenant.id, (tx) =>
      app.users.create(tx, tenant.id, { email: 'cy@acme.example', name: 'Cy' }, 'test'),
    );
    latest = await dump();
  });
  after(async () => {
    await app?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  for (const kind of ['keystore', 'database', 'objects'] as const) {
    test(`a damaged ${kind} part: refused, and the keystore, database and objects are unchanged`, async () => {
      const before = await snapshot();
      assert.ok(Object.keys(before.files).some((f) => f.endsWith('keystore')));
      assert.ok(before.rows.users! > 0);
      const sets = join(work, `sets-${kind}`);
      assert.equal(spawnSync('cp', ['-a', join(work, 'sets'), sets]).status, 0);
      const file = join(sets, latest.parts.find((p) => p.kind === kind)!.key);
      const bytes = await readFile(file);
      bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
      await writeFile(file, bytes);

      await assert.rejects(restore(sets), (error) => {
        assert.ok(
          isOrthIdError(error, 'backup.checksum_mismatch') ||
            isOrthIdError(error, 'objects.checksum_mismatch'),
          String(error),
        );
        return true;
      });
      assert.deepEqual(await snapshot(), before);
    });
  }

  test('the same set undamaged does replace them (so the checks above can see a change)', async () => {
    const before = await snapshot();
    const result = await restore(join(work, 'sets'));
    await result.db.close();
    const after = await snapshot();
    assert.notDeepEqual(after.database, before.database);
    assert.equal(after.rows.users, before.rows.users! + 1);
    assert.notEqual(after.files['/objects/avatars/ann'], before.files['/objects/avatars/ann']);
    assert.notEqual(after.files['/keystore'], undefined);
  });
});
