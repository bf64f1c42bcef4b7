// A dump never marks complete a set whose keystore export lacks a root key its database names: a
// key another process adds while the dump runs (here a tenant created between the dump's first
// check and its database part) fails the dump before its manifest, on both drivers.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import type { DumpOptions } from '../../src/backup/dump-set.js';
import { runBackupDump } from '../../src/backup/run-dump.js';
import { listBackupSets } from '../../src/backup/sets.js';
import { systemClock } from '../../src/core/clock.js';
import { ManagedKeystore } from '../../src/crypto/managed-keystore.js';
import { openObjectStore } from '../../src/storage/objects/open-object-store.js';
import { ageKeygen, requireAgeCli } from '../helpers/age-cli.js';
import { rejectsWith } from '../helpers/errors.js';
import { createTestOrthId, DRIVERS, TEST_MASTER_KEY, type TestOrthId } from '../helpers/orthid.js';

for (const driver of DRIVERS) {
  describe(`a dump on ${driver} checks the keystore export against the database before its manifest`, {
    timeout: 180_000,
  }, () => {
    let app: TestOrthId;
    let work: string;
    let options: DumpOptions;

    before(async () => {
      requireAgeCli();
      work = await mkdtemp(join(tmpdir(), 'orthid-dump-binding-'));
      const key = ageKeygen(work);
      app = await createTestOrthId(driver);
      await app.tenants.create({ slug: 'alpha', actor: 'cli' });
      options = {
        encrypt: true,
        upload: false,
        recipients: [key.recipient],
        dest: pathToFileURL(join(work, 'sets')).href,
        destConfigured: true,
        keystoreDest: pathToFileURL(join(work, 'keys')).href,
      };
    });

    after(async () => {
      await app.close();
      await rm(work, { recursive: true, force: true });
    });

    const listSets = async () =>
      listBackupSets(await openObjectStore(options.dest), await openObjectStore(options.keystoreDest!));

    const dumpWith = (keystore: ManagedKeystore, duringDump?: () => Promise<void>) =>
      runBackupDump(
        {
          config: app.config,
          db: driver === 'pglite' ? app.db : undefined,
          objects: app.objects,
          keystore,
          clock: systemClock,
          // Runs after the dump's first checks and before it reads what the database names.
          auditCheckpoints: async () => {
            await duringDump?.();
            return [];
          },
        },
        options,
      );

    test('a root key added by another process while the dump runs fails it with backup.keystore_mismatch, and the set stays incomplete', async () => {
      // The keystore as the dumping process read it, before the tenant "late" (and its root key) existed.
      const dumping = await ManagedKeystore.open(app.config.keystorePath, TEST_MASTER_KEY);
      const error = await rejectsWith(
        dumpWith(dumping, async () => {
          await app.tenants.create({ slug: 'late', actor: 'cli' });
        }),
        'backup.keystore_mismatch',
      );
      assert.match(error.message, /a root key was added while the dump ran/);
      const sets = await listSets();
      assert.deepEqual(
        sets.map((s) => [s.status, s.manifest]),
        [['incomplete', undefined]],
      );
    });

    test('the same dump with the keystore as it is now completes', async () => {
      const manifest = await dumpWith(await ManagedKeystore.open(app.config.keystorePath, TEST_MASTER_KEY));
      const sets = await listSets();
      assert.equal(sets.find((s) => s.id === manifest.setId)?.status, 'complete');
    });
  });
}
