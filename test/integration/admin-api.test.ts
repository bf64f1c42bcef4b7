import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { importJWK, SignJWT } from 'jose';
import type { Queryable } from '../../src/core/sql.js';
import { rotateSigningKey, usableSigningKeys } from '../../src/crypto/signing-keys.js';
import { buildServer } from '../../src/server/app.js';
import { withTenant } from '../../src/storage/db/database.js';
import { ADMIN_PERMISSION, adminResourceIndicator } from '../../src/tenancy/admin-resource.js';
import { issuerFor, type Tenant } from '../../src/tenancy/tenants.js';
import { ensureAdminClient, ensureAdminUser } from '../helpers/admin-principal.js';
import { createTestOrthId, DRIVERS, type TestOrthId } from '../helpers/orthid.js';

interface TokenOptions {
  scope?: string;
  audience?: string | string[];
  /** Seconds from now; negative for an expired token. */
  expiresIn?: number;
  sub?: string;
  clientId?: string;
  /** Sign with this tenant's key while claiming `tenant` as issuer. */
  signWith?: Tenant;
  typ?: string;
}

function problemOf(response: LightMyRequestResponse): {
  code: string;
  status: number;
  errors?: { fields?: { path: string; message: string }[] };
} {
  assert.match(String(response.headers['content-type']), /^application\/problem\+json/);
  return response.json();
}

