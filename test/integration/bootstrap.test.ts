import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type AdminCredentials, bootstrap } from '../../src/ops/bootstrap.js';
import { runVerificationChecks } from '../../src/ops/verification-checks.js';
import { withTenant } from '../../src/storage/db/database.js';
import { SYSTEM_TENANT_SLUG } from '../../src/tenancy/admin-resource.js';
import { rejectsWith } from '../helpers/errors.js';
import { createTestOrthId, DRIVERS, type TestOrthId } from '../helpers/orthid.js';

for (const driver of DRIVERS) {
  describe(`first-start bootstrap (${driver})`, () => {
    let app: TestOrthId;
    let file: string;

    before(async () => {
      app = await createTestOrthId(driver);
      file = join(app.dataDir, 'admin-credentials.json');
    });
    after(() => app.close());

    test('a bootstrap that fails part-way leaves no system tenant behind', async () => {
      await assert.rejects(bootstrap(app, join(app.dataDir, 'missing-dir', 'admin-credentials.json')), {
        code: 'ENOENT',
      });
      await rejectsWith(app.tenants.get(SYSTEM_TENANT_SLUG), 'tenant.not_found');
    });

    test('the next one replaces a stale credentials file and completes', async () => {
      await writeFile(file, 'left by a start that never committed\n', { mode: 0o644 });
      const result = await bootstrap(app, file);
      assert.equal(result.created, true);
      assert.equal((await stat(file)).mode & 0o777, 0o600);
      const credentials = JSON.parse(await readFile(file, 'utf8')) as AdminCredentials;
      assert.equal(credentials.client_id, result.clientId);
      const tenant = await app.tenants.get(SYSTEM_TENANT_SLUG);
      const client = await withTenant(app.db, tenant.id, (tx) => app.clients.get(tx, credentials.client_id));
      assert.equal(client.name, 'OrthID admin');
      // The canary recorded in the keystore is the one that committed.
      assert.ok((await runVerificationChecks(app)).every((check) => check.ok));
    });

    test('a later start changes nothing', async () => {
      const before = await readFile(file, 'utf8');
      assert.equal((await bootstrap(app, file)).created, false);
      assert.equal(await readFile(file, 'utf8'), before);
    });
  });
}
