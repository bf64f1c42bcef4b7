// "Forgot password?" in real Chromium, in English and German: from the sign-in page's link to the
// mail read from a real SMTP server, the new password and a sign-in with it. Each page is checked
// against axe-core's rules (no serious or critical violation) and kept as a screenshot.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import * as oidc from 'openid-client';
import type { Browser, Page } from 'playwright-core';
import { buildServer } from '../../src/server/app.js';
import { withTenant } from '../../src/storage/db/database.js';
import { launchChromium } from '../helpers/chromium.js';
import { createTestOrthId, type TestOrthId } from '../helpers/orthid.js';
import { auditPage, testOutputDir } from '../helpers/page-audit.js';
import { freePort } from '../helpers/postgres.js';
import { startTestSmtpServer, type TestSmtpServer } from '../helpers/smtp-server.js';

const OLD = 'correct horse battery staple 42';
const NEW = 'a brand new passphrase of many words';
/** Where the screenshots go, for a person to look at. */
const OUTPUT = testOutputDir('password-reset-browser');

describe('password reset in Chromium', { timeout: 180_000 }, () => {
  let smtp: TestSmtpServer;
  let app: TestOrthId;
  let server: FastifyInstance;
  let browser: Browser;
  let base: string;
  let config: oidc.Configuration;
  const redirectUri = () => `${base}/callback`;

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
        ORTHID_MAIL_FROM: 'OrthID <no-reply@orthid.test>',
      },
    });
    server = await buildServer(app);
    await server.listen({ host: '127.0.0.1', port });
    const tenant = await app.tenants.create({ slug: 'acme', displayName: 'Acme Corp', actor: 'test' });
    const client = await withTenant(app.db, tenant.id, async (tx) => {
      for (const name of ['en', 'de']) {
        await app.users.create(tx, tenant.id, { email: `${name}@acme.test`, password: OLD }, 'test');
      }
      return app.clients.create(
        tx,
        tenant.id,
        {
          name: 'Acme Portal',
          grantTypes: ['authorization_code'],
          redirectUris: [redirectUri()],
          firstParty: true,
        },
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
    await smtp?.close();
  });

  const check = (page: Page, name: string) => auditPage(browser, page, OUTPUT, name);

  for (const [tag, words] of [
    [
      'en',
      {
        forgot: 'Forgot password?',
        heading: 'Forgot your password?',
        sent: 'Check your email',
        choose: 'Choose a new password',
        done: 'Your password was changed',
        signIn: 'Sign in',
      },
    ],
    [
      'de',
      {
        forgot: 'Passwort vergessen?',
        heading: 'Passwort vergessen?',
        sent: 'Prüfen Sie Ihre E-Mails',
        choose: 'Neues Passwort wählen',
        done: 'Ihr Passwort wurde geändert',
        signIn: 'Anmelden',
      },
    ],
  ] as const) {
    test(`a person resets their password and signs in with the new one (${tag})`, async (t) => {
      const context = await browser.newContext({
        locale: tag,
        extraHTTPHeaders: { 'accept-language': tag },
      });
      const page = await context.newPage();
      const email = `${tag}@acme.test`;
      const signInUrl = oidc.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri(),
        scope: 'openid email',
        code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
        code_challenge_method: 'S256',
      });
      await page.goto(signInUrl.href);
      await check(page, `${tag}-1-sign-in`);
      await page.click(`text=${words.forgot}`);
      assert.equal(await page.textContent('h1'), words.heading);
      await check(page, `${tag}-2-forgot`);

      await page.fill('#email', email);
      await page.click('button[type=submit]');
      assert.equal(await page.textContent('h1'), words.sent);
      await check(page, `${tag}-3-sent`);

      const from = smtp.received.length;
      await app.mailWorker.runOnce();
      const mail = smtp.received.slice(from).find((m) => m.rcptTo.includes(email));
      assert.ok(mail, 'the reset mail arrived');
      const link = /(http:\/\/\S+\/password\/reset\?token=[A-Za-z0-9_-]+)/.exec(mail.parsed.text ?? '')?.[1];
      assert.ok(link);

      await page.goto(link);
      assert.equal(await page.textContent('h1'), words.choose);
      await check(page, `${tag}-4-new-password`);
      await page.fill('#password', NEW);
      await page.fill('#confirm', `${NEW} typo`);
      await page.click('button[type=submit]');
      assert.equal(await page.getAttribute('[role=alert]', 'data-code'), 'account.password_mismatch');
      await check(page, `${tag}-5-mismatch`);
      await page.fill('#password', NEW);
      await page.fill('#confirm', NEW);
      await page.click('button[type=submit]');
      assert.equal(await page.textContent('h1'), words.done);
      await check(page, `${tag}-6-done`);

      await page.goto(link);
      assert.equal(await page.getAttribute('[role=alert]', 'data-code'), 'account.link_used');
      await check(page, `${tag}-7-link-used`);

      await page.goto(signInUrl.href);
      await page.fill('#email', email);
      await page.fill('#password', NEW);
      const [landed] = await Promise.all([
        page.waitForRequest((request) => request.url().startsWith(redirectUri())),
        page.click('button[type=submit]'),
      ]);
      assert.ok(new URL(landed.url()).searchParams.get('code'), 'signed in with the new password');
      t.diagnostic(`screenshots in ${OUTPUT}`);
      await context.close();
    });
  }
});
