// The admin API's deployment routes through the API as an operator uses them: tenants (for the
// system tenant's administrators only) and a tenant's keys, read-only.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildServer } from '../../src/server/app.js';
import { withTenant } from '../../src/storage/db/database.js';
import type { Tenant } from '../../src/tenancy/tenants.js';
import { mintAdminToken } from '../helpers/admin-token.js';
import { createTestOrthId, DRIVERS, type TestOrthId } from '../helpers/orthid.js';

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

function problemOf(response: LightMyRequestResponse): { code: string; detail: string } {
  assert.match(String(response.headers['content-type']), /^application\/problem\+json/);
  return response.json();
}

for (const driver of DRIVERS) {
  describe(`admin API for the deployment (${driver})`, { timeout: 240_000 }, () => {
    let orthid: TestOrthId;
    let app: FastifyInstance;
    let system: Tenant;
    let alpha: Tenant;

    async function call(
      method: Method,
      path: string,
      options: { as?: Tenant; body?: unknown } = {},
    ): Promise<LightMyRequestResponse> {
      const token = await mintAdminToken(orthid, options.as ?? system);
      return app.inject({
        method,
        url: `/api/v1${path}`,
        headers: { authorization: `Bearer ${token}` },
        ...(options.body === undefined ? {} : { payload: options.body as object }),
      });
    }

    const latestAudit = async (tenant: Tenant) =>
      withTenant(orthid.db, tenant.id, async (tx) => {
        const { rows } = await tx.query<{ action: string; actor: string }>(
          'SELECT action, actor FROM audit_events ORDER BY seq DESC LIMIT 1',
        );
        return rows[0];
      });

    before(async () => {
      orthid = await createTestOrthId(driver);
      system = await orthid.tenants.create({ slug: 'system', actor: 'test' });
      alpha = await orthid.tenants.create({ slug: 'alpha', actor: 'test' });
      app = await buildServer(orthid);
    });
    after(async () => {
      await app?.close();
      await orthid?.close();
    });

    test("a tenant's own administrators get 403 on the tenant routes, naming the permission they lack", async () => {
      for (const [method, path] of [
        ['GET', '/tenants'],
        ['POST', '/tenants'],
        ['GET', '/tenants/alpha'],
        ['GET', '/tenants/alpha/settings'],
        ['GET', '/tenants/alpha/custody'],
        ['POST', '/tenants/alpha/shred'],
      ] as const) {
        const response = await call(method, path, {
          as: alpha,
          ...(method === 'POST'
            ? { body: path === '/tenants' ? { slug: 'nope' } : { confirm: 'alpha' } }
            : {}),
        });
        assert.equal(response.statusCode, 403, `${method} ${path}: ${response.body}`);
        const problem = problemOf(response);
        assert.equal(problem.code, 'auth.forbidden');
        assert.match(problem.detail, /system/);
      }
      const settings = await call('GET', '/tenants/alpha/settings', { as: alpha });
      assert.match(problemOf(settings).detail, /orthid:admin/);
      assert.equal((await orthid.tenants.get('alpha')).status, 'active');
    });

    test('a system administrator creates, lists, reads and configures tenants, each change audited', async () => {
      const created = await call('POST', '/tenants', { body: { slug: 'gamma', displayName: 'Gamma Ltd' } });
      assert.equal(created.statusCode, 201, created.body);
      assert.equal(created.json().slug, 'gamma');
      assert.match(created.json().issuer, /\/t\/gamma$/);
      const gamma = await orthid.tenants.get('gamma');
      // The tenant and the two clients that come with it (account pages, console), all as the caller.
      const creation = await withTenant(orthid.db, gamma.id, async (tx) => {
        const { rows } = await tx.query<{ action: string; actor: string }>(
          'SELECT action, actor FROM audit_events ORDER BY seq',
        );
        return rows;
      });
      assert.deepEqual(creation, [
        { action: 'tenant.created', actor: 'client:admin-client@system' },
        { action: 'client.created', actor: 'client:admin-client@system' },
        { action: 'client.created', actor: 'client:admin-client@system' },
      ]);
      for (const [body, status, code] of [
        [{ slug: 'Not A Slug' }, 400, 'tenant.slug_invalid'],
        [{ slug: 'gamma' }, 409, 'tenant.slug_taken'],
        [{ slug: 'delta', colour: 'red' }, 400, 'request.invalid'],
        [{}, 400, 'request.invalid'],
      ] as const) {
        const refused = await call('POST', '/tenants', { body });
        assert.equal(refused.statusCode, status, JSON.stringify(body));
        assert.equal(problemOf(refused).code, code);
      }
      assert.deepEqual(
        (await orthid.tenants.list()).map((t) => t.slug),
        ['alpha', 'gamma', 'system'],
      );

      const first = await call('GET', '/tenants?limit=2');
      assert.deepEqual(
        first.json().items.map((t: { slug: string }) => t.slug),
        ['alpha', 'gamma'],
      );
      assert.equal(first.json().next, 'gamma');
      const rest = await call('GET', `/tenants?limit=2&after=${first.json().next}`);
      assert.deepEqual(rest.json(), { items: [rest.json().items[0]], next: null });
      assert.equal(rest.json().items[0].slug, 'system');
      const shredded = await call('GET', '/tenants?status=shredded');
      assert.deepEqual(shredded.json(), { items: [], next: null });
      assert.equal((await call('GET', '/tenants?status=gone')).statusCode, 400);

      const one = await call('GET', '/tenants/gamma');
      assert.equal(one.json().displayName, 'Gamma Ltd');

      const defaults = await call('GET', '/tenants/gamma/settings');
      assert.equal(defaults.statusCode, 200, defaults.body);
      assert.equal(defaults.json().idTokenClaims, 'on');
      assert.equal(defaults.json().mfa.mode, 'off');
      const changed = await call('PATCH', '/tenants/gamma/settings', {
        body: {
          idTokenClaims: false,
          defaultLocale: 'de',
          mailFrom: 'Gamma Accounts <accounts@gamma.test>',
          mfa: { mode: 'optional' },
          signUp: true,
          signUpDomains: ['gamma.test'],
          selfDelete: true,
          brandColour: '#1d4ed8',
          supportContact: 'help@gamma.test',
        },
      });
      assert.equal(changed.statusCode, 200, changed.body);
      assert.deepEqual(
        { ...(changed.json() as object), mfa: changed.json().mfa.mode },
        {
          tenant: 'gamma',
          idTokenClaims: 'off',
          defaultLocale: 'de',
          mailFrom: 'Gamma Accounts <accounts@gamma.test>',
          mfa: 'optional',
          signUp: 'on',
          signUpDomains: ['gamma.test'],
          selfDelete: 'on',
          displayName: 'Gamma Ltd',
          brandColour: '#1d4ed8',
          supportContact: 'help@gamma.test',
        },
      );
      assert.deepEqual(await latestAudit(gamma), {
        action: 'tenant.configured',
        actor: 'client:admin-client@system',
      });
      for (const [body, code] of [
        [{ defaultLocale: 'xx' }, 'request.invalid'],
        [{ mailFrom: 'not an address' }, 'mail.address_invalid'],
        [{}, 'request.invalid'],
        [{ mfa: { mode: 'always' } }, 'request.invalid'],
        [{ brandColour: '#ffff00' }, 'brand.contrast_insufficient'],
        [{ signUpDomains: ['not a domain'] }, 'request.invalid'],
      ] as const) {
        const refused = await call('PATCH', '/tenants/gamma/settings', { body });
        assert.equal(refused.statusCode, 400, JSON.stringify(body));
        assert.equal(problemOf(refused).code, code);
      }
      assert.equal((await call('GET', '/tenants/gamma/settings')).json().defaultLocale, 'de');
    });

    test("a tenant's custody is shown, and shredding needs its slug repeated", async () => {
      await orthid.tenants.create({ slug: 'doomed', actor: 'test' });
      const custody = await call('GET', '/tenants/doomed/custody');
      assert.equal(custody.statusCode, 200, custody.body);
      assert.equal(custody.json().kind, 'managed');
      assert.equal(custody.json().ownCustody, false);
      assert.ok(custody.json().rootKeys.length >= 1);
      const wrong = await call('POST', '/tenants/doomed/shred', { body: { confirm: 'alpha' } });
      assert.equal(wrong.statusCode, 400);
      assert.equal(problemOf(wrong).code, 'tenant.confirmation_required');
      assert.equal((await call('POST', '/tenants/doomed/shred', { body: {} })).statusCode, 400);
      assert.equal((await orthid.tenants.get('doomed')).status, 'active');
      const systemShred = await call('POST', '/tenants/system/shred', { body: { confirm: 'system' } });
      assert.equal(systemShred.statusCode, 403);
      assert.equal(problemOf(systemShred).code, 'tenant.protected');
      const shred = await call('POST', '/tenants/doomed/shred', { body: { confirm: 'doomed' } });
      assert.equal(shred.statusCode, 200, shred.body);
      assert.equal(shred.json().tenant, 'doomed');
      assert.equal(shred.json().by, 'client:admin-client@system');
      assert.equal((await call('GET', '/tenants/doomed')).json().status, 'shredded');
      const keys = await call('GET', '/tenants/doomed/keys');
      assert.equal(keys.statusCode, 200, keys.body);
      assert.equal(keys.json().shredded, true);
      assert.deepEqual(keys.json().custody.rootKeys, []);
      assert.ok(keys.json().dataKeys.every((k: { status: string }) => k.status === 'destroyed'));
      assert.equal((await call('GET', '/tenants/doomed/audit/chain')).statusCode, 200);
      assert.deepEqual(await latestAudit(system), {
        action: 'tenant.shredded',
        actor: 'client:admin-client@system',
      });
    });

    test("a tenant's keys are shown without key material: custody, data key versions, signing keys' ages", async () => {
      const response = await call('GET', '/tenants/alpha/keys', { as: alpha });
      assert.equal(response.statusCode, 200, response.body);
      const keys = response.json();
      assert.equal(keys.tenant, 'alpha');
      assert.equal(keys.custody.kind, 'managed');
      assert.deepEqual(
        keys.dataKeys.map((k: { purpose: string; version: number; status: string }) => [
          k.purpose,
          k.version,
          k.status,
        ]),
        [
          ['data', 1, 'active'],
          ['index', 1, 'active'],
        ],
      );
      assert.ok(keys.custody.rootKeys.some((k: { id: string }) => k.id === keys.dataKeys[0].rootKeyId));
      assert.deepEqual(keys.signingKeys.map((k: { alg: string }) => k.alg).sort(), [
        'ES256',
        'EdDSA',
        'RS256',
      ]);
      for (const key of keys.signingKeys) {
        assert.equal(key.status, 'active');
        assert.ok(key.ageSeconds >= 0 && key.ageSeconds < 3600);
      }
      assert.deepEqual(keys.rotations, []);
      assert.doesNotMatch(response.body, /wrapped"|privateJwk|"d":/);
      const rotated = await call('GET', '/tenants/alpha/keys');
      assert.equal(rotated.statusCode, 200, 'a system administrator reads any tenant');
      const other = await orthid.tenants.create({ slug: 'other', actor: 'test' });
      const foreign = await call('GET', '/tenants/alpha/keys', { as: other });
      assert.equal(foreign.statusCode, 403);
    });

    test('the OpenAPI document describes the tenant and key routes', async () => {
      const document = (await app.inject({ method: 'GET', url: '/api/openapi.json' })).json() as {
        paths: Record<string, unknown>;
      };
      for (const path of [
        '/api/v1/tenants',
        '/api/v1/tenants/{tenant}',
        '/api/v1/tenants/{tenant}/settings',
        '/api/v1/tenants/{tenant}/custody',
        '/api/v1/tenants/{tenant}/shred',
        '/api/v1/tenants/{tenant}/keys',
        '/api/v1/tenants/{tenant}/audit/chain',
      ]) {
        assert.ok(document.paths[path], `missing ${path}: ${Object.keys(document.paths).join(' ')}`);
      }
    });
  });
}
