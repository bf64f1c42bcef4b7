// The admin API's client editing and secret rotation, and the lists read in a chosen order: an
// edit is checked as a registration and against the version it was made on, a rotated secret is
// refused at the token endpoint of the running provider, and paging stays stable in every order.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { fixedClock } from '../../src/core/clock.js';
import type { Queryable } from '../../src/core/sql.js';
import { BUILT_IN_CLIENT_IDS } from '../../src/oidc/clients.js';
import { registerAccountClient } from '../../src/ops/bootstrap.js';
import { setUpConsoleClient } from '../../src/ops/console-access.js';
import { buildServer } from '../../src/server/app.js';
import { withTenant } from '../../src/storage/db/database.js';
import { adminResourceIndicator } from '../../src/tenancy/admin-resource.js';
import type { Tenant } from '../../src/tenancy/tenants.js';
import { mintAdminToken } from '../helpers/admin-token.js';
import { createTestOrthId, DRIVERS, type TestOrthId } from '../helpers/orthid.js';

for (const driver of DRIVERS) {
  describe(`admin API: clients edited, secrets rotated, lists sorted (${driver})`, () => {
    let orthid: TestOrthId;
    let app: FastifyInstance;
    let acme: Tenant;
    let token: string;
    let stopListening: () => Promise<void>;
    // Starts at the real time (admin tokens are minted on it); moved on to end a grace period.
    const clock = fixedClock(new Date());

    before(async () => {
      orthid = await createTestOrthId(driver, { clock });
      acme = await orthid.tenants.create({ slug: 'acme', actor: 'test' });
      // As a tenant created by `orthid start` or the admin API has them.
      await withTenant(orthid.db, acme.id, async (tx) => {
        await registerAccountClient(orthid, tx, acme, 'test');
        await setUpConsoleClient(orthid)(tx, acme);
      });
      app = await buildServer(orthid);
      // As `orthid start` does: the providers cache clients and drop them when a change is announced.
      stopListening = await orthid.oidc.subscribe();
      token = await mintAdminToken(orthid, acme);
    });
    after(async () => {
      await stopListening?.();
      await app?.close();
      await orthid?.close();
    });

    const call = (
      method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
      path: string,
      options: { body?: unknown; headers?: Record<string, string> } = {},
    ): Promise<LightMyRequestResponse> =>
      app.inject({
        method,
        url: `/api/v1/tenants/acme${path}`,
        headers: { ...options.headers, authorization: `Bearer ${token}` },
        ...(options.body === undefined ? {} : { payload: options.body as object }),
      });
    const codeOf = (response: LightMyRequestResponse) => (response.json() as { code: string }).code;
    const inAcme = <T>(fn: (tx: Queryable) => Promise<T>) => withTenant(orthid.db, acme.id, fn);
    const auditOf = (action: string) =>
      inAcme(async (tx) => {
        const { rows } = await tx.query<{ target: string; actor: string }>(
          'SELECT target, actor FROM audit_events WHERE action = $1 ORDER BY seq',
          [action],
        );
        return rows;
      });

    async function register(body: Record<string, unknown>) {
      const response = await call('POST', '/clients', { body });
      assert.equal(response.statusCode, 201, response.body);
      return response.json() as { clientId: string; clientSecret?: string };
    }

    /** A client-credentials token request at the tenant's token endpoint: the HTTP status. */
    async function tokenStatus(clientId: string, secret: string): Promise<number> {
      const response = await app.inject({
        method: 'POST',
        url: '/t/acme/token',
        headers: {
          authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        payload: new URLSearchParams({
          grant_type: 'client_credentials',
          resource: adminResourceIndicator(orthid.config.publicUrl),
        }).toString(),
      });
      return response.statusCode;
    }

    /**
     * The token status once the providers have had the change's notification (delivered after
     * its commit): asked again while it still differs from `expected`, a bounded number of times.
     */
    async function settledTokenStatus(clientId: string, secret: string, expected: number): Promise<number> {
      let status = 0;
      for (let attempt = 0; attempt < 50; attempt++) {
        status = await tokenStatus(clientId, secret);
        if (status === expected) return status;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      return status;
    }

    test('an edit needs the ETag of the version it was made on: 428 without it, 412 when stale, and is audited', async () => {
      const { clientId } = await register({
        name: 'Shop',
        grantTypes: ['authorization_code'],
        redirectUris: ['https://shop.example/cb'],
      });
      const read = await call('GET', `/clients/${clientId}`);
      const etag = String(read.headers.etag);
      assert.match(etag, /^"[A-Za-z0-9_-]+"$/);
      const change = { redirectUris: ['https://shop.example/cb', 'https://shop.example/cb2'] };

      const missing = await call('PATCH', `/clients/${clientId}`, { body: change });
      assert.equal(missing.statusCode, 428);
      assert.equal(codeOf(missing), 'request.precondition_required');

      const renamed = await call('PATCH', `/clients/${clientId}`, {
        body: { name: 'Shop (renamed)' },
        headers: { 'if-match': etag },
      });
      assert.equal(renamed.statusCode, 200, renamed.body);
      assert.notEqual(renamed.headers.etag, etag);

      // A second operator still holding the first version is refused, and told the current one.
      const stale = await call('PATCH', `/clients/${clientId}`, {
        body: change,
        headers: { 'if-match': etag },
      });
      assert.equal(stale.statusCode, 412);
      assert.equal(codeOf(stale), 'request.precondition_failed');
      assert.equal(stale.json().errors?.etag ?? stale.json().etag, renamed.headers.etag);
      assert.deepEqual((await call('GET', `/clients/${clientId}`)).json().redirectUris, [
        'https://shop.example/cb',
      ]);

      const applied = await call('PATCH', `/clients/${clientId}`, {
        body: change,
        headers: { 'if-match': String(renamed.headers.etag) },
      });
      assert.equal(applied.statusCode, 200, applied.body);
      assert.deepEqual(applied.json().redirectUris, change.redirectUris);
      assert.equal(applied.json().name, 'Shop (renamed)');
      const events = (await auditOf('client.updated')).filter((e) => e.target === `client:${clientId}`);
      assert.equal(events.length, 2);
    });

    test('an edit is checked as a registration: a bad redirect URI is 400 with a stable code and changes nothing', async () => {
      const { clientId } = await register({
        name: 'Checked',
        grantTypes: ['authorization_code'],
        redirectUris: ['https://checked.example/cb'],
      });
      const etag = String((await call('GET', `/clients/${clientId}`)).headers.etag);
      const refusals: [unknown, string][] = [
        [{ redirectUris: ['http://checked.example/cb'] }, 'request.invalid'],
        [{ redirectUris: ['https://checked.example/cb#frag'] }, 'request.invalid'],
        [{ redirectUris: ['javascript:alert(1)'] }, 'request.invalid'],
        [{ redirectUris: [] }, 'request.invalid'],
        [{ postLogoutRedirectUris: ['not a uri'] }, 'request.invalid'],
        [{ grantTypes: ['implicit'] }, 'request.invalid'],
        [{ name: '' }, 'request.invalid'],
        [{}, 'request.invalid'],
        [{ clientSecret: 'mine' }, 'request.invalid'],
      ];
      for (const [body, code] of refusals) {
        const refused = await call('PATCH', `/clients/${clientId}`, { body, headers: { 'if-match': etag } });
        assert.equal(refused.statusCode, 400, `${JSON.stringify(body)}: ${refused.body}`);
        assert.equal(codeOf(refused), code, JSON.stringify(body));
      }
      const after = await call('GET', `/clients/${clientId}`);
      assert.equal(after.headers.etag, etag);
      assert.deepEqual(after.json().redirectUris, ['https://checked.example/cb']);
      // http stays allowed on loopback, as at registration.
      const loopback = await call('PATCH', `/clients/${clientId}`, {
        body: { redirectUris: ['http://127.0.0.1:8080/cb'] },
        headers: { 'if-match': etag },
      });
      assert.equal(loopback.statusCode, 200, loopback.body);
      const unknown = await call('PATCH', '/clients/no-such-client', {
        body: { name: 'x' },
        headers: { 'if-match': etag },
      });
      assert.equal(unknown.statusCode, 404);
      assert.equal(codeOf(unknown), 'client.not_found');
    });

    test('the running provider sees an edit: a grant type removed is refused at the token endpoint', async () => {
      const { clientId, clientSecret } = await register({
        name: 'Worker',
        grantTypes: ['client_credentials'],
        resources: [adminResourceIndicator(orthid.config.publicUrl)],
      });
      assert.equal(await tokenStatus(clientId, clientSecret!), 200);
      const etag = String((await call('GET', `/clients/${clientId}`)).headers.etag);
      const changed = await call('PATCH', `/clients/${clientId}`, {
        body: { grantTypes: ['authorization_code'], redirectUris: ['https://worker.example/cb'] },
        headers: { 'if-match': etag },
      });
      assert.equal(changed.statusCode, 200, changed.body);
      assert.deepEqual(changed.json().responseTypes, ['code']);
      assert.equal(await settledTokenStatus(clientId, clientSecret!, 400), 400);
    });

    test('a rotated secret is shown once; the old one is refused at the token endpoint at once, and the audit holds no secret', async () => {
      const { clientId, clientSecret: first } = await register({
        name: 'Rotated',
        grantTypes: ['client_credentials'],
        resources: [adminResourceIndicator(orthid.config.publicUrl)],
      });
      assert.equal(await tokenStatus(clientId, first!), 200);
      const etag = String((await call('GET', `/clients/${clientId}`)).headers.etag);
      const rotated = await call('POST', `/clients/${clientId}/secret`, { body: {} });
      assert.equal(rotated.statusCode, 200, rotated.body);
      assert.equal(rotated.headers['cache-control'], 'no-store');
      const second = rotated.json().clientSecret as string;
      assert.ok(second.length >= 40);
      assert.notEqual(second, first);
      assert.equal(rotated.json().previousSecretExpiresAt, undefined);
      // Shown once: never again in a read.
      const read = await call('GET', `/clients/${clientId}`);
      assert.doesNotMatch(read.body, new RegExp(second));
      // A rotation is not an edit: an edit in progress keeps its version.
      assert.equal(read.headers.etag, etag);

      assert.equal(await settledTokenStatus(clientId, first!, 401), 401);
      assert.equal(await tokenStatus(clientId, second), 200);

      const events = (await auditOf('client.secret_rotated')).filter(
        (e) => e.target === `client:${clientId}`,
      );
      assert.equal(events.length, 1);
      const stored = await inAcme((tx) =>
        tx.query<{ text: string }>(
          "SELECT row_to_json(a)::text AS text FROM audit_events a WHERE action = 'client.secret_rotated'",
        ),
      );
      for (const row of stored.rows) assert.ok(!row.text.includes(second) && !row.text.includes(first!));
    });

    test('with a grace period the old secret works until it ends, and a second rotation ends it', async () => {
      const { clientId, clientSecret: first } = await register({
        name: 'Graceful',
        grantTypes: ['client_credentials'],
        resources: [adminResourceIndicator(orthid.config.publicUrl)],
      });
      const rotated = await call('POST', `/clients/${clientId}/secret`, {
        body: { gracePeriodSeconds: 3600 },
      });
      assert.equal(rotated.statusCode, 200, rotated.body);
      const second = rotated.json().clientSecret as string;
      const until = new Date(rotated.json().previousSecretExpiresAt as string);
      assert.equal(until.getTime(), clock.now().getTime() + 3600_000);
      assert.equal(await settledTokenStatus(clientId, second, 200), 200);
      assert.equal(await tokenStatus(clientId, first!), 200);

      const again = await call('POST', `/clients/${clientId}/secret`, { body: { gracePeriodSeconds: 60 } });
      assert.equal(again.statusCode, 200, again.body);
      const third = again.json().clientSecret as string;
      // The first secret's grace ended with the second rotation; the second one's runs for a minute.
      assert.equal(await settledTokenStatus(clientId, first!, 401), 401);
      assert.equal(await tokenStatus(clientId, second), 200);
      assert.equal(await tokenStatus(clientId, third), 200);
      const now = clock.now();
      try {
        clock.set(new Date(now.getTime() + 61_000));
        assert.equal(await tokenStatus(clientId, second), 401);
        assert.equal(await tokenStatus(clientId, third), 200);
      } finally {
        clock.set(now);
      }
    });

    test('a public client has no secret to rotate, and a bad grace period is refused: 400 with stable codes', async () => {
      const { clientId } = await register({
        name: 'SPA',
        public: true,
        grantTypes: ['authorization_code'],
        redirectUris: ['https://spa.example/cb'],
      });
      const publicRefused = await call('POST', `/clients/${clientId}/secret`, { body: {} });
      assert.equal(publicRefused.statusCode, 400);
      assert.equal(codeOf(publicRefused), 'client.public_no_secret');
      const { clientId: confidential } = await register({ name: 'Conf', grantTypes: ['client_credentials'] });
      for (const gracePeriodSeconds of [-1, 604_801, 1.5, '60']) {
        const refused = await call('POST', `/clients/${confidential}/secret`, {
          body: { gracePeriodSeconds },
        });
        assert.equal(refused.statusCode, 400, `${gracePeriodSeconds}: ${refused.body}`);
        assert.equal(codeOf(refused), 'request.invalid');
      }
      assert.equal(
        (await auditOf('client.secret_rotated')).filter((e) => e.target === `client:${confidential}`).length,
        0,
      );
      const missing = await call('POST', '/clients/no-such-client/secret', { body: {} });
      assert.equal(missing.statusCode, 404);
    });

    test("OrthID's own clients (account pages, console) cannot be edited, rotated or deleted: 403 and nothing changes", async () => {
      for (const clientId of Object.values(BUILT_IN_CLIENT_IDS)) {
        const before = await call('GET', `/clients/${clientId}`);
        assert.equal(before.statusCode, 200, `${clientId}: ${before.body}`);
        const etag = String(before.headers.etag);
        const attempts = [
          await call('PATCH', `/clients/${clientId}`, {
            body: { redirectUris: ['https://evil.example/cb'] },
            headers: { 'if-match': etag },
          }),
          await call('POST', `/clients/${clientId}/secret`, { body: {} }),
          await call('DELETE', `/clients/${clientId}`),
        ];
        for (const refused of attempts) {
          assert.equal(refused.statusCode, 403, `${clientId}: ${refused.body}`);
          assert.equal(codeOf(refused), 'client.built_in');
        }
        const after = await call('GET', `/clients/${clientId}`);
        assert.deepEqual(after.json(), before.json());
        assert.equal(after.headers.etag, etag);
      }
      const touched = [
        ...(await auditOf('client.updated')),
        ...(await auditOf('client.secret_rotated')),
        ...(await auditOf('client.deleted')),
      ].filter((e) => Object.values<string>(BUILT_IN_CLIENT_IDS).includes(e.target.slice('client:'.length)));
      assert.deepEqual(touched, []);
    });

    test('clients are listed in the order asked, paged without gaps or repeats; a bad sort or cursor is 400', async () => {
      for (const name of ['sort-a', 'sort-b', 'sort-c']) {
        await register({ name, grantTypes: ['client_credentials'] });
      }
      async function all(sort: string): Promise<{ clientId: string; createdAt: string }[]> {
        const items: { clientId: string; createdAt: string }[] = [];
        let after: string | null = null;
        do {
          const query = new URLSearchParams({ limit: '2', sort, ...(after ? { after } : {}) });
          const page = await call('GET', `/clients?${query}`);
          assert.equal(page.statusCode, 200, page.body);
          items.push(...page.json().items);
          after = page.json().next;
        } while (after);
        return items;
      }
      const byId = (await all('client_id')).map((c) => c.clientId);
      assert.deepEqual(
        byId,
        [...byId].sort((a, b) => (a < b ? -1 : 1)),
      );
      assert.deepEqual(
        (await all('-client_id')).map((c) => c.clientId),
        [...byId].reverse(),
      );
      const created = await all('created');
      assert.equal(created.length, byId.length);
      assert.deepEqual(new Set(created.map((c) => c.clientId)), new Set(byId));
      for (let i = 1; i < created.length; i++) assert.ok(created[i - 1]!.createdAt <= created[i]!.createdAt);
      assert.deepEqual(
        (await all('-created')).map((c) => c.clientId),
        created.map((c) => c.clientId).reverse(),
      );

      const badSort = await call('GET', '/clients?sort=secret');
      assert.equal(badSort.statusCode, 400);
      assert.equal(codeOf(badSort), 'request.invalid');
      const first = (await call('GET', '/clients?limit=1&sort=created')).json();
      const otherOrder = await call('GET', `/clients?limit=1&sort=-client_id&after=${first.next}`);
      assert.equal(otherOrder.statusCode, 400);
      assert.equal(codeOf(otherOrder), 'request.invalid_cursor');
      const forged = Buffer.from(JSON.stringify(['created', 'yesterday', 'x'])).toString('base64url');
      for (const after of [forged, 'not-a-cursor', Buffer.from('[1,2]').toString('base64url')]) {
        const refused = await call('GET', `/clients?sort=created&after=${after}`);
        assert.equal(refused.statusCode, 400, refused.body);
        assert.equal(codeOf(refused), 'request.invalid_cursor');
      }
    });

    test('organisations are listed by name or creation, either way; audit events oldest first too', async () => {
      for (const name of ['Zeta', 'alpha', 'Mu']) {
        assert.equal((await call('POST', '/organisations', { body: { name } })).statusCode, 201);
      }
      async function names(sort: string): Promise<string[]> {
        const out: string[] = [];
        let after: string | null = null;
        do {
          const query = new URLSearchParams({ limit: '1', sort, ...(after ? { after } : {}) });
          const page = await call('GET', `/organisations?${query}`);
          assert.equal(page.statusCode, 200, page.body);
          out.push(...page.json().items.map((o: { name: string }) => o.name));
          after = page.json().next;
        } while (after);
        return out;
      }
      const byName = await names('name');
      const collated = await inAcme(async (tx) =>
        (await tx.query<{ name: string }>('SELECT name FROM organisations ORDER BY name, id')).rows.map(
          (r) => r.name,
        ),
      );
      assert.deepEqual(byName, collated);
      assert.deepEqual(await names('-name'), [...byName].reverse());
      const created = await names('created');
      assert.deepEqual(created.slice(-3), ['Zeta', 'alpha', 'Mu']);
      assert.deepEqual(await names('-created'), [...created].reverse());
      for (const [query, code] of [
        ['sort=size', 'request.invalid'],
        ['after=not-a-uuid', 'request.invalid_cursor'],
        ['sort=name&after=not-a-cursor', 'request.invalid_cursor'],
      ] as const) {
        const refused = await call('GET', `/organisations?${query}`);
        assert.equal(refused.statusCode, 400, refused.body);
        assert.equal(codeOf(refused), code);
      }

      const newest = (await call('GET', '/audit-events?limit=3'))
        .json()
        .items.map((e: { seq: number }) => e.seq);
      assert.deepEqual(
        newest,
        [...newest].sort((a: number, b: number) => b - a),
      );
      const oldest = await call('GET', '/audit-events?limit=2&sort=occurred');
      const seqs = oldest.json().items.map((e: { seq: number }) => e.seq);
      assert.deepEqual(
        seqs,
        [...seqs].sort((a: number, b: number) => a - b),
      );
      const next = await call('GET', `/audit-events?limit=2&sort=occurred&after=${oldest.json().next}`);
      assert.ok(next.json().items[0].seq > seqs[1]);
      const refused = await call('GET', '/audit-events?sort=time');
      assert.equal(refused.statusCode, 400);
      assert.equal(codeOf(refused), 'request.invalid');
    });
  });
}
