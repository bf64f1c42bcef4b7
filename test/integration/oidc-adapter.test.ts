import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createPostgresAdapter } from '../../src/oidc/postgres-adapter.js';
import { createStoredSecrets } from '../../src/oidc/stored-secrets.js';
import type { Database } from '../../src/storage/db/database.js';
import { withTenant } from '../../src/storage/db/database.js';
import type { Tenant } from '../../src/tenancy/tenants.js';
import { createTestOrthId, DRIVERS, type TestOrthId } from '../helpers/orthid.js';

interface PlanNode {
  'Node Type': string;
  'Actual Rows': number;
  Plans?: PlanNode[];
}

function* planNodes(node: PlanNode): Generator<PlanNode> {
  yield node;
  for (const child of node.Plans ?? []) yield* planNodes(child);
}

for (const driver of DRIVERS) {
  describe(`oidc-provider storage adapter (${driver})`, () => {
    let app: TestOrthId;
    /** What the adapter sent since the test last emptied it. */
    let sent: { sql: string; params: readonly unknown[] | undefined }[] = [];
    let Adapter: ReturnType<typeof createPostgresAdapter>;
    let tenant: Tenant;

    before(async () => {
      app = await createTestOrthId(driver);
      tenant = await app.tenants.create({ slug: 'acme', actor: 'test' });
      // Records the statements the adapter sends.
      const counting: Database = {
        ...app.db,
        statements(setup) {
          const inner = app.db.statements(setup);
          return {
            query: (sql: string, params?: readonly unknown[]) => {
              sent.push({ sql, params });
              return inner.query(sql, params);
            },
          } as typeof inner;
        },
      };
      Adapter = createPostgresAdapter(
        counting,
        tenant.id,
        async () => undefined,
        createStoredSecrets('adapter-test-key'),
      );
    });
    after(() => app.close());

    async function tokenOfGrant(grantId: string, tokenId: string, model = 'AccessToken') {
      await new Adapter('Grant').upsert(grantId, { jti: grantId, kind: 'Grant', accountId: 'u1' }, 3600);
      await new Adapter(model).upsert(tokenId, { jti: tokenId, kind: model, grantId }, 3600);
    }

    test('a token and its grant are read in one statement, and the grant is handed out once', async () => {
      await tokenOfGrant('g1', 't1');
      sent = [];
      const token = await new Adapter('AccessToken').find('t1');
      const grant = await new Adapter('Grant').find('g1');
      assert.equal(token?.grantId, 'g1');
      assert.deepEqual(grant, { jti: 'g1', kind: 'Grant', accountId: 'u1' });
      assert.equal(sent.length, 1);
      assert.deepEqual(await new Adapter('Grant').find('g1'), grant);
      assert.equal(sent.length, 2, 'a second lookup of the grant reads the database');
    });

    test('a grant destroyed after its token was read is not served from the prefetch', async () => {
      await tokenOfGrant('g2', 't2');
      await new Adapter('AccessToken').find('t2');
      await new Adapter('Grant').destroy('g2');
      assert.equal(await new Adapter('Grant').find('g2'), undefined);
    });

    test("revoking a grant's tokens removes them and leaves the grant to its own destroy", async () => {
      await tokenOfGrant('g3', 't3');
      await new Adapter('AccessToken').find('t3');
      sent = [];
      await new Adapter('AccessToken').revokeByGrantId('g3');
      assert.equal(await new Adapter('AccessToken').find('t3'), undefined);
      assert.equal((await new Adapter('Grant').find('g3'))?.jti, 'g3');
      assert.equal(sent.length, 3, 'the grant is read from the database after a revocation');
    });

    test('a grant updated after its token was read is read again', async () => {
      await tokenOfGrant('g4', 't4');
      await new Adapter('AccessToken').find('t4');
      await new Adapter('Grant').upsert(
        'g4',
        { jti: 'g4', kind: 'Grant', accountId: 'u1', scope: 'openid' },
        3600,
      );
      assert.equal((await new Adapter('Grant').find('g4'))?.scope, 'openid');
    });

    test('of two consumptions of one code or refresh token, the second is refused and revokes its grant', async () => {
      await tokenOfGrant('g6', 't6');
      await tokenOfGrant('g6', 'r6', 'RefreshToken');
      const results = await Promise.allSettled([
        new Adapter('RefreshToken').consume('r6'),
        new Adapter('RefreshToken').consume('r6'),
      ]);
      assert.deepEqual(
        results.map((r) => r.status).sort(),
        ['fulfilled', 'rejected'],
        'exactly one of two concurrent consumptions succeeds',
      );
      const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      assert.equal((refused.reason as { error?: string }).error, 'invalid_grant');
      assert.equal(await new Adapter('Grant').find('g6'), undefined);
      assert.equal(await new Adapter('AccessToken').find('t6'), undefined);
      assert.equal(await new Adapter('RefreshToken').find('r6'), undefined);
    });

    test("a token's grant is read by its id, not by scanning the tenant's grants", async () => {
      // A new table, without statistics yet: where the plan depends on them, this is when it is worst.
      for (let i = 0; i < 50; i++) await tokenOfGrant(`many-g${i}`, `many-t${i}`);
      sent = [];
      assert.equal((await new Adapter('AccessToken').find('many-t7'))?.grantId, 'many-g7');
      const [lookup] = sent;
      const plan = await withTenant(app.db, tenant.id, async (tx) => {
        const { rows } = await tx.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(
          `EXPLAIN (ANALYZE, FORMAT JSON) ${lookup!.sql}`,
          lookup!.params,
        );
        return rows[0]!['QUERY PLAN'][0].Plan;
      });
      for (const node of planNodes(plan)) {
        assert.ok(node['Actual Rows'] <= 1, `${node['Node Type']} read ${node['Actual Rows']} rows`);
      }
    });

    test('a consumed token says so, and a token whose grant is gone is still found', async () => {
      await tokenOfGrant('g5', 't5', 'AuthorizationCode');
      await new Adapter('AuthorizationCode').consume('t5');
      const consumed = await new Adapter('AuthorizationCode').find('t5');
      assert.equal(typeof consumed?.consumed, 'number');
      await new Adapter('Grant').destroy('g5');
      assert.equal((await new Adapter('AuthorizationCode').find('t5'))?.grantId, 'g5');
      assert.equal(await new Adapter('Grant').find('g5'), undefined);
    });

    /** The tenant's stored rows as the database superuser reads them. */
    async function storedRows(): Promise<string> {
      const { rows } = await app.db.ownerQuery<{ row: string }>(
        'SELECT row_to_json(p)::text AS row FROM oidc_payloads p WHERE tenant_id = $1',
        [tenant.id],
      );
      return rows.map((r) => r.row).join('\n');
    }

    test('ids, cookie values and user codes are stored only as keyed hashes, and each lookup gives the payload back', async () => {
      const secret = () => randomBytes(24).toString('base64url');
      const [sessionId, interactionId, deviceCode, userCode, parId] = [
        secret(),
        secret(),
        secret(),
        secret(),
        secret(),
      ];
      const session = { jti: sessionId, kind: 'Session', uid: 'session-uid-1', accountId: 'u1', loginTs: 1 };
      const interaction = {
        jti: interactionId,
        kind: 'Interaction',
        session: { accountId: 'u1', uid: 'session-uid-1', cookie: sessionId },
        returnTo: `http://127.0.0.1/t/acme/auth/${interactionId}`,
        deviceCode,
        parJti: parId,
        params: { login_hint: 'ann@acme.test' },
      };
      const device = {
        jti: deviceCode,
        kind: 'DeviceCode',
        userCode,
        clientId: 'c1',
        params: { scope: 'openid' },
      };
      await new Adapter('Session').upsert(sessionId, session, 3600);
      await new Adapter('Interaction').upsert(interactionId, interaction, 3600);
      await new Adapter('DeviceCode').upsert(deviceCode, device, 600);

      const stored = await storedRows();
      for (const value of [sessionId, interactionId, deviceCode, userCode, parId, 'ann@acme.test']) {
        assert.ok(!stored.includes(value), 'a secret is stored in plain text');
      }
      assert.deepEqual(await new Adapter('Session').find(sessionId), session);
      assert.deepEqual(await new Adapter('Interaction').find(interactionId), interaction);
      assert.deepEqual(await new Adapter('DeviceCode').find(deviceCode), device);
      assert.deepEqual(await new Adapter('DeviceCode').findByUserCode(userCode), device);
      // A uid names a session without opening it: the cookie value is not given back.
      const { jti: _cookie, ...byUid } = session;
      assert.deepEqual(await new Adapter('Session').findByUid('session-uid-1'), byUid);

      const { rows } = await app.db.ownerQuery<{ model: string; id: string }>(
        `SELECT model, id FROM oidc_payloads WHERE tenant_id = $1 AND model IN ('Session', 'Interaction', 'DeviceCode')`,
        [tenant.id],
      );
      assert.equal(rows.length, 3);
      for (const { model, id } of rows) {
        assert.equal(await new Adapter(model).find(id), undefined, `a ${model} row id is not a ${model} id`);
      }
      await new Adapter('Interaction').destroy(interactionId);
      assert.equal(await new Adapter('Interaction').find(interactionId), undefined);
    });
  });
}
