// Sign-up with a passkey in real Chromium with its virtual authenticator (CDP WebAuthn), in
// English and German: the sign-up page's passkey link (shown by the script only where WebAuthn
// works), name and address, the code read from a real SMTP server, the passkey created, the
// recovery codes, an ID token; then a passwordless sign-in with that passkey on another device
// and a second token. Every new page checked by axe-core and photographed.
//
// Every step that leaves a page waits for the next one to have loaded and checks it by its path
// and heading before reading or photographing it (test/helpers/page-steps.ts), and the sign-in
// ends at a redirect URI the test listens on: on a busy machine a step takes longer, never
// another path.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext, CDPSession, Page } from 'playwright-core';
import { RECOVERY_CODE_COUNT } from '../../src/identity/recovery-codes.js';
import { runOperation } from '../../src/ops/operations.js';
import { buildServer } from '../../src/server/app.js';
import { withTenant } from '../../src/storage/db/database.js';
import { type CallbackServer, startCallbackServer } from '../helpers/callback-server.js';
import { launchChromium } from '../helpers/chromium.js';
import { createTestOrthId, type TestOrthId } from '../helpers/orthid.js';
import { auditPage, testOutputDir } from '../helpers/page-audit.js';
import { NAVIGATION_MS, navigate, throughToCallback } from '../helpers/page-steps.js';
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

/** Path patterns of the hosted pages, under /t/acme/interaction/<uid>. */
const AT = {
  signIn: /^\/t\/acme\/interaction\/[^/]+$/,
  signUp: /^\/t\/acme\/interaction\/[^/]+\/sign-up$/,
  // The passkey sign-up form and the "check your mail" page that its post answers with.
  passkeySignUp: /^\/t\/acme\/interaction\/[^/]+\/sign-up\/passkey$/,
  code: /^\/t\/acme\/interaction\/[^/]+\/sign-up\/code$/,
  register: /^\/t\/acme\/interaction\/[^/]+\/sign-up\/passkey\/register$/,
};

/**
 * The public URL is http://localhost:<port>: WebAuthn needs a secure context and a domain as RP
 * ID, and localhost is both.
 */
