import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import * as oidc from 'openid-client';
import type { Browser } from 'playwright-core';
import { buildServer } from '../../src/server/app.js';
import { withTenant } from '../../src/storage/db/database.js';
import { launchChromium } from '../helpers/chromium.js';
import { createTestOrthId, type TestOrthId } from '../helpers/orthid.js';
import { freePort } from '../helpers/postgres.js';

const PASSWORD = 'signed in by a real browser, twice over';

/** The hosted pages in real Chromium: what a person sees and clicks, without any JavaScript of ours. */
describe('hosted sign-in and consent pages in Chromium', () => {
  let app: TestOrthId;
  let server: FastifyInstance;
  let browser: Browser;
  let base: string;
  let config: oidc.Configuration;
  let redirectUri: string;

  before(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    redirectUri = `${base}/callback`;
    app = await createTestOrthId('pglite', { env: { ORTHID_PUBLIC_URL: base } });
    server = await buildServer(app);
    await server.listen({ host: '127.0.0.1', port });
    const tenant = await app.tenants.create({ slug: 'acme', displayName: 'Acme Corp', actor: 'test' });
    const client = await withTenant(app.db, tenant.id, async (tx) => {
      await app.users.create(
        tx,
        tenant.id,
        { email: 'pat@acme.test', name: 'Pat', password: PASSWORD },
        'test',
      );
      return app.clients.create(
        tx,
        tenant.id,
        { name: 'Acme Portal', grantTypes: ['authorization_code'], redirectUris: [redirectUri] },
        'test',
      );
    });
    config = await oidc.discovery(
      new URL(`${base}/t/acme`),
      client.clientId,
      client.clientSecret,
      undefined,
      {
        execute: [oidc.allowInsecureRequests],
      },
    );
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    await app?.close();
  });

  test('a person signs in, sees the generic error for a wrong password, consents, and lands on the app with a code', async () => {
    const page = await browser.newPage({ javaScriptEnabled: false });
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: 'openid email profile',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    const violations: string[] = [];
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
    });
    const response = await page.goto(url.href);
    assert.equal(await page.textContent('h1'), 'Sign in');
    // The page's one inline stylesheet is allowed by its hash, not by 'unsafe-inline': it applies,
    // and nothing the browser was asked to load was refused.
    assert.doesNotMatch(response!.headers()['content-security-policy'] ?? '', /unsafe-inline/);
    assert.equal(
      await page.evaluate("getComputedStyle(document.querySelector('main')).backgroundColor"),
      'rgb(255, 255, 255)',
    );
    assert.deepEqual(violations, []);
    assert.match((await page.textContent('p.sub')) ?? '', /Acme Portal/);

    await page.fill('#email', 'pat@acme.test');
    await page.fill('#password', 'not my password at all');
    await page.click('button[type=submit]');
    assert.equal(await page.textContent('[role=alert]'), 'The email or password is incorrect.');
    assert.equal(await page.inputValue('#email'), 'pat@acme.test');

    await page.fill('#password', PASSWORD);
    await page.click('button[type=submit]');
    assert.match((await page.textContent('h1')) ?? '', /Allow Acme Portal\?/);
    assert.match((await page.textContent('ul.scopes')) ?? '', /See your email address/);

    const landed = page.waitForURL((u) => u.href.startsWith(redirectUri));
    await page.click('button:has-text("Allow")');
    await landed;
    const tokens = await oidc.authorizationCodeGrant(config, new URL(page.url()), {
      pkceCodeVerifier: verifier,
    });
    const info = await oidc.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub);
    assert.equal(info.email, 'pat@acme.test');
  });
});
