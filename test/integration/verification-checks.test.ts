import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { bootstrap } from '../../src/ops/bootstrap.js';
import { CANARY_OBJECT_KEY } from '../../src/ops/canary.js';
import { runVerificationChecks } from '../../src/ops/verification-checks.js';
import { createTestOrthId, DRIVERS, type TestOrthId } from '../helpers/orthid.js';

for (const driver of DRIVERS) {
  describe(`verification checks (${driver})`, () => {
    let app: TestOrthId;

    before(async () => {
      app = await createTestOrthId(driver);
      await bootstrap(app, join(app.dataDir, 'admin-credentials.json'));
      await app.tenants.create({ slug: 'acme', actor: 'test' });
    });
    after(() => app.close());

    test('every check passes on a bootstrapped deployment', async () => {
      const results = await runVerificationChecks(app);
      assert.deepEqual(
        results.map((r) => [r.name, r.ok]),
        [
          ['sign-in', true],
          ['token', true],
          ['audit-log', true],
          ['decrypted-fields', true],
          ['object-store', true],
        ],
        JSON.stringify(results, null, 2),
      );
      assert.match(results[1]!.detail, /EdDSA key/);
      assert.match(results[0]!.detail, /with its password and a TOTP code/);
    });

    test("the sign-in check proves the canary's TOTP factor, also when run twice in one time step", async () => {
      const [first, second] = [await runVerificationChecks(app), await runVerificationChecks(app)];
      assert.equal(first[0]!.ok && second[0]!.ok, true, JSON.stringify([first[0], second[0]]));
    });

    test('a tampered audit log, a moved ciphertext and a missing object each fail their own check', async () => {
      await app.db.ownerTransaction(async (tx) => {
        await tx.query('ALTER TABLE audit_events DISABLE TRIGGER audit_events_immutable');
        await tx.query(
          `UPDATE audit_events SET actor = 'mallory' WHERE seq = 1 AND tenant_id = (SELECT id FROM tenants WHERE slug = 'acme')`,
        );
        await tx.query('ALTER TABLE audit_events ENABLE TRIGGER audit_events_immutable');
        await tx.query(`UPDATE users SET name = email`);
      });
      app.tenantKeys.invalidate();
      await app.objects.delete(CANARY_OBJECT_KEY);
      const results = Object.fromEntries((await runVerificationChecks(app)).map((r) => [r.name, r]));
      assert.equal(results['audit-log']!.ok, false);
      assert.match(results['audit-log']!.detail, /acme.*broken at event #1/);
      assert.equal(results['decrypted-fields']!.ok, false);
      assert.match(results['decrypted-fields']!.detail, /crypto\.decrypt_failed/);
      assert.equal(results['object-store']!.ok, false);
      assert.equal(results['sign-in']!.ok, true);
    });

    test('a canary TOTP secret that does not open fails the sign-in check', async () => {
      await app.db.ownerQuery(
        'UPDATE user_factors SET secret = (SELECT email FROM users WHERE users.tenant_id = user_factors.tenant_id AND users.id = user_factors.user_id)',
      );
      app.tenantKeys.invalidate();
      const [signIn] = await runVerificationChecks(app);
      assert.equal(signIn!.ok, false);
      assert.match(signIn!.detail, /crypto\.decrypt_failed: The sealed user_factors\.secret/);
    });
  });
}
