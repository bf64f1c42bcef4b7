// What the console needs from the admin API, through the API as an operator uses it: users found
// by email through the blind index, the audit log filtered on the server and its chain's status,
// and roles that two operators cannot overwrite each other's changes to.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildServer } from '../../src/server/app.js';
import { withTenant } from '../../src/storage/db/database.js';
import type { Tenant } from '../../src/tenancy/tenants.js';
import { mintAdminToken } from '../helpers/admin-token.js';
import { createTestOrthId, DRIVERS, type TestOrthId } from '../helpers/orthid.js';

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

interface Problem {
  code: string;
  detail: string;
  errors?: { fields?: { path: string }[] };
}

function problemOf(response: LightMyRequestResponse): Problem {
  assert.match(String(response.headers['content-type']), /^application\/problem\+json/);
  return response.json();
}

for (const driver of DRIVERS) {
  describe(`admin API for operators (${driver})`, { timeout: 240_000 }, () => {
    let orthid: TestOrthId;
    let app: FastifyInstance;
    let alpha: Tenant;
    let beta: Tenant;

    async function call(
      method: Method,
      path: string,
      options: { as?: Tenant; token?: string; body?: unknown; headers?: Record<string, string> } = {},
    ): Promise<LightMyRequestResponse> {
      const token = options.token ?? (await mintAdminToken(orthid, options.as ?? alpha));
      return app.inject({
        method,
        url: `/api/v1${path}`,
        headers: { ...options.headers, authorization: `Bearer ${token}` },
        ...(options.body === undefined ? {} : { payload: options.body as object }),
      });
    }

    const auditCount = (tenant: Tenant) =>
      withTenant(orthid.db, tenant.id, async (tx) =>
        Number((await tx.query<{ n: string }>('SELECT count(*) AS n FROM audit_events')).rows[0]!.n),
      );

    before(async () => {
      orthid = await createTestOrthId(driver);
      await orthid.tenants.create({ slug: 'system', actor: 'test' });
      alpha = await orthid.tenants.create({ slug: 'alpha', actor: 'test' });
      beta = await orthid.tenants.create({ slug: 'beta', actor: 'test' });
      app = await buildServer(orthid);
    });
    after(async () => {
      await app?.close();
      await orthid?.close();
    });

    test('a user is found by their email through the blind index, with the decrypted name', async () => {
      const created = await call('POST', '/tenants/alpha/users', {
        body: { email: 'Dana.Search@Alpha.test', name: 'Dana Search' },
      });
      assert.equal(created.statusCode, 201, created.body);
      await call('POST', '/tenants/alpha/users', { body: { email: 'someone.else@alpha.test' } });
      const found = await call(
        'GET',
        `/tenants/alpha/users?email=${encodeURIComponent('dana.search@alpha.TEST')}`,
      );
      assert.equal(found.statusCode, 200, found.body);
      const page = found.json() as { items: { id: string; email: string; name: string }[]; next: null };
      assert.equal(page.items.length, 1);
      assert.equal(page.items[0]!.id, created.json().id);
      assert.equal(page.items[0]!.name, 'Dana Search');
      assert.equal(page.next, null);
      const none = await call('GET', '/tenants/alpha/users?email=nobody%40alpha.test');
      assert.deepEqual(none.json(), { items: [], next: null });
      // The same address in another tenant is another tenant's user: the index is keyed per tenant.
      const elsewhere = await call('GET', '/tenants/beta/users?email=dana.search%40alpha.test', { as: beta });
      assert.deepEqual(elsewhere.json(), { items: [], next: null });
      const bad = await call('GET', '/tenants/alpha/users?email=not-an-address');
      assert.equal(bad.statusCode, 400);
      assert.equal(problemOf(bad).code, 'request.invalid');
    });

    test('an operator disables, enables, unlocks, sets the password of and signs out a user, each audited', async () => {
      const user = (
        await call('POST', '/tenants/alpha/users', { body: { email: 'erin.ops@alpha.test', name: 'Erin' } })
      ).json() as { id: string };
      const steps: [Method, string, unknown, number, string][] = [
        ['POST', 'disable', undefined, 200, 'user.disabled'],
        ['POST', 'enable', undefined, 200, 'user.enabled'],
        ['POST', 'unlock', undefined, 200, 'user.unlocked'],
        ['PUT', 'password', { password: 'a long enough passphrase for erin' }, 200, 'user.password_changed'],
        ['DELETE', 'sessions', undefined, 200, 'session.revoked_all'],
      ];
      for (const [method, action, body, status, audited] of steps) {
        const response = await call(method, `/tenants/alpha/users/${user.id}/${action}`, { body });
        assert.equal(response.statusCode, status, `${action}: ${response.body}`);
        const latest = await call('GET', '/tenants/alpha/audit-events?limit=1');
        assert.equal(latest.json().items[0].action, audited);
      }
      const shown = (await call('GET', `/tenants/alpha/users/${user.id}`)).json();
      assert.equal(shown.hasPassword, true);
      assert.equal(shown.status, 'active');
      const sessions = await call('GET', `/tenants/alpha/users/${user.id}/sessions`);
      assert.deepEqual(sessions.json(), { items: [], next: null });
      await call('POST', `/tenants/alpha/users/${user.id}/disable`);
      const disabled = (await call('GET', '/tenants/alpha/users?status=disabled')).json();
      assert.deepEqual(
        disabled.items.map((u: { id: string }) => u.id),
        [user.id],
      );
      const active = (await call('GET', '/tenants/alpha/users?status=active&limit=200')).json();
      assert.ok(active.items.every((u: { status: string }) => u.status === 'active'));
      assert.ok(active.items.length > 0);
      const byEmail = await call('GET', '/tenants/alpha/users?email=erin.ops%40alpha.test&status=active');
      assert.deepEqual(byEmail.json().items, []);
      assert.equal((await call('GET', '/tenants/alpha/users?status=gone')).statusCode, 400);
    });

    test('a token of another tenant, or without orthid:admin, gets 403 naming what is missing', async () => {
      const foreign = await call('GET', '/tenants/alpha/users', { as: beta });
      assert.equal(foreign.statusCode, 403);
      assert.equal(problemOf(foreign).code, 'auth.forbidden');
      assert.match(problemOf(foreign).detail, /system/);
      const token = await mintAdminToken(orthid, alpha, { scope: 'openid' });
      const unscoped = await call('GET', '/tenants/alpha/audit-events', { token });
      assert.equal(unscoped.statusCode, 403);
      assert.match(problemOf(unscoped).detail, /orthid:admin/);
    });

    test('the audit log is filtered by actor, action and time range on the server', async () => {
      const token = await mintAdminToken(orthid, alpha, { clientId: 'auditor' });
      const start = new Date(Date.now() - 1000).toISOString();
      const org = await call('POST', '/tenants/alpha/organisations', {
        token,
        body: { name: 'Filtered Org' },
      });
      assert.equal(org.statusCode, 201);
      await call('POST', '/tenants/alpha/roles', { token, body: { name: 'filtered-role' } });
      await call('POST', '/tenants/alpha/organisations', { body: { name: 'Other actor Org' } });
      const byActor = await call('GET', '/tenants/alpha/audit-events?actor=client%3Aauditor');
      const actions = (byActor.json().items as { action: string; actor: string }[]).map((e) => e.action);
      assert.deepEqual(actions, ['role.created', 'organisation.created']);
      const byAction = await call(
        'GET',
        '/tenants/alpha/audit-events?actor=client%3Aauditor&action=role.created',
      );
      assert.equal(byAction.json().items.length, 1);
      const byPrefix = await call('GET', '/tenants/alpha/audit-events?action=organisation.*&limit=1');
      assert.equal(byPrefix.json().items[0].action, 'organisation.created');
      assert.equal(byPrefix.json().items[0].actor, 'client:admin-client');
      assert.notEqual(byPrefix.json().next, null);
      const second = await call(
        'GET',
        `/tenants/alpha/audit-events?action=organisation.*&limit=1&after=${byPrefix.json().next}`,
      );
      assert.equal(second.json().items[0].actor, 'client:auditor');
      const later = new Date(Date.now() + 60_000).toISOString();
      const inRange = await call(
        'GET',
        `/tenants/alpha/audit-events?actor=client%3Aauditor&from=${encodeURIComponent(start)}&to=${encodeURIComponent(later)}`,
      );
      assert.equal(inRange.json().items.length, 2);
      const afterAll = await call('GET', `/tenants/alpha/audit-events?from=${encodeURIComponent(later)}`);
      assert.deepEqual(afterAll.json(), { items: [], next: null });
      for (const query of [
        `from=${encodeURIComponent(later)}&to=${encodeURIComponent(start)}`,
        'from=yesterday',
        'action=DROP%20TABLE',
      ]) {
        const bad = await call('GET', `/tenants/alpha/audit-events?${query}`);
        assert.equal(bad.statusCode, 400, query);
        assert.equal(problemOf(bad).code, 'request.invalid');
      }
    });

    test("the chain's status is intact, then names the first broken link after tampering", async () => {
      const tenant = await orthid.tenants.create({ slug: 'tampered', actor: 'test' });
      const as = tenant;
      for (const name of ['one', 'two', 'three']) {
        await call('POST', '/tenants/tampered/organisations', { as, body: { name } });
      }
      const intact = await call('GET', '/tenants/tampered/audit/chain', { as });
      assert.equal(intact.statusCode, 200, intact.body);
      const status = intact.json();
      assert.equal(status.ok, true);
      assert.equal(status.broken, undefined);
      assert.equal(status.events, Number(status.headSeq));
      const events = await auditCount(tenant);
      const { rows } = await orthid.db.ownerTransaction((tx) =>
        tx.query<{ seq: string }>(
          "SELECT seq FROM audit_events WHERE tenant_id = $1 AND action = 'organisation.created' ORDER BY seq LIMIT 1 OFFSET 1",
          [tenant.id],
        ),
      );
      const seq = rows[0]!.seq;
      await orthid.db.ownerTransaction(async (tx) => {
        await tx.query('ALTER TABLE audit_events DISABLE TRIGGER audit_events_immutable');
        await tx.query(
          "UPDATE audit_events SET actor = 'client:someone-else' WHERE tenant_id = $1 AND seq = $2",
          [tenant.id, seq],
        );
        await tx.query('ALTER TABLE audit_events ENABLE TRIGGER audit_events_immutable');
      });
      const broken = (await call('GET', '/tenants/tampered/audit/chain', { as })).json();
      assert.equal(broken.ok, false);
      assert.equal(broken.code, 'audit.chain_broken');
      assert.equal(broken.broken.seq, seq);
      assert.match(broken.broken.reason, /altered/);
      assert.match(broken.message, new RegExp(`#${seq}`));
      // Reading the status writes nothing: no event and no checkpoint.
      assert.equal(await auditCount(tenant), events);
      assert.equal(broken.checkpoints, 0);
    });

    test('two operators editing one role: the stale change gets 412 and nothing is overwritten', async () => {
      const role = (
        await call('POST', '/tenants/alpha/roles', { body: { name: 'editors', description: 'first' } })
      ).json() as { id: string };
      const read = await call('GET', `/tenants/alpha/roles/${role.id}`);
      const etag = String(read.headers.etag);
      assert.match(etag, /^"[A-Za-z0-9_-]+"$/);
      const missing = await call('PATCH', `/tenants/alpha/roles/${role.id}`, { body: { description: 'x' } });
      assert.equal(missing.statusCode, 428);
      assert.equal(problemOf(missing).code, 'request.precondition_required');
      const first = await call('PATCH', `/tenants/alpha/roles/${role.id}`, {
        body: { description: 'by the first operator' },
        headers: { 'if-match': etag },
      });
      assert.equal(first.statusCode, 200, first.body);
      const newer = String(first.headers.etag);
      assert.notEqual(newer, etag);
      const before = await auditCount(alpha);
      const stale = await call('PATCH', `/tenants/alpha/roles/${role.id}`, {
        body: { description: 'by the second operator' },
        headers: { 'if-match': etag },
      });
      assert.equal(stale.statusCode, 412);
      assert.equal(problemOf(stale).code, 'request.precondition_failed');
      assert.equal(await auditCount(alpha), before);
      const now = await call('GET', `/tenants/alpha/roles/${role.id}`);
      assert.equal(now.json().description, 'by the first operator');
      assert.equal(String(now.headers.etag), newer);
      // A permission added changes the version too, so a PATCH read before it is stale.
      const resource = (await call('GET', '/tenants/alpha/resources')).json().items[0].id as string;
      const permission = (await call('GET', `/tenants/alpha/resources/${resource}/permissions`)).json()
        .items[0].id as string;
      const stalePut = await call('PUT', `/tenants/alpha/roles/${role.id}/permissions/${permission}`, {
        headers: { 'if-match': etag },
      });
      assert.equal(stalePut.statusCode, 412);
      const put = await call('PUT', `/tenants/alpha/roles/${role.id}/permissions/${permission}`, {
        headers: { 'if-match': newer },
      });
      assert.equal(put.statusCode, 204);
      assert.notEqual(String(put.headers.etag), newer);
      const afterPut = await call('PATCH', `/tenants/alpha/roles/${role.id}`, {
        body: { name: 'late' },
        headers: { 'if-match': newer },
      });
      assert.equal(afterPut.statusCode, 412);
      const unknown = await call('PATCH', '/tenants/alpha/roles/0190d7a0-0000-7000-8000-000000000000', {
        body: { name: 'ghost' },
        headers: { 'if-match': newer },
      });
      assert.equal(unknown.statusCode, 404);
      assert.equal(problemOf(unknown).code, 'role.not_found');
    });
  });
}
