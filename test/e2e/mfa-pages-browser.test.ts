// The second-factor pages in real Chromium with JavaScript off: enrolment (the QR code renders
// under the pages' strict CSP), the recovery codes, and the code step of a later sign-in.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import * as oidc from 'openid-client';
import type { Browser, Page } from 'playwright-core';
import { TOTP_PERIOD_SECONDS, totpCode, totpStep } from '../../src/identity/totp.js';
import { configureMfaPolicy } from '../../src/ops/mfa-policy.js';
import { buildServer } from '../../src/server/app.js';
import { withTenant } from '../../src/storage/db/database.js';
import { launchChromium } from '../helpers/chromium.js';
import { createTestOrthId, type TestOrthId } from '../helpers/orthid.js';
import { freePort } from '../helpers/postgres.js';

const PASSWORD = 'a phone in one hand, a passphrase in mind';

describe('second-factor pages in Chromium', { timeout: 180_000 }, () => {
  let app: TestOrthId;
  let server: FastifyInstance;
  let browser: Browser;
  let config: oidc.Configuration;
  let redirectUri: string;

  before(async () => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    redirectUri = `${base}/callback`;
    app = await createTestOrthId('pglite', { env: { ORTHID_PUBLIC_URL: base } });
    server = await buildServer(app);
    await server.listen({ host: '127.0.0.1', port });
    const tenant = await app.tenants.create({ slug: 'acme', displayName: 'Acme Corp', actor: 'test' });
    const client = await withTenant(app.db, tenant.id, async (tx) => {
      await app.users.create(tx, tenant.id, { email: 'pat@acme.test', password: PASSWORD }, 'test');
      return app.clients.create(
        tx,
        tenant.id,
        {
          name: 'Acme Portal',
          grantTypes: ['authorization_code'],
          redirectUris: [redirectUri],
          firstParty: true,
        },
        'test',
      );
    });
    await configureMfaPolicy(app, tenant, { mode: 'required' }, 'test');
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

  async function signIn(page: Page) {
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: 'openid email',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    await page.goto(url.href);
    await page.fill('#email', 'pat@acme.test');
    await page.fill('#password', PASSWORD);
    await page.click('button[type=submit]');
    return verifier;
  }

  const exchange = async (page: Page, verifier: string) =>
    (
      await oidc.authorizationCodeGrant(config, new URL(page.url()), { pkceCodeVerifier: verifier })
    ).claims()!;

  test('a person enrols an authenticator app, keeps the recovery codes and later signs in with a code', async () => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    const refused: string[] = [];
    page.on('console', (message) => {
      if (/Content Security Policy|Refused to/.test(message.text())) refused.push(message.text());
    });
    const verifier = await signIn(page);
    assert.equal(await page.textContent('h1'), 'Set up your authenticator app');
    const qr = page.locator('img[alt="QR code for your authenticator app"]');
    assert.match((await qr.getAttribute('src')) ?? '', /^data:image\/svg\+xml;base64,/);
    const box = await qr.boundingBox();
    assert.ok(box && box.width > 100 && box.height > 100, 'the QR code is laid out');
    assert.equal(await page.getAttribute('#code', 'autocomplete'), 'one-time-code');
    assert.equal(await page.getAttribute('#code', 'inputmode'), 'numeric');
    const secret = ((await page.textContent('#secret')) ?? '').replace(/\s/g, '');
    const enrolledAt = new Date();

    await page.fill('#code', '000000' === totpCode(secret, enrolledAt) ? '111111' : '000000');
    await page.click('button:has-text("Turn on two-step verification")');
    assert.match((await page.textContent('[role=alert]')) ?? '', /not correct or has expired/);
    await page.fill('#code', totpCode(secret, enrolledAt));
    await page.click('button:has-text("Turn on two-step verification")');
    assert.equal(await page.textContent('h1'), 'Save your recovery codes');
    assert.equal(await page.locator('#recovery-codes li').count(), 10);
    const landed = page.waitForURL((u) => u.href.startsWith(redirectUri));
    await page.click('button:has-text("I have saved them, continue")');
    await landed;
    assert.deepEqual((await exchange(page, verifier)).amr, ['pwd', 'otp', 'mfa']);
    assert.deepEqual(refused, [], 'nothing on the pages was refused by their CSP');
    await context.close();

    const later = await (await browser.newContext({ javaScriptEnabled: false })).newPage();
    const again = await signIn(later);
    assert.equal(await later.textContent('h1'), 'Two-step verification');
    // The next step's code: accepted now (one step of drift) or later (current), never a replay.
    const next = (totpStep(enrolledAt) + 1) * TOTP_PERIOD_SECONDS * 1000;
    await later.fill('#code', totpCode(secret, new Date(Math.max(Date.now(), next))));
    const done = later.waitForURL((u) => u.href.startsWith(redirectUri));
    await later.click('button:has-text("Verify")');
    await done;
    assert.deepEqual((await exchange(later, again)).amr, ['pwd', 'otp', 'mfa']);
  });
});
