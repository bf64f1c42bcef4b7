import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createPostgresAdapter } from '../../src/oidc/postgres-adapter.js';
import { createStoredSecrets } from '../../src/oidc/stored-secrets.js';
import { purgeExpired } from '../../src/ops/housekeeping.js';
import type { Tenant } from '../../src/tenancy/tenants.js';
import { createTestOrthId, DRIVERS, type TestOrthId } from '../helpers/orthid.js';

for (const driver of DRIVERS) {
  describe(`purge of expired rows (${driver})`, () => {
    let app: TestOrthId;
    let acme: Tenant;
    let globex: Tenant;

    before(async () => {
      app = await createTestOrthId(driver);
      acme = await app.tenants.create({ slug: 'acme', actor: 'test' });
      globex = await app.tenants.create({ slug: 'globex', actor: 'test' });
    });
    after(() => app.close());

    const ids = async (tenant: Tenant, table: 'oidc_payloads' | 'sign_in_throttle') => {
      const column = table === 'oidc_payloads' ? 'id' : 'key';
      const { rows } = await app.db.ownerQuery<{ id: string }>(
        `SELECT ${column} AS id FROM ${table} WHERE tenant_id = $1 ORDER BY 1`,
        [tenant.id],
      );
      return rows.map((r) => r.id);
    };

    test('deletes expired OIDC rows and stale address counters in every tenant, and nothing else', async () => {
      for (const tenant of [acme, globex]) {
        const Adapter = createPostgresAdapter(
          app.db,
          tenant.id,
          async () => undefined,
          createStoredSecrets('housekeeping-test-key'),
        );
        // Grants keep their ids as row ids (a token's row id is a keyed hash), so rows are named here.
        for (const id of ['expired-1', 'expired-2', 'expired-3', 'live']) {
          await new Adapter('Grant').upsert(id, { jti: id, kind: 'Grant' }, 3600);
        }
        await new Adapter('Grant').upsert('no-expiry', { jti: 'no-expiry', kind: 'Grant' });
        await app.db.ownerQuery(
          `UPDATE oidc_payloads SET expires_at = now() - interval '1 second' WHERE tenant_id = $1 AND id LIKE 'expired-%'`,
          [tenant.id],
        );
        // Address counters: one past its reset and unblocked, one recent, one past its reset but
        // still blocked; an account counter as old as the first.
        await app.db.ownerQuery(
          `INSERT INTO sign_in_throttle (tenant_id, key, failures, last_failure_at, blocked_until) VALUES
             ($1, 'ip:stale', 9, now() - interval '1 hour', now() - interval '50 minutes'),
             ($1, 'ip:recent', 9, now() - interval '1 minute', now() + interval '1 minute'),
             ($1, 'ip:still-blocked', 30, now() - interval '1 hour', now() + interval '1 hour'),
             ($1, 'account:old', 3, now() - interval '1 hour', NULL)`,
          [tenant.id],
        );
        // Passkey challenges: three nobody answered before they expired, one still open.
        await app.db.ownerQuery(
          `INSERT INTO passkey_challenges (tenant_id, binding, purpose, challenge, expires_at) VALUES
             ($1, 'interaction:a', 'authenticate', 'c1', now() - interval '1 minute'),
             ($1, 'interaction:b', 'authenticate', 'c2', now() - interval '1 minute'),
             ($1, 'interaction:b', 'register', 'c3', now() - interval '1 minute'),
             ($1, 'interaction:open', 'authenticate', 'c4', now() + interval '5 minutes')`,
          [tenant.id],
        );
      }

      // A batch of 2 makes the three expired tokens take two statements.
      const purged = await purgeExpired(app, 2);

      assert.deepEqual(purged, [
        { tenant: 'acme', oidcPayloads: 3, throttleCounters: 1, passkeyChallenges: 3, accountTokens: 0 },
        { tenant: 'globex', oidcPayloads: 3, throttleCounters: 1, passkeyChallenges: 3, accountTokens: 0 },
      ]);
      for (const tenant of [acme, globex]) {
        assert.deepEqual(await ids(tenant, 'oidc_payloads'), ['live', 'no-expiry']);
        assert.deepEqual(await ids(tenant, 'sign_in_throttle'), [
          'account:old',
          'ip:recent',
          'ip:still-blocked',
        ]);
        const { rows } = await app.db.ownerQuery<{ binding: string }>(
          'SELECT binding FROM passkey_challenges WHERE tenant_id = $1',
          [tenant.id],
        );
        assert.deepEqual(
          rows.map((r) => r.binding),
          ['interaction:open'],
        );
      }
      assert.deepEqual(await purgeExpired(app, 2), [], 'a second run finds nothing');
    });
  });
}
