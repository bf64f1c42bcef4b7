import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { openBackupStores } from '../../src/backup/destination.js';
import { restoreBackupSet } from '../../src/backup/restore-set.js';
import { runBackupDump } from '../../src/backup/run-dump.js';
import { systemClock } from '../../src/core/clock.js';
import { createLogger } from '../../src/core/logger.js';
import { SHREDDED } from '../../src/crypto/tenant-keys.js';
import { composeOrthId } from '../../src/main.js';
import { shredTenant } from '../../src/ops/key-rotation.js';
import { withTenant } from '../../src/storage/db/database.js';
import { throwawayRestoreTarget } from '../../src/storage/db/open-restore-target.js';
import { openObjectStore } from '../../src/storage/objects/open-object-store.js';
import { SYSTEM_TENANT_SLUG } from '../../src/tenancy/admin-resource.js';
import { ageKeygen, requireAgeCli } from '../helpers/age-cli.js';
import { createTestOrthId, TEST_MASTER_KEY, type TestOrthId } from '../helpers/orthid.js';

describe('a backup taken before a tenant was shredded, restored afterwards', () => {
  let app: TestOrthId;
  let work: string;
  const emails: Record<string, string> = { acme: 'ann@acme.example', globex: 'gus@globex.example' };

  before(async () => {
    requireAgeCli();
    work = mkdtempSync(join(tmpdir(), 'orthid-shred-restore-'));
    app = await createTestOrthId('pglite');
    await app.tenants.create({ slug: SYSTEM_TENANT_SLUG, actor: 'test' });
    for (const slug of ['acme', 'globex']) {
      const tenant = await app.tenants.create({ slug, actor: 'test' });
      await withTenant(app.db, tenant.id, (tx) =>
        app.users.create(tx, tenant.id, { email: emails[slug]!, name: slug }, 'test'),
      );
    }
  });
  after(async () => {
    await app.close();
    rmSync(work, { recursive: true, force: true });
  });

  test("the shredded tenant's fields do not open; the other tenant's do", async () => {
    const key = ageKeygen(work);
    const dest = pathToFileURL(join(work, 'sets')).href;
    await runBackupDump(
      { config: app.config, db: app.db, objects: app.objects, keystore: app.keystore, clock: systemClock },
      { encrypt: true, upload: false, recipients: [key.recipient], dest, destConfigured: true },
    );
    await shredTenant(app, await app.tenants.get('acme'), 'test');

    const target = throwawayRestoreTarget(undefined);
    const objects = await openObjectStore(pathToFileURL(join(work, 'restored-objects')).href);
    const result = await restoreBackupSet({
      set: 'latest',
      ...(await openBackupStores(dest, undefined)),
      identities: [key.identity],
      target,
      objects,
      keystorePath: join(work, 'restored-keystore'),
      masterSecret: TEST_MASTER_KEY,
      // What this deployment's keystore remembers: the root keys the shred destroyed.
      destroyedKeys: app.keystore.destroyedKeys(),
    });
    const restored = composeOrthId({
      config: app.config,
      clock: systemClock,
      log: createLogger('silent'),
      db: result.db,
      keystore: result.keystore,
      objects,
    });
    try {
      const read = async (slug: string) => {
        const tenant = await restored.tenants.get(slug);
        return withTenant(restored.db, tenant.id, async (tx) => {
          const [user] = (await restored.users.list(tx, tenant.id, { limit: 10 })).users;
          return user!.email;
        });
      };
      assert.equal(await read('acme'), SHREDDED);
      assert.equal(await read('globex'), emails.globex);
    } finally {
      await restored.close();
    }
  });
});
