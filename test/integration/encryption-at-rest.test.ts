import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isOrthIdError } from '../../src/core/errors.js';
import { withTenant } from '../../src/storage/db/database.js';
import { createTestOrthId, DRIVERS, type TestOrthId } from '../helpers/orthid.js';
import { testCluster } from '../helpers/postgres.js';

const EMAIL = 'grace.hopper@navy.example';
const NAME = 'Grace Brewster Hopper';

for (const driver of DRIVERS) {
  describe(`personal fields at rest (${driver})`, () => {
    let app: TestOrthId;
    let tenantId: string;
    let ids: string[];

    before(async () => {
      app = await createTestOrthId(driver);
      tenantId = (await app.tenants.create({ slug: 'navy', actor: 'test' })).id;
      ids = await withTenant(app.db, tenantId, async (tx) => [
        (await app.users.create(tx, tenantId, { email: EMAIL, name: NAME }, 'test')).id,
        (await app.users.create(tx, tenantId, { email: 'ada@navy.example', name: 'Ada' }, 'test')).id,
      ]);
    });
    after(() => app.close());

    test('a user is found by email through the blind index, case-insensitively', async () => {
      const row = await withTenant(app.db, tenantId, (tx) =>
        app.users.findByEmail(tx, tenantId, 'GRACE.Hopper@navy.example'),
      );
      assert.equal(row?.id, ids[0]);
      assert.notEqual(row?.email, EMAIL);
    });

    test("swapping two users' sealed emails makes both fail to open with crypto.decrypt_failed", async () => {
      await app.db.ownerTransaction(async (tx) => {
        await tx.query(
          `UPDATE users u SET email = o.email FROM users o
            WHERE (u.id, o.id) IN (($1::uuid, $2::uuid), ($2::uuid, $1::uuid))`,
          ids,
        );
      });
      for (const id of ids) {
        await assert.rejects(
          withTenant(app.db, tenantId, (tx) => app.users.get(tx, tenantId, id)),
          (e) => isOrthIdError(e, 'crypto.decrypt_failed'),
        );
      }
    });

    if (driver === 'postgres') {
      test('a data-only pg_dump contains neither the email nor the name in plaintext', async () => {
        const cluster = await testCluster();
        const dump = spawnSync(
          join(cluster.binDir, 'pg_dump'),
          ['--data-only', '--dbname', app.databaseUrl!],
          {
            encoding: 'utf8',
            maxBuffer: 64 * 1024 * 1024,
          },
        );
        assert.equal(dump.status, 0, dump.stderr);
        assert.match(dump.stdout, /COPY public\.users/);
        for (const needle of [EMAIL, NAME, 'grace', 'Hopper']) {
          assert.equal(
            dump.stdout.toLowerCase().includes(needle.toLowerCase()),
            false,
            `${needle} found in dump`,
          );
        }
      });
    }
  });
}
