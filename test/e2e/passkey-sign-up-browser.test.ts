// Sign-up with a passkey in real Chromium with its virtual authenticator (CDP WebAuthn), in
// English and German: the sign-up page's passkey link (shown by the script only where WebAuthn
// works), name and address, the code read from a real SMTP server, the passkey created, the
// recovery codes, an ID token; then a passwordless sign-in with that passkey on another device
// and a second token. Every new page checked by axe-core and photographed.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext, CDPSession, Page } from 'playwright-core';
import { runOperation } from '../../src/ops/operations.js';
import { buildServer } from '../../src/server/app.js';
import { withTenant } from '../../src/storage/db/database.js';
import { launchChromium } from '../helpers/chromium.js';
import { createTestOrthId, type TestOrthId } from '../helpers/orthid.js';
import { auditPage, testOutputDir } from '../helpers/page-audit.js';
import { freePort } from '../helpers/postgres.js';
import { startTestSmtpServer, type TestSmtpServer } from '../helpers/smtp-server.js';

const OUTPUT = testOutputDir('passkey-sign-up-browser');

/** Makes the page's browser one without conditional mediation (no passkey autofill). */
const NO_AUTOFILL =
  "Object.defineProperty(PublicKeyCredential, 'isConditionalMediationAvailable', { value: async () => false });";

interface Device {
  context: BrowserContext;
  page: Page;
  cdp: CDPSession;
  authenticatorId: string;
}

/**
 * The public URL is http://localhost:<port>: WebAuthn needs a secure context and a domain as RP
 * ID, and localhost is both.
 */