describe('sign-up with a passkey in Chromium, in two languages', { timeout: 300_000 }, () => {
  let smtp: TestSmtpServer;
  let app: TestOrthId;
  let server: FastifyInstance;
  let callbacks: CallbackServer;
  let browser: Browser;
  let base: string;
  let tenantId: string;
  let config: oidc.Configuration;

  before(async () => {
    smtp = await startTestSmtpServer();
    // The client's redirect URI listens before any sign-in starts.
    callbacks = await startCallbackServer();
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
          redirectUris: [callbacks.redirectUri],
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
    // Each one closed even when one before it fails; the browser first, so no connection
    // holds a server open.
    const failures: unknown[] = [];
    for (const close of [
      () => browser?.close(),
      () => server?.close(),
      () => app?.close(),
      () => callbacks?.close(),
      () => smtp?.close(),
    ]) {
      await close()?.catch((error: unknown) => failures.push(error));
    }
    if (failures.length > 0) throw new AggregateError(failures, 'the test could not clean up');
  });

  async function newContext(options: Parameters<Browser['newContext']>[0]): Promise<BrowserContext> {
    const context = await browser.newContext(options);
    // One deadline for every action: a click that submits a form waits for the next document to
    // commit, as long as the server takes to answer.
    context.setDefaultTimeout(NAVIGATION_MS);
    context.setDefaultNavigationTimeout(NAVIGATION_MS);
    return context;
  }

  /** A fresh browser profile with one virtual platform authenticator that verifies its user. */
  async function device(locale: string, holding?: unknown): Promise<Device> {
    const context = await newContext({ locale });
    try {
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
    } catch (error) {
      await context.close();
      throw error;
    }
  }

  /** The client's authorization request, up to the sign-in page (loaded, checked by its heading). */
  async function startSignIn(page: Page, heading: string) {
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: callbacks.redirectUri,
      scope: 'openid email',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    await navigate(page, () => page.goto(url.href), { name: 'the sign-in page', path: AT.signIn, heading });
    return verifier;
  }

  const claimsOf = async (callback: URL, verifier: string) =>
    (await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier })).claims()!;

  test('without JavaScript the sign-up page offers the password form alone', {
    timeout: 60_000,
  }, async () => {
    const context = await newContext({ javaScriptEnabled: false });
    try {
      const page = await context.newPage();
      await startSignIn(page, 'Sign in');
      await navigate(page, () => page.getByRole('link', { name: 'Create an account', exact: true }).click(), {
        name: 'the sign-up page',
        path: AT.signUp,
        heading: 'Create an account',
      });
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
        signInHeading: 'Sign in',
        signUp: 'Create an account',
        instead: 'Sign up with a passkey instead',
        heading: 'Create an account with a passkey',
        check: 'Check your mail',
        create: 'Create your passkey',
        codes: 'Save your recovery codes',
        signIn: 'Sign in with a passkey',
      },
    ],
    [
      'de',
      {
        signInHeading: 'Anmelden',
        signUp: 'Konto erstellen',
        instead: 'Stattdessen mit einem Passkey registrieren',
        heading: 'Konto mit einem Passkey erstellen',
        check: 'Sehen Sie in Ihr Postfach',
        create: 'Erstellen Sie Ihren Passkey',
        codes: 'Wiederherstellungscodes sichern',
        signIn: 'Mit einem Passkey anmelden',
      },
    ],
  ] as const) {
    test(`a person signs up with a passkey, types the mailed code, gets a token, then signs in with it (${locale})`, {
      timeout: 120_000,
    }, async () => {
      const shot = (page: Page, name: string) => auditPage(browser, page, OUTPUT, `${locale}-${name}`);
      const d = await device(locale);
      const email = `passkey.${locale}@acme.test`;
      let credential: unknown;
      let sub: string | undefined;
      try {
        const { page } = d;
        const verifier = await startSignIn(page, words.signInHeading);
        await navigate(page, () => page.getByRole('link', { name: words.signUp, exact: true }).click(), {
          name: 'the sign-up page',
          path: AT.signUp,
          heading: words.signUp,
        });
        // The script shows the passkey link where WebAuthn works; it runs before the load event.
        await page.locator('#passkey-sign-up').waitFor({ state: 'visible' });
        await shot(page, 'sign-up');

        await navigate(page, () => page.getByRole('link', { name: words.instead, exact: true }).click(), {
          name: 'the passkey sign-up page',
          path: AT.passkeySignUp,
          heading: words.heading,
        });
        await shot(page, 'passkey-sign-up');
        await page.fill('#name', 'Kim Example');
        await page.fill('#email', email);
        await navigate(page, () => page.click('form[action$="/sign-up/passkey"] button[type=submit]'), {
          name: 'the check-your-mail page',
          path: AT.passkeySignUp,
          heading: words.check,
        });

        await app.mailWorker.runOnce();
        const mail = smtp.received.find((m) => m.rcptTo.includes(email));
        assert.ok(mail, 'the verification mail arrived');
        const code = /^(\d{6})$/m.exec(mail.parsed.text ?? '')?.[1];
        assert.ok(code, 'the mail carries a six-digit code');
        await page.fill('#code', code);
        await navigate(page, () => page.click('form[action$="/sign-up/code"] button[type=submit]'), {
          name: 'the create-your-passkey page',
          path: AT.code,
          heading: words.create,
        });
        await page.locator('#passkey-button').waitFor({ state: 'visible' });
        await shot(page, 'create-passkey');

        // The button starts the ceremony in the script (options, the authenticator, then the
        // form's post), so the click returns before any navigation: the wait is for the page
        // the post is answered with, or ends at once on the script's own failure line.
        await navigate(
          page,
          () => page.click('#passkey-button'),
          {
            name: 'the recovery codes page',
            path: AT.register,
            heading: words.codes,
          },
          { failsWith: page.locator('#passkey-status') },
        );
        assert.equal(await page.locator('#recovery-codes li').count(), RECOVERY_CODE_COUNT);
        await shot(page, 'recovery-codes');
        const { credentials } = await d.cdp.send('WebAuthn.getCredentials', {
          authenticatorId: d.authenticatorId,
        });
        assert.equal(credentials.length, 1);
        assert.equal(credentials[0]!.isResidentCredential, true, 'a discoverable credential');
        credential = credentials[0];

        const callback = await throughToCallback(page, callbacks, () =>
          page.click('#continue button[type=submit]'),
        );
        const claims = await claimsOf(callback, verifier);
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
        const { page } = other;
        const verifier = await startSignIn(page, words.signInHeading);
        await page.locator('#passkey-button').waitFor({ state: 'visible' });
        assert.equal((await page.textContent('#passkey-button'))?.trim(), words.signIn);
        const callback = await throughToCallback(page, callbacks, () => page.click('#passkey-button'), {
          failsWith: page.locator('#passkey-status'),
        });
        const claims = await claimsOf(callback, verifier);
        assert.equal(claims.sub, sub);
        assert.deepEqual(claims.amr, ['hwk', 'user', 'mfa']);
      } finally {
        await other.context.close();
      }
    });
  }
});
