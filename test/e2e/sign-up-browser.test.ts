// Sign-up in real Chromium without JavaScript, in English and German: the sign-in page's link, the
// form, "check your mail", the code read from a real SMTP server, the verified page, and sign-in
// to the application; each page checked by axe-core (no serious or critical violations) and photographed.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import * as oidc from 'openid-client';
import type { Browser, Page } from 'playwright-core';
import { runOperation } from '../../src/ops/operations.js';
import { buildServer } from '../../src/server/app.js';
import { withTenant } from '../../src/storage/db/database.js';
import { launchChromium } from '../helpers/chromium.js';
import { createTestOrthId, type TestOrthId } from '../helpers/orthid.js';
import { auditPage, testOutputDir } from '../helpers/page-audit.js';
import { freePort } from '../helpers/postgres.js';
import { startTestSmtpServer, type TestSmtpServer } from '../helpers/smtp-server.js';

const PASSWORD = 'a passphrase typed into a real browser';
const OUTPUT = testOutputDir('sign-up-browser');

describe('hosted sign-up in Chromium, in two languages', { timeout: 240_000 }, () => {
  let smtp: TestSmtpServer;
  let app: TestOrthId;
  let server: FastifyInstance;
  let browser: Browser;
  let base: string;
  let config: oidc.Configuration;

  before(async () => {
    smtp = await startTestSmtpServer();
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    app = await createTestOrthId('pglite', {
      env: {
        ORTHID_PUBLIC_URL: base,
        ORTHID_SMTP_URL: `smtp://${smtp.user}@127.0.0.1:${smtp.port}`,
        ORTHID_SMTP_PASSWORD_FILE: smtp.passwordFile,
        ORTHID_SMTP_CA_FILE: smtp.caFile,
      },
    });
    server = await buildServer(app);
    await server.listen({ host: '127.0.0.1', port });
    const tenant = await app.tenants.create({ slug: 'acme', displayName: 'Acme Corp', actor: 'test' });
    await runOperation(app, 'tenant.configure', { slug: 'acme', signUp: 'on' });
    app.oidc.invalidate(tenant.id);
    const client = await withTenant(app.db, tenant.id, (tx) =>
      app.clients.create(
        tx,
        tenant.id,
        { name: 'Acme Portal', grantTypes: ['authorization_code'], redirectUris: [`${base}/callback`] },
        'test',
      ),
    );
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
    await smtp?.close();
  });

  const accessible = (page: Page, locale: string, name: string) =>
    auditPage(browser, page, OUTPUT, `${locale}-${name}`);

  for (const [locale, words] of [
    [
      'en',
      {
        signUp: 'Create an account',
        check: 'Check your mail',
        verified: 'Your address is verified',
        mail: 'Verify my address',
      },
    ],
    [
      'de',
      {
        signUp: 'Konto erstellen',
        check: 'Sehen Sie in Ihr Postfach',
        verified: 'Ihre Adresse ist bestätigt',
        mail: 'Meine Adresse bestätigen',
      },
    ],
  ] as const) {
    test(`a person signs up, types the mailed code and signs in (${locale})`, async () => {
      const context = await browser.newContext({ javaScriptEnabled: false, locale });
      const page = await context.newPage();
      const email = `person.${locale}@acme.test`;
      const verifier = oidc.randomPKCECodeVerifier();
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: `${base}/callback`,
        scope: 'openid email',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
      });
      await page.goto(url.href);
      await accessible(page, locale, 'sign-in');
      await page.click(`a:has-text("${words.signUp}")`);
      assert.equal(await page.textContent('h1'), words.signUp);
      await accessible(page, locale, 'sign-up');
      await page.fill('#name', 'Pat Example');
      await page.fill('#email', email);
      await page.fill('#password', PASSWORD);
      await page.click('button[type=submit]');
      assert.equal(await page.textContent('h1'), words.check);
      await accessible(page, locale, 'check-mail');

      await app.mailWorker.runOnce();
      const mail = smtp.received.find((m) => m.rcptTo.includes(email));
      assert.ok(mail);
      assert.ok((mail.parsed.text ?? '').includes(words.mail), 'the mail is in the page language');
      const code = /^(\d{6})$/m.exec(mail.parsed.text ?? '')?.[1];
      assert.ok(code);
      await page.fill('#code', code);
      await page.click('button[type=submit]:not(.secondary)');
      assert.equal(await page.textContent('h1'), words.verified);
      await accessible(page, locale, 'verified');

      await page.click('p.links a');
      await page.fill('#email', email);
      await page.fill('#password', PASSWORD);
      await page.click('button[type=submit]');
      const landed = page.waitForURL((u) => u.href.startsWith(`${base}/callback`));
      await page.click('button[type=submit]:not(.secondary)');
      await landed;
      const tokens = await oidc.authorizationCodeGrant(config, new URL(page.url()), {
        pkceCodeVerifier: verifier,
      });
      assert.equal(tokens.claims()?.email_verified, true);
      await context.close();
    });
  }
});
