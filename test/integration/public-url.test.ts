import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import * as oidc from 'openid-client';
import { buildServer } from '../../src/server/app.js';
import { HSTS } from '../../src/server/plugins/public-origin.js';
import { withTenant } from '../../src/storage/db/database.js';
import { readForm } from '../helpers/cookie-browser.js';
import { createTestOrthId, DRIVERS, type DriverName, type TestOrthId } from '../helpers/orthid.js';

const REDIRECT_URI = 'https://app.example.test/callback';
const PASSWORD = 'a long and unguessable passphrase 42';

/** What an attacker (or a confused proxy) puts in front of the request. */
const SPOOFED = {
  host: 'evil.example',
  'x-forwarded-host': 'evil-forwarded.example',
  'x-forwarded-proto': 'http',
  'x-forwarded-port': '8443',
};

function assertNoSpoofedHost(text: string): void {
  assert.doesNotMatch(text, /evil/, 'a URL was built from a request header');
}

/** Cookies a response sets, as name → the Set-Cookie header. */
function setCookies(response: LightMyRequestResponse): Map<string, string> {
  const raw = response.headers['set-cookie'];
  const headers = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
  return new Map(headers.map((h) => [h.slice(0, h.indexOf('=')), h]));
}

function cookieHeader(...responses: LightMyRequestResponse[]): string {
  return responses
    .flatMap((r) => [...setCookies(r).values()])
    .map((h) => h.split(';')[0]!)
    .join('; ');
}

const cases: { driver: DriverName; trustProxy: string; prefix: string }[] = [
  ...DRIVERS.map((driver) => ({ driver, trustProxy: 'false', prefix: '' })),
  // Believing the proxy must change only the client address, never a URL.
  { driver: 'pglite', trustProxy: 'true', prefix: '' },
  // A proxy that serves OrthID under a path and strips it: URLs keep the public path.
  { driver: 'pglite', trustProxy: 'false', prefix: '/id' },
];

