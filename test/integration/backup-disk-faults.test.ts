import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import type { DumpOptions } from '../../src/backup/dump-set.js';
import { runBackupDump } from '../../src/backup/run-dump.js';
import { loadConfig } from '../../src/config/config.js';
import { systemClock } from '../../src/core/clock.js';
import { exitCodes, isOrthIdError, type OrthIdError } from '../../src/core/errors.js';
import { createLogger } from '../../src/core/logger.js';
import { openOrthId } from '../../src/main.js';
import { ageKeygen, requireAgeCli, tempDir } from '../helpers/age-cli.js';
import { runCli } from '../helpers/cli.js';
import { createTestOrthId, DRIVERS, TEST_MASTER_KEY, type TestOrthId } from '../helpers/orthid.js';
import { createTestDatabase } from '../helpers/postgres.js';
import { mountSmallDisk, type SmallDisk } from '../helpers/small-disk.js';

/** Every file left under `dir`, temporary ones included (what a full disk keeps holding). */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name !== 'filler')
    .map((entry) => join(entry.parentPath, entry.name));
}

for (const driver of DRIVERS) {
  describe(`backup dump onto a full or read-only disk (${driver})`, () => {
    let app: TestOrthId;
    let key: ReturnType<typeof ageKeygen>;
    let work: ReturnType<typeof tempDir>;
    const disks: SmallDisk[] = [];
    const disk = (sizeKiB: number) => {
      const made = mountSmallDisk(sizeKiB);
      disks.push(made);
      return made;
    };
    const dump = (dest: string, keystoreDest: string) => {
      const options: DumpOptions = {
        encrypt: true,
        upload: false,
        recipients: [key.recipient],
        dest: pathToFileURL(dest).href,
        destConfigured: true,
        keystoreDest: pathToFileURL(keystoreDest).href,
      };
      return runBackupDump(
        { config: app.config, db: app.db, objects: app.objects, keystore: app.keystore, clock: systemClock },
        options,
      );
    };
    /** The refusal a user must see: the store is unavailable, naming the errno and what to do. */
    const unavailable = (cause: 'ENOSPC' | 'EROFS', part: string) => (error: unknown) => {
      assert.ok(
        isOrthIdError(error, 'objects.unavailable'),
        `expected objects.unavailable, got ${String(error)}`,
      );
      const e = error as OrthIdError;
      assert.match(e.message, new RegExp(`/${part.replaceAll('.', '\\.')}[^/"]*"`));
      assert.match(e.message, new RegExp(`\\(${cause}\\)`));
      assert.match(
        e.message,
        cause === 'ENOSPC' ? /full\. Free space on it/ : /read-only\. Remount it read-write/,
      );
      assert.equal(e.details?.cause, cause);
      return true;
    };

    before(async () => {
      requireAgeCli();
      work = tempDir();
      key = ageKeygen(work.dir);
      app = await createTestOrthId(driver);
      await app.tenants.create({ slug: 'acme', actor: 'test' });
      // Incompressible, so the objects part is larger than the database part by far.
      await app.objects.put('media/big.bin', randomBytes(3 * 1024 * 1024));
    });
    after(async () => {
      await app.close();
      for (const made of disks) made.remove();
      work.cleanup();
    });

    test('a full disk fails the first part with objects.unavailable (ENOSPC) and leaves no file', async () => {
      const sets = disk(64);
      sets.fill();
      const keys = disk(64);
      await assert.rejects(dump(sets.dir, keys.dir), unavailable('ENOSPC', 'db'));
      assert.deepEqual(filesUnder(sets.dir), []);
    });

    test('a disk that fills during the objects part fails it the same way', async () => {
      const sets = disk(1024);
      const keys = disk(64);
      await assert.rejects(dump(sets.dir, keys.dir), unavailable('ENOSPC', 'objects.tar.age'));
      assert.deepEqual(
        filesUnder(sets.dir).filter((f) => f.includes('.orthid-tmp-')),
        [],
        'the failed part leaves no temporary file',
      );
    });

    test('a full keystore destination fails the keystore part the same way', async () => {
      const sets = disk(8 * 1024);
      const keys = disk(64);
      keys.fill();
      await assert.rejects(dump(sets.dir, keys.dir), unavailable('ENOSPC', 'keystore.age'));
    });

    test('a read-only disk fails the first part with objects.unavailable (EROFS)', async () => {
      const sets = disk(1024);
      sets.readOnly();
      const keys = disk(64);
      await assert.rejects(dump(sets.dir, keys.dir), unavailable('EROFS', 'db'));
    });

    test('a read-only keystore destination fails the keystore part (EROFS)', async () => {
      const sets = disk(8 * 1024);
      const keys = disk(64);
      keys.readOnly();
      await assert.rejects(dump(sets.dir, keys.dir), unavailable('EROFS', 'keystore.age'));
    });
  });
}

describe('orthid backup dump onto a full disk, as an operator sees it', () => {
  let work: ReturnType<typeof tempDir>;
  let sets: SmallDisk;
  let env: Record<string, string>;

  before(async () => {
    requireAgeCli();
    work = tempDir();
    const key = ageKeygen(work.dir);
    sets = mountSmallDisk(64);
    env = {
      ORTHID_DATA_DIR: join(work.dir, 'data'),
      ORTHID_DATABASE_URL: await createTestDatabase(),
      ORTHID_MASTER_KEY: TEST_MASTER_KEY,
      ORTHID_BACKUP_DEST: pathToFileURL(sets.dir).href,
      ORTHID_BACKUP_KEYSTORE_DEST: pathToFileURL(join(work.dir, 'keys')).href,
      ORTHID_BACKUP_AGE_RECIPIENTS: key.recipient,
    };
    const app = await openOrthId(loadConfig(env), {
      initKeystore: true,
      migrate: true,
      log: createLogger('silent'),
    });
    await app.tenants.create({ slug: 'acme', actor: 'test' });
    await app.close();
    sets.fill();
  });
  after(() => {
    sets.remove();
    work.cleanup();
  });

  test('the first part fails with the unavailable exit code, naming ENOSPC and what to do', async () => {
    const result = await runCli(['backup', 'dump', '--encrypt'], env);
    assert.equal(result.code, exitCodes.unavailable, result.stderr);
    assert.match(
      result.stderr,
      /^error\[objects\.unavailable\]: Could not write "[^"]+\/db\.dump\.age" in the object store file:\/\/\S+ \(ENOSPC\): the filesystem is full\. Free space on it \(for backups: orthid backup prune\) and try again\.$/m,
    );
    assert.doesNotMatch(result.stderr, /AbortError|internal\.unexpected/);
  });
});