for (const driver of DRIVERS) {
  describe(`admin API (${driver})`, () => {
    let orthid: TestOrthId;
    let app: FastifyInstance;
    let system: Tenant;
    let alpha: Tenant;
    let beta: Tenant;

    /**
     * Mints exactly what the tenant's token endpoint issues for a client-credentials grant: an
     * RFC 9068 access token (typ at+jwt) signed with the tenant's active key, issuer
     * <public url>/t/<slug>, audience the admin API, the granted permissions in `scope`.
     * (The token endpoint is built concurrently, so the test signs the same claims directly.)
     */
    async function mintToken(tenant: Tenant, options: TokenOptions = {}): Promise<string> {
      const signer = options.signWith ?? tenant;
      const key = await withTenant(orthid.db, signer.id, async (tx) => {
        const keyring = await orthid.tenantKeys.forTenant(tx, signer.id);
        if ((await usableSigningKeys(tx, keyring, new Date())).length === 0) {
          await rotateSigningKey(tx, keyring, 'EdDSA', new Date(), 0);
        }
        return (await usableSigningKeys(tx, keyring, new Date()))[0]!;
      });
      const clientId = options.clientId ?? 'admin-client';
      // The admin API checks on every request that the token's client exists and holds orthid:admin.
      await ensureAdminClient(orthid.db, tenant.id, clientId, orthid.config.publicUrl);
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ client_id: clientId, scope: options.scope ?? ADMIN_PERMISSION })
        .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: options.typ ?? 'at+jwt' })
        .setIssuer(issuerFor(orthid.config.publicUrl, tenant.slug))
        .setSubject(options.sub ?? clientId)
        .setAudience(options.audience ?? adminResourceIndicator(orthid.config.publicUrl))
        .setIssuedAt(now)
        .setExpirationTime(now + (options.expiresIn ?? 600))
        .setJti(randomUUID())
        .sign(await importJWK(key.privateJwk, key.alg));
    }

    async function call(
      method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
      tenant: Tenant | string,
      path: string,
      options: { token?: string | null; body?: unknown; headers?: Record<string, string> } = {},
    ): Promise<LightMyRequestResponse> {
      const slug = typeof tenant === 'string' ? tenant : tenant.slug;
      const token =
        options.token === undefined
          ? await mintToken(typeof tenant === 'string' ? system : tenant)
          : options.token;
      return app.inject({
        method,
        url: `/api/v1/tenants/${slug}${path}`,
        headers: { ...options.headers, ...(token === null ? {} : { authorization: `Bearer ${token}` }) },
        ...(options.body === undefined ? {} : { payload: options.body as object }),
      });
    }

    const inAlpha = <T>(fn: (tx: Queryable) => Promise<T>) => withTenant(orthid.db, alpha.id, fn);
    const count = (table: string) =>
      inAlpha(async (tx) =>
        Number((await tx.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`)).rows[0]!.n),
      );
    const latestAudit = () =>
      inAlpha(async (tx) => {
        const { rows } = await tx.query<{
          seq: string;
          action: string;
          actor: string;
          target: string | null;
        }>('SELECT seq, action, actor, target FROM audit_events ORDER BY seq DESC LIMIT 1');
        return rows[0]!;
      });

    before(async () => {
      orthid = await createTestOrthId(driver);
      system = await orthid.tenants.create({ slug: 'system', actor: 'test' });
      alpha = await orthid.tenants.create({ slug: 'alpha', actor: 'test' });
      beta = await orthid.tenants.create({ slug: 'beta', actor: 'test' });
      app = await buildServer(orthid);
    });
    after(async () => {
      await app?.close();
      await orthid?.close();
    });

    test('a request without a token gets 401 auth.unauthenticated with a Bearer challenge', async () => {
      const response = await call('GET', alpha, '/organisations', { token: null });
      assert.equal(response.statusCode, 401);
      assert.equal(problemOf(response).code, 'auth.unauthenticated');
      assert.match(String(response.headers['www-authenticate']), /^Bearer realm="orthid"/);
      const garbage = await call('GET', alpha, '/organisations', { token: 'not-a-jwt' });
      assert.equal(garbage.statusCode, 401);
      assert.match(String(garbage.headers['www-authenticate']), /error="invalid_token"/);
    });

    test('a client registered through the API shows its secret once and only a hash is stored', async () => {
      const created = await call('POST', alpha, '/clients', {
        body: {
          name: 'Billing',
          grantTypes: ['client_credentials'],
          resources: ['https://billing.alpha.test'],
        },
      });
      assert.equal(created.statusCode, 201, created.body);
      const client = created.json() as { clientId: string; clientSecret: string };
      assert.ok(client.clientSecret.length >= 43);
      const fetched = await call('GET', alpha, `/clients/${client.clientId}`);
      assert.equal(fetched.statusCode, 200);
      assert.equal('clientSecret' in (fetched.json() as object), false);
      const stored = await inAlpha((tx) =>
        tx.query<{ secret_hash: string }>('SELECT secret_hash FROM oidc_clients WHERE client_id = $1', [
          client.clientId,
        ]),
      );
      assert.notEqual(stored.rows[0]!.secret_hash, client.clientSecret);
      assert.equal((await latestAudit()).action, 'client.created');
      const bad = await call('POST', alpha, '/clients', { body: { name: 'x', grantTypes: ['implicit'] } });
      assert.equal(bad.statusCode, 400);
      // An API permission is not a client scope: the provider would refuse every token request.
      const before = await inAlpha((tx) => tx.query('SELECT client_id FROM oidc_clients'));
      const permission = await call('POST', alpha, '/clients', {
        body: { name: 'admin-scope', grantTypes: ['client_credentials'], scope: 'openid orthid:admin' },
      });
      assert.equal(permission.statusCode, 400, permission.body);
      assert.equal(problemOf(permission).code, 'request.invalid');
      assert.equal((permission.json() as { errors?: { field?: string } }).errors?.field, 'scope');
      assert.match((permission.json() as { detail: string }).detail, /orthid:admin/);
      const afterwards = await inAlpha((tx) => tx.query('SELECT client_id FROM oidc_clients'));
      assert.equal(afterwards.rowCount, before.rowCount, 'no client was registered');
      assert.equal((await call('DELETE', alpha, `/clients/${client.clientId}`)).statusCode, 204);
      assert.equal((await call('GET', alpha, `/clients/${client.clientId}`)).statusCode, 404);
    });

    test('a token without orthid:admin gets 403 auth.forbidden as problem+json', async () => {
      const token = await mintToken(alpha, { scope: 'orders:read' });
      const response = await call('GET', alpha, '/organisations', { token });
      assert.equal(response.statusCode, 403);
      assert.equal(problemOf(response).code, 'auth.forbidden');
      assert.match(String(response.headers['www-authenticate']), /error="insufficient_scope"/);
    });

    test("a token from tenant A cannot manage tenant B, and learns nothing about B's existence", async () => {
      const token = await mintToken(alpha);
      const response = await call('GET', beta, '/organisations', { token });
      assert.equal(response.statusCode, 403);
      assert.equal(problemOf(response).code, 'auth.forbidden');
      const missing = await call('GET', 'no-such-tenant', '/organisations', { token });
      assert.equal(missing.statusCode, 403);
    });

    test("a tenant's own admin token manages that tenant", async () => {
      const response = await call('GET', alpha, '/organisations', { token: await mintToken(alpha) });
      assert.equal(response.statusCode, 200);
      assert.deepEqual(Object.keys(response.json()).sort(), ['items', 'next']);
    });

    test('a system-tenant admin token can manage every tenant and is audited as acting from the system tenant', async () => {
      const token = await mintToken(system, { clientId: 'ops-bot' });
      const response = await call('POST', beta, '/organisations', {
        token,
        body: { name: 'Managed from system' },
      });
      assert.equal(response.statusCode, 201);
      const event = await withTenant(orthid.db, beta.id, async (tx) => {
        const { rows } = await tx.query<{ action: string; actor: string }>(
          'SELECT action, actor FROM audit_events ORDER BY seq DESC LIMIT 1',
        );
        return rows[0]!;
      });
      assert.deepEqual(event, { action: 'organisation.created', actor: 'client:ops-bot@system' });
      const unknown = await call('GET', 'no-such-tenant', '/organisations', { token });
      assert.equal(unknown.statusCode, 404);
      assert.equal(problemOf(unknown).code, 'tenant.not_found');
    });

    test('an expired token, a wrong audience, a forged issuer or a token that is not an access token gets 401', async () => {
      const cases = {
        expired: await mintToken(alpha, { expiresIn: -3600 }),
        wrongAudience: await mintToken(alpha, { audience: 'https://orders.example.test' }),
        signedByAnotherTenant: await mintToken(alpha, { signWith: beta }),
        notAnAccessToken: await mintToken(alpha, { typ: 'JWT' }),
      };
      for (const [name, token] of Object.entries(cases)) {
        const response = await call('GET', alpha, '/organisations', { token });
        assert.equal(response.statusCode, 401, name);
        assert.equal(problemOf(response).code, 'auth.unauthenticated', name);
        assert.match(
          String(response.headers['www-authenticate']),
          /^Bearer realm="orthid", error="invalid_token"/,
          name,
        );
      }
      const foreign = new SignJWT({ scope: ADMIN_PERMISSION })
        .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' })
        .setIssuer('https://elsewhere.test/t/alpha')
        .setAudience(adminResourceIndicator(orthid.config.publicUrl))
        .setExpirationTime('5m');
      const response = await call('GET', alpha, '/organisations', {
        token: await foreign.sign(new TextEncoder().encode('x'.repeat(32))),
      });
      assert.equal(response.statusCode, 401);
    });

    test("a token signed by a key rotated after the tenant's keys were cached verifies at once", async () => {
      const gamma = await orthid.tenants.create({ slug: 'gamma', actor: 'test' });
      const before = await mintToken(gamma);
      assert.equal((await call('GET', gamma, '/roles', { token: before })).statusCode, 200);
      await withTenant(orthid.db, gamma.id, async (tx) =>
        rotateSigningKey(tx, await orthid.tenantKeys.forTenant(tx, gamma.id), 'EdDSA', new Date(), 300),
      );
      const after = await mintToken(gamma);
      assert.notEqual(before.split('.')[0], after.split('.')[0], 'signed with the new key');
      assert.equal((await call('GET', gamma, '/roles', { token: after })).statusCode, 200);
      assert.equal(
        (await call('GET', gamma, '/roles', { token: before })).statusCode,
        200,
        'the retiring key still verifies',
      );
    });

    test('malformed bodies get 400 request.invalid with field-level detail and write nothing', async () => {
      const tables = ['organisations', 'roles', 'api_resources', 'permissions', 'users', 'audit_events'];
      const before = await Promise.all(tables.map(count));
      const resourceId = (await call('GET', alpha, '/resources')).json().items[0].id as string;
      const cases: [string, string, unknown, string][] = [
        ['POST', '/organisations', { name: 5 }, '/name'],
        ['POST', '/organisations', {}, 'name'],
        ['POST', '/organisations', { name: '' }, '/name'],
        ['POST', '/organisations', { name: 'Typo Ltd', nmae: 'Typo Ltd' }, ''],
        ['POST', '/organisations', ['North'], ''],
        ['POST', '/roles', { name: 'x'.repeat(201) }, '/name'],
        ['POST', '/resources', { indicator: 'not a uri', name: 'Orders' }, '/indicator'],
        ['POST', `/resources/${resourceId}/permissions`, { name: 'has space' }, '/name'],
        ['POST', '/users', { email: 'not-an-email' }, '/email'],
        ['PATCH', `/roles/${randomUUID()}`, {}, ''],
      ];
      for (const [method, path, body, field] of cases) {
        const response = await call(method as 'POST', alpha, path, { body });
        assert.equal(response.statusCode, 400, `${method} ${path} ${JSON.stringify(body)}`);
        const problem = problemOf(response);
        assert.equal(problem.code, 'request.invalid');
        assert.ok(
          problem.errors?.fields?.some((f) => f.path === field),
          `${path}: ${JSON.stringify(problem.errors)}`,
        );
      }
      const badJson = await app.inject({
        method: 'POST',
        url: `/api/v1/tenants/alpha/organisations`,
        headers: { authorization: `Bearer ${await mintToken(alpha)}`, 'content-type': 'application/json' },
        payload: '{"name":',
      });
      assert.equal(badJson.statusCode, 400);
      assert.equal(problemOf(badJson).code, 'request.invalid');
      const badQuery = await call('GET', alpha, '/organisations?limit=500');
      assert.equal(badQuery.statusCode, 400);
      assert.ok(problemOf(badQuery).errors?.fields?.some((f) => f.path === '/limit'));
      const badPath = await call('GET', alpha, '/organisations/not-a-uuid');
      assert.equal(badPath.statusCode, 400);
      assert.deepEqual(await Promise.all(tables.map(count)), before);
    });

    test('conflicts and unknown ids answer with their stable codes', async () => {
      assert.equal((await call('POST', alpha, '/roles', { body: { name: 'duplicate' } })).statusCode, 201);
      const taken = await call('POST', alpha, '/roles', { body: { name: 'duplicate' } });
      assert.equal(taken.statusCode, 409);
      assert.equal(problemOf(taken).code, 'role.name_taken');
      const missing = await call('GET', alpha, `/organisations/${randomUUID()}`);
      assert.equal(missing.statusCode, 404);
      assert.equal(problemOf(missing).code, 'organisation.not_found');
      const adminResource = (await call('GET', alpha, '/resources')).json().items[0];
      assert.equal(adminResource.indicator, adminResourceIndicator(orthid.config.publicUrl));
      const protectedDelete = await call('DELETE', alpha, `/resources/${adminResource.id}`);
      assert.equal(protectedDelete.statusCode, 409);
      assert.equal(problemOf(protectedDelete).code, 'api_resource.protected');
    });

    test('lists return every item exactly once across pages', async () => {
      for (let i = 0; i < 11; i++) {
        assert.equal(
          (await call('POST', alpha, '/organisations', { body: { name: `Paged ${i}` } })).statusCode,
          201,
        );
      }
      const total = await count('organisations');
      const collect = async (path: string, limit: number) => {
        const seen: string[] = [];
        let next: string | null = null;
        do {
          const query: string = `?limit=${limit}${next ? `&after=${encodeURIComponent(next)}` : ''}`;
          const response = await call('GET', alpha, `${path}${query}`);
          assert.equal(response.statusCode, 200);
          const page = response.json() as { items: { id: string }[]; next: string | null };
          assert.ok(page.items.length <= limit);
          seen.push(...page.items.map((item) => item.id));
          next = page.next;
        } while (next);
        return seen;
      };
      const organisations = await collect('/organisations', 4);
      assert.equal(organisations.length, total);
      assert.equal(new Set(organisations).size, total);
      const events = await collect('/audit-events', 5);
      assert.equal(events.length, await count('audit_events'));
      assert.equal(new Set(events).size, events.length);
      const firstPage = (await call('GET', alpha, '/audit-events?limit=3')).json().items as { seq: number }[];
      assert.deepEqual(
        firstPage.map((e) => e.seq),
        [...firstPage.map((e) => e.seq)].sort((a, b) => b - a),
      );
    });

    test('every mutation leaves an audit event naming the caller', async () => {
      const clientToken = await mintToken(alpha, { clientId: 'console' });
      const admin = await inAlpha((tx) =>
        orthid.users.create(tx, alpha.id, { email: 'admin@alpha.test', name: 'Alpha Admin' }, 'test'),
      );
      await ensureAdminUser(orthid.db, alpha.id, admin.id, orthid.config.publicUrl);
      const userToken = await mintToken(alpha, { clientId: 'console', sub: admin.id });
      await inAlpha((tx) =>
        tx.query(
          `INSERT INTO oidc_clients (tenant_id, client_id, name, metadata) VALUES ($1, 'billing-job', 'Billing job', '{}')`,
          [alpha.id],
        ),
      );
      const ids: Record<string, string> = {};
      const steps: [string, 'POST' | 'PUT' | 'PATCH' | 'DELETE', () => string, unknown, number, string][] = [
        ['user', 'POST', () => '/users', { email: 'ann@alpha.test', name: 'Ann' }, 201, 'user.created'],
        ['-', 'PATCH', () => `/users/${ids.user}`, { name: 'Ann Example' }, 200, 'user.updated'],
        ['-', 'POST', () => `/users/${ids.user}/disable`, undefined, 200, 'user.disabled'],
        ['-', 'POST', () => `/users/${ids.user}/enable`, undefined, 200, 'user.enabled'],
        ['org', 'POST', () => '/organisations', { name: 'Audited' }, 201, 'organisation.created'],
        [
          '-',
          'PATCH',
          () => `/organisations/${ids.org}`,
          { name: 'Audited Ltd' },
          200,
          'organisation.renamed',
        ],
        [
          'resource',
          'POST',
          () => '/resources',
          { indicator: 'https://orders.alpha.test', name: 'Orders' },
          201,
          'api_resource.created',
        ],
        [
          '-',
          'PATCH',
          () => `/resources/${ids.resource}`,
          { name: 'Orders API' },
          200,
          'api_resource.renamed',
        ],
        [
          'permission',
          'POST',
          () => `/resources/${ids.resource}/permissions`,
          { name: 'orders:read' },
          201,
          'permission.created',
        ],
        [
          '-',
          'PATCH',
          () => `/resources/${ids.resource}/permissions/${ids.permission}`,
          { description: 'Read orders' },
          200,
          'permission.updated',
        ],
        ['role', 'POST', () => '/roles', { name: 'reader' }, 201, 'role.created'],
        ['-', 'PATCH', () => `/roles/${ids.role}`, { description: 'Reads' }, 200, 'role.updated'],
        [
          '-',
          'PUT',
          () => `/roles/${ids.role}/permissions/${ids.permission}`,
          undefined,
          204,
          'role.permission_added',
        ],
        [
          'membership',
          'POST',
          () => `/organisations/${ids.org}/memberships`,
          { userId: '$user' },
          201,
          'membership.added',
        ],
        [
          '-',
          'PUT',
          () => `/memberships/${ids.membership}/roles/${ids.role}`,
          undefined,
          204,
          'membership.role_granted',
        ],
        ['-', 'PUT', () => `/clients/billing-job/roles/${ids.role}`, undefined, 204, 'client.role_granted'],
        [
          '-',
          'DELETE',
          () => `/clients/billing-job/roles/${ids.role}`,
          undefined,
          204,
          'client.role_revoked',
        ],
        [
          '-',
          'DELETE',
          () => `/memberships/${ids.membership}/roles/${ids.role}`,
          undefined,
          204,
          'membership.role_revoked',
        ],
        ['-', 'DELETE', () => `/memberships/${ids.membership}`, undefined, 204, 'membership.removed'],
        [
          '-',
          'DELETE',
          () => `/roles/${ids.role}/permissions/${ids.permission}`,
          undefined,
          204,
          'role.permission_removed',
        ],
        ['-', 'DELETE', () => `/roles/${ids.role}`, undefined, 204, 'role.deleted'],
        [
          '-',
          'DELETE',
          () => `/resources/${ids.resource}/permissions/${ids.permission}`,
          undefined,
          204,
          'permission.deleted',
        ],
        ['-', 'DELETE', () => `/resources/${ids.resource}`, undefined, 204, 'api_resource.deleted'],
        ['-', 'DELETE', () => `/organisations/${ids.org}`, undefined, 204, 'organisation.deleted'],
        ['-', 'DELETE', () => `/users/${ids.user}/sessions`, undefined, 200, 'session.revoked_all'],
        ['-', 'DELETE', () => `/users/${ids.user}`, undefined, 204, 'user.deleted'],
      ];
      for (const [i, [save, method, path, body, status, action]] of steps.entries()) {
        const before = await latestAudit();
        const token = i % 2 === 0 ? clientToken : userToken;
        const payload = body && JSON.parse(JSON.stringify(body).replace('"$user"', `"${ids.user}"`));
        // A change to a role names the version it was made against.
        const changesRole =
          path().startsWith('/roles/') && (method !== 'DELETE' || path().includes('/permissions/'));
        const headers: Record<string, string> = changesRole
          ? { 'if-match': String((await call('GET', alpha, `/roles/${ids.role}`)).headers.etag) }
          : {};
        const response = await call(method, alpha, path(), {
          token,
          headers,
          ...(payload ? { body: payload } : {}),
        });
        assert.equal(response.statusCode, status, `${method} ${path()}: ${response.body}`);
        if (status === 204) assert.equal(response.body, '');
        if (save !== '-') ids[save] = response.json().id;
        const event = await latestAudit();
        assert.equal(Number(event.seq), Number(before.seq) + 1, action);
        assert.equal(event.action, action);
        assert.equal(event.actor, i % 2 === 0 ? 'client:console' : `user:${admin.id}`);
      }
    });

    test("a user's sessions can be listed, one revoked, or all revoked with every grant and token", async () => {
      const user = (await call('POST', alpha, '/users', { body: { email: 'bob@alpha.test' } })).json() as {
        id: string;
      };
      const now = Math.floor(Date.now() / 1000);
      const session = (uid: string, grantId: string) => ({
        uid,
        loginTs: now - 60,
        amr: ['pwd'],
        accountId: user.id,
        authorizations: { app: { sid: randomUUID(), grantId } },
      });
      await inAlpha(async (tx) => {
        const put = (
          model: string,
          id: string,
          payload: object,
          grantId: string | null,
          uid: string | null,
        ) =>
          tx.query(
            `INSERT INTO oidc_payloads (tenant_id, model, id, payload, grant_id, uid, account_id, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, now() + interval '1 hour')`,
            [alpha.id, model, id, JSON.stringify(payload), grantId, uid, user.id],
          );
        await put('Session', 'cookie-1', session('uid-1', 'grant-1'), null, 'uid-1');
        await put('Session', 'cookie-2', session('uid-2', 'grant-2'), null, 'uid-2');
        await put('Session', 'cookie-3', session('uid-3', 'grant-3'), null, 'uid-3');
        for (const n of [1, 2, 3]) {
          await put('Grant', `grant-${n}`, { accountId: user.id }, null, null);
          await put('AccessToken', `token-${n}`, { accountId: user.id }, `grant-${n}`, null);
        }
      });
      const listed = await call('GET', alpha, `/users/${user.id}/sessions?limit=2`);
      assert.equal(listed.statusCode, 200);
      const page = listed.json() as {
        items: { uid: string; clientIds: string[]; amr: string[] }[];
        next: string;
      };
      assert.deepEqual(
        page.items.map((s) => s.uid),
        ['uid-1', 'uid-2'],
      );
      assert.deepEqual(page.items[0]!.clientIds, ['app']);
      assert.ok(!listed.body.includes('cookie-1'), 'a session cookie value is never shown');
      assert.equal(page.next, 'uid-2');

      const revokeOne = await call('DELETE', alpha, `/users/${user.id}/sessions/uid-1`);
      assert.equal(revokeOne.statusCode, 204);
      const remaining = () =>
        inAlpha(async (tx) =>
          (await tx.query<{ id: string }>('SELECT id FROM oidc_payloads ORDER BY id')).rows.map((r) => r.id),
        );
      assert.deepEqual(await remaining(), [
        'cookie-2',
        'cookie-3',
        'grant-2',
        'grant-3',
        'token-2',
        'token-3',
      ]);
      const again = await call('DELETE', alpha, `/users/${user.id}/sessions/uid-1`);
      assert.equal(again.statusCode, 404);
      assert.equal(problemOf(again).code, 'session.not_found');

      const everywhere = await call('DELETE', alpha, `/users/${user.id}/sessions`);
      assert.equal(everywhere.statusCode, 200);
      assert.deepEqual(everywhere.json(), { sessions: 2, grants: 2 });
      assert.deepEqual(await remaining(), []);
      assert.equal((await latestAudit()).action, 'session.revoked_all');
    });

    test('effective grants through the API match what token claims would carry', async () => {
      const created = async (path: string, body: unknown) =>
        (await call('POST', alpha, path, { body })).json().id as string;
      const user = await created('/users', { email: 'carol@alpha.test' });
      const org = await created('/organisations', { name: 'Grants Org' });
      const resource = await created('/resources', {
        indicator: 'https://grants.alpha.test',
        name: 'Grants',
      });
      const permission = await created(`/resources/${resource}/permissions`, { name: 'things:read' });
      const role = await created('/roles', { name: 'things-reader' });
      const version = String((await call('GET', alpha, `/roles/${role}`)).headers.etag);
      await call('PUT', alpha, `/roles/${role}/permissions/${permission}`, {
        headers: { 'if-match': version },
      });
      const membership = await created(`/organisations/${org}/memberships`, { userId: user });
      await call('PUT', alpha, `/memberships/${membership}/roles/${role}`);
      const response = await call(
        'GET',
        alpha,
        `/users/${user}/grants?resource=${encodeURIComponent('https://grants.alpha.test')}&organisationId=${org}`,
      );
      assert.equal(response.statusCode, 200);
      assert.deepEqual(response.json(), {
        permissions: ['things:read'],
        roles: ['things-reader'],
        organisationId: org,
      });
    });

    test('GET /api/openapi.json is an OpenAPI document with paths for each resource', async () => {
      const response = await app.inject({ method: 'GET', url: '/api/openapi.json' });
      assert.equal(response.statusCode, 200);
      const document = JSON.parse(response.body) as {
        openapi: string;
        paths: Record<string, Record<string, unknown>>;
      };
      assert.match(document.openapi, /^3\./);
      const prefix = '/api/v1/tenants/{tenant}';
      for (const path of [
        '/users',
        '/users/{userId}',
        '/organisations',
        '/organisations/{organisationId}/memberships',
        '/memberships/{membershipId}/roles/{roleId}',
        '/resources',
        '/resources/{resourceId}/permissions',
        '/roles',
        '/roles/{roleId}/permissions/{permissionId}',
        '/clients/{clientId}/roles/{roleId}',
        '/users/{userId}/sessions',
        '/audit-events',
      ]) {
        assert.ok(document.paths[`${prefix}${path}`], `missing ${path}`);
      }
      assert.ok(
        Object.keys(document.paths).every((p) => p.startsWith('/api/v1/')),
        'only the admin API is documented',
      );
    });
  });
}