describe('sign-up with a passkey in Chromium, in two languages', { timeout: 300_000 }, () => {
  let smtp: TestSmtpServer;
  let app: TestOrthId;
  let server: FastifyInstance;
  let browser: Browser;
  let base: string;
  let tenantId: string;
  let config: oidc.Configuration;

  before(async () => {
    smtp = await startTestSmtpServer();
    const port = await freePort();
    base = `http://localhost:${port}`;
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
    tenantId = tenant.id;
    await runOperation(app, 'tenant.configure', { slug: 'acme', signUp: 'on' });
    app.oidc.invalidate(tenant.id);
    const client = await withTenant(app.db, tenant.id, (tx) =>
      app.clients.create(
        tx,
        tenant.id,
        {
          name: 'Acme Portal',
          grantTypes: ['authorization_code'],
          redirectUris: [`${base}/callback`],
          firstParty: true,
        },
        'test',
      ),
    );
    config = await oidc.discovery(
      new URL(`${base}/t/acme`),
      client.clientId,
      client.clientSecret,
      undefined,
      { execute: [oidc.allowInsecureRequests] },
    );
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    await app?.close();
    await smtp?.close();
  });

  /** A fresh browser profile with one virtual platform authenticator that verifies its user. */
  async function device(locale: string, holding?: unknown): Promise<Device> {
    const context = await browser.newContext({ locale });
    await context.addInitScript(NO_AUTOFILL);
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2',
        transport: 'internal',
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
        automaticPresenceSimulation: true,
      },
    });
    if (holding) {
      await cdp.send('WebAuthn.addCredential', {
        authenticatorId,
        credential: holding as Parameters<CDPSession['send']>[1] & { credentialId: string },
      } as never);
    }
    return { context, page, cdp, authenticatorId };
  }

  async function startSignIn(page: Page) {
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: `${base}/callback`,
      scope: 'openid email',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    await page.goto(url.href);
    return verifier;
  }

  const claimsAt = async (page: Page, verifier: string) =>
    (
      await oidc.authorizationCodeGrant(config, new URL(page.url()), { pkceCodeVerifier: verifier })
    ).claims()!;

  test('without JavaScript the sign-up page offers the password form alone', async () => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    try {
      const page = await context.newPage();
      await startSignIn(page);
      await page.click('a:has-text("Create an account")');
      assert.equal(await page.textContent('h1'), 'Create an account');
      assert.equal(await page.isHidden('#passkey-sign-up'), true);
      assert.equal(await page.isVisible('#password'), true);
    } finally {
      await context.close();
    }
  });

  for (const [locale, words] of [
    [
      'en',
      {
        signUp: 'Create an account',
        instead: 'Sign up with a passkey instead',
        heading: 'Create an account with a passkey',
        check: 'Check your mail',
        create: 'Create your passkey',
        codes: /recovery codes/i,
        signIn: 'Sign in with a passkey',
      },
    ],
    [
      'de',
      {
        signUp: 'Konto erstellen',
        instead: 'Stattdessen mit einem Passkey registrieren',
        heading: 'Konto mit einem Passkey erstellen',
        check: 'Sehen Sie in Ihr Postfach',
        create: 'Erstellen Sie Ihren Passkey',
        codes: /Wiederherstellungscodes/i,
        signIn: 'Mit einem Passkey anmelden',
      },
    ],
  ] as const) {
    test(`a person signs up with a passkey, types the mailed code, gets a token, then signs in with it (${locale})`, async () => {
      const d = await device(locale);
      const email = `passkey.${locale}@acme.test`;
      let credential: unknown;
      let sub: string | undefined;
      try {
        const verifier = await startSignIn(d.page);
        await d.page.click(`a:has-text("${words.signUp}")`);
        await d.page.waitForSelector('#passkey-sign-up:not([hidden])');
        await auditPage(browser, d.page, OUTPUT, `${locale}-sign-up`);
        await d.page.click(`a:has-text("${words.instead}")`);
        assert.equal(await d.page.textContent('h1'), words.heading);
        await auditPage(browser, d.page, OUTPUT, `${locale}-passkey-sign-up`);
        await d.page.fill('#name', 'Kim Example');
        await d.page.fill('#email', email);
        await d.page.click('button[type=submit]');
        assert.equal(await d.page.textContent('h1'), words.check);

        await app.mailWorker.runOnce();
        const mail = smtp.received.find((m) => m.rcptTo.includes(email));
        assert.ok(mail, 'the verification mail arrived');
        const code = /^(\d{6})$/m.exec(mail.parsed.text ?? '')?.[1];
        assert.ok(code);
        await d.page.fill('#code', code);
        await d.page.click('button[type=submit]:not(.secondary)');
        assert.equal(await d.page.textContent('h1'), words.create);
        await d.page.waitForSelector('#passkey-button:not([hidden])');
        await auditPage(browser, d.page, OUTPUT, `${locale}-create-passkey`);

        await d.page.click('#passkey-button');
        // The registration posts its form; the next page is the recovery codes'.
        await d.page.waitForURL((u) => u.pathname.endsWith('/sign-up/passkey/register'));
        assert.match((await d.page.textContent('h1')) ?? '', words.codes);
        await auditPage(browser, d.page, OUTPUT, `${locale}-recovery-codes`);
        const { credentials } = await d.cdp.send('WebAuthn.getCredentials', {
          authenticatorId: d.authenticatorId,
        });
        assert.equal(credentials.length, 1);
        assert.equal(credentials[0]!.isResidentCredential, true, 'a discoverable credential');
        credential = credentials[0];

        const landed = d.page.waitForURL((u) => u.href.startsWith(`${base}/callback`));
        await d.page.click('button[type=submit]');
        await landed;
        const claims = await claimsAt(d.page, verifier);
        assert.deepEqual(claims.amr, ['hwk', 'user', 'mfa']);
        assert.equal(claims.email_verified, true);
        sub = claims.sub;
        const user = await withTenant(app.db, tenantId, (tx) => app.users.findByEmail(tx, tenantId, email));
        assert.equal(user?.password_hash, null, 'no password was stored');
      } finally {
        await d.context.close();
      }

      // Another device holding the same passkey: a passwordless sign-in to a second token.
      const other = await device(locale, credential);
      try {
        const verifier = await startSignIn(other.page);
        await other.page.waitForSelector('#passkey-button:not([hidden])');
        assert.equal((await other.page.textContent('#passkey-button'))?.trim(), words.signIn);
        const landed = other.page.waitForURL((u) => u.href.startsWith(`${base}/callback`));
        await other.page.click('#passkey-button');
        await landed;
        const claims = await claimsAt(other.page, verifier);
        assert.equal(claims.sub, sub);
        assert.deepEqual(claims.amr, ['hwk', 'user', 'mfa']);
      } finally {
        await other.context.close();
      }
    });
  }
});