for (const { driver, trustProxy, prefix } of cases) {
  const PUBLIC_URL = `https://id.example.test${prefix}`;
  const ISSUER = `${PUBLIC_URL}/t/acme`;
  describe(`URLs come from ORTHID_PUBLIC_URL=${PUBLIC_URL}, whatever Host or X-Forwarded-* say (${driver}, ORTHID_TRUST_PROXY=${trustProxy})`, () => {
    let orthid: TestOrthId;
    let app: FastifyInstance;
    let client: { clientId: string; clientSecret: string };

    before(async () => {
      orthid = await createTestOrthId(driver, {
        env: { ORTHID_PUBLIC_URL: PUBLIC_URL, ORTHID_TRUST_PROXY: trustProxy },
      });
      const tenant = await orthid.tenants.create({ slug: 'acme', actor: 'test' });
      await withTenant(orthid.db, tenant.id, async (tx) => {
        await orthid.users.create(tx, tenant.id, { email: 'ann@acme.test', password: PASSWORD }, 'test');
        const created = await orthid.clients.create(
          tx,
          tenant.id,
          { name: 'Acme Web', grantTypes: ['authorization_code'], redirectUris: [REDIRECT_URI] },
          'test',
        );
        client = { clientId: created.clientId, clientSecret: created.clientSecret! };
        await orthid.tenants.setSettings(tx, tenant.id, { brandColour: '#1d4ed8' });
      });
      app = await buildServer(orthid);
    });
    after(async () => {
      await app?.close();
      await orthid?.close();
    });

    test('discovery names the configured endpoints to a request for another host', async () => {
      const response = await app.inject({
        url: '/t/acme/.well-known/openid-configuration',
        headers: SPOOFED,
      });
      assert.equal(response.statusCode, 200);
      const document = response.json() as Record<string, unknown>;
      assert.equal(document.issuer, ISSUER);
      const urls = Object.entries(document).filter(([, v]) => typeof v === 'string' && /^https?:/.test(v));
      assert.ok(urls.length >= 7, `only ${urls.length} URLs in discovery`);
      for (const [name, url] of urls) assert.ok(String(url).startsWith(`${ISSUER}/`) || url === ISSUER, name);
      assertNoSpoofedHost(response.body);
      assert.equal(response.headers['strict-transport-security'], HSTS);
    });

    test('the authorization request sends the browser to the hosted page under the issuer, and the page posts there', async () => {
      const verifier = oidc.randomPKCECodeVerifier();
      const query = new URLSearchParams({
        client_id: client.clientId,
        response_type: 'code',
        scope: 'openid',
        redirect_uri: REDIRECT_URI,
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state: 'xyz',
      });
      const authorize = await app.inject({ url: `/t/acme/auth?${query}`, headers: SPOOFED });
      assert.equal(authorize.statusCode, 303);
      const location = String(authorize.headers.location);
      assert.match(location, new RegExp(`^${prefix}/t/acme/interaction/[A-Za-z0-9_-]+$`));
      // Cookies are Secure because the public URL is https, though X-Forwarded-Proto said http.
      const interactionCookie = setCookies(authorize).get('_interaction');
      assert.ok(interactionCookie, 'the interaction cookie is set');
      assert.match(interactionCookie, /; secure/i);
      assert.match(interactionCookie, new RegExp(`; path=${location};`));

      // The proxy strips the public path before the request reaches OrthID.
      const page = await app.inject({
        url: location.slice(prefix.length),
        headers: { ...SPOOFED, cookie: cookieHeader(authorize) },
      });
      assert.equal(page.statusCode, 200);
      assertNoSpoofedHost(page.body);
      const form = readForm(page.body);
      assert.equal(form.action, `${location}/login`);
      assert.equal(page.headers['strict-transport-security'], HSTS);

      const posted = await app.inject({
        method: 'POST',
        url: form.action.slice(prefix.length),
        headers: {
          ...SPOOFED,
          cookie: cookieHeader(authorize),
          'content-type': 'application/x-www-form-urlencoded',
        },
        payload: new URLSearchParams({
          ...form.fields,
          email: 'ann@acme.test',
          password: PASSWORD,
        }).toString(),
      });
      assert.equal(posted.statusCode, 303);
      // The provider's resume URL was built when the authorization request came in.
      assert.match(String(posted.headers.location), new RegExp(`^${ISSUER}/auth/[A-Za-z0-9_-]+$`));
    });

    test("the tenant's stylesheet on every page is under the issuer path", async () => {
      for (const path of ['/t/acme/password/forgot', '/t/acme/account/signed-out']) {
        const page = await app.inject({ url: path, headers: SPOOFED });
        assert.equal(page.statusCode, 200, path);
        assert.match(
          page.body,
          new RegExp(`<link rel="stylesheet" href="${prefix}/t/acme/branding\\.css\\?v=`),
          path,
        );
      }
    });

    test('a Host other than the public one is served (probes and local tools use addresses), never reflected', async () => {
      const jwks = await app.inject({ url: '/t/acme/jwks', headers: { host: '10.1.2.3:3000' } });
      assert.equal(jwks.statusCode, 200);
      const missing = await app.inject({ url: '/nothing-here', headers: SPOOFED });
      assert.equal(missing.statusCode, 404);
      assertNoSpoofedHost(missing.body);
      assert.equal(missing.headers['strict-transport-security'], HSTS);
    });
  });
}

describe('an http public URL (development) sends no HSTS', () => {
  let orthid: TestOrthId;
  let app: FastifyInstance;

  before(async () => {
    orthid = await createTestOrthId('pglite', { env: { ORTHID_PUBLIC_URL: 'http://localhost:3000' } });
    await orthid.tenants.create({ slug: 'acme', actor: 'test' });
    app = await buildServer(orthid);
  });
  after(async () => {
    await app?.close();
    await orthid?.close();
  });

  test('discovery is answered without Strict-Transport-Security, with the configured URLs', async () => {
    const response = await app.inject({ url: '/t/acme/.well-known/openid-configuration', headers: SPOOFED });
    assert.equal(response.headers['strict-transport-security'], undefined);
    assert.equal(
      (response.json() as { token_endpoint: string }).token_endpoint,
      'http://localhost:3000/t/acme/token',
    );
  });
});
