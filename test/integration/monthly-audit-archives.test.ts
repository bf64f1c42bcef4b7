import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { tenantBundleJwks } from '../../src/bundles/tenant-bundle-keys.js';
import { verifyBundle } from '../../src/bundles/verify-bundle.js';
import { loadConfig } from '../../src/config/config.js';
import { fixedClock } from '../../src/core/clock.js';
import { archivePreviousMonth, previousMonth } from '../../src/ops/monthly-audit-archives.js';
import { withTenant } from '../../src/storage/db/database.js';
import { createTestOrthId, DRIVERS, TEST_MASTER_KEY, type TestOrthId } from '../helpers/orthid.js';

test('the previous month is the whole calendar month before the current one, in UTC', () => {
  assert.deepEqual(previousMonth(new Date('2025-03-01T03:00:00Z')), {
    from: new Date('2025-02-01T00:00:00Z'),
    to: new Date('2025-03-01T00:00:00Z'),
  });
  assert.deepEqual(previousMonth(new Date('2025-01-15T12:00:00Z')), {
    from: new Date('2024-12-01T00:00:00Z'),
    to: new Date('2025-01-01T00:00:00Z'),
  });
});

test('the monthly audit archive is on by default for the embedded database and off for PostgreSQL', () => {
  const embedded = loadConfig({ ORTHID_DATA_DIR: '/tmp/orthid-config-test' });
  assert.equal(embedded.auditExportSchedule, '0 3 1 * *');
  const off = loadConfig({ ORTHID_DATA_DIR: '/tmp/orthid-config-test', ORTHID_AUDIT_EXPORT_SCHEDULE: 'off' });
  assert.equal(off.auditExportSchedule, undefined);
  const postgres = loadConfig({
    ORTHID_DATABASE_URL: 'postgres://db/orthid',
    ORTHID_MASTER_KEY: TEST_MASTER_KEY,
  });
  assert.equal(postgres.auditExportSchedule, undefined);
  const chosen = loadConfig({
    ORTHID_DATABASE_URL: 'postgres://db/orthid',
    ORTHID_MASTER_KEY: TEST_MASTER_KEY,
    ORTHID_AUDIT_EXPORT_SCHEDULE: '0 4 2 * *',
  });
  assert.equal(chosen.auditExportSchedule, '0 4 2 * *');
});

for (const driver of DRIVERS) {
  describe(`monthly audit archives (${driver})`, () => {
    const clock = fixedClock(new Date());
    let app: TestOrthId;

    before(async () => {
      app = await createTestOrthId(driver, { clock });
    });
    after(() => app?.close());

    test("the archive covers last month's events of every tenant, verifies, and a rerun writes nothing new", async () => {
      const acme = await app.tenants.create({ slug: 'acme', actor: 'test' });
      await withTenant(app.db, acme.id, (tx) =>
        app.users.create(tx, acme.id, { email: 'ann@acme.test' }, 'test'),
      );
      // The run on the first of next month archives this month.
      const now = clock.now();
      clock.set(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1, 3)));

      const first = await archivePreviousMonth(app);
      const acmeOutcome = first.find((o) => o.tenant === 'acme')!;
      assert.equal(acmeOutcome.outcome, 'exported');
      assert.ok(acmeOutcome.events! >= 1, 'the user creation is in the archive');
      const { body } = await app.objects.get(acmeOutcome.key!);
      const jwks = await withTenant(app.db, acme.id, async (tx) =>
        tenantBundleJwks(tx, await app.tenantKeys.forTenant(tx, acme.id), clock.now()),
      );
      const report = await verifyBundle(body, jwks);
      assert.equal(report.kind, 'audit-archive');

      const second = await archivePreviousMonth(app);
      assert.deepEqual(
        second.find((o) => o.tenant === 'acme'),
        {
          tenant: 'acme',
          outcome: 'already_archived',
          key: acmeOutcome.key,
        },
      );
      assert.equal((await app.objects.list('audit-archives/acme/')).items.length, 1);
    });

    test('a tenant created after the month ended is skipped', async () => {
      clock.set(new Date());
      await app.tenants.create({ slug: 'newcomer', actor: 'test' });
      const outcomes = await archivePreviousMonth(app);
      assert.equal(outcomes.find((o) => o.tenant === 'newcomer')?.outcome, 'skipped');
    });
  });
}
