import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { listBackupSets } from '../../src/backup/sets.js';
import { generateIdentity } from '../../src/crypto/age/index.js';
import { bootstrap } from '../../src/ops/bootstrap.js';
import { startSchedules } from '../../src/ops/schedules.js';
import type { ObjectStore } from '../../src/storage/objects/object-store.js';
import { openObjectStore } from '../../src/storage/objects/open-object-store.js';
import { createTestOrthId, DRIVERS, type TestOrthId } from '../helpers/orthid.js';

for (const driver of DRIVERS) {
  describe(`in-process backup schedule (${driver})`, () => {
    let app: TestOrthId;

    before(async () => {
      const key = generateIdentity();
      app = await createTestOrthId(driver, {
        env: { ORTHID_BACKUP_SCHEDULE: '*/2 * * * * *', ORTHID_BACKUP_AGE_RECIPIENTS: key.recipient },
      });
      await bootstrap(app, join(app.dataDir, 'admin-credentials.json'));
    });
    after(() => app.close());

    test('ORTHID_BACKUP_SCHEDULE takes encrypted sets on its own while the process runs', async () => {
      const schedules = startSchedules(app);
      const dest = await openObjectStore(app.config.backup.dest);
      try {
        let complete = 0;
        for (let i = 0; i < 100 && complete === 0; i++) {
          await new Promise((r) => setTimeout(r, 200));
          complete = await countComplete(dest);
        }
        assert.ok(complete >= 1, 'no complete set appeared within 20 s');
        const [newest] = (await listBackupSets(dest)).filter((s) => s.status === 'complete');
        assert.equal(newest!.manifest!.encrypted, true);
      } finally {
        await schedules.stop();
      }
    });

    test('stopping waits for the dump in progress, which completes', async () => {
      const dest = await openObjectStore(app.config.backup.dest);
      const completeBefore = await countComplete(dest);
      const schedules = startSchedules(app);
      for (let i = 0; i < 2000 && schedules.running().length === 0; i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
      const inProgress = schedules.running();
      // Called in the same tick as the check: the dump is still running when stop is called.
      const stopping = schedules.stop();
      assert.deepEqual(inProgress, ['ORTHID_BACKUP_SCHEDULE']);
      await stopping;
      assert.deepEqual(schedules.running(), []);
      assert.equal(await countComplete(dest), completeBefore + 1);
    });
  });
}

async function countComplete(dest: ObjectStore): Promise<number> {
  return (await listBackupSets(dest)).filter((s) => s.status === 'complete').length;
}
