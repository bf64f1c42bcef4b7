import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext, CDPSession, Page } from 'playwright-core';
import { readAudit } from '../../src/audit/audit-log.js';
import { buildServer } from '../../src/server/app.js';
import { withTenant } from '../../src/storage/db/database.js';
import { launchChromium } from '../helpers/chromium.js';
import { createTestOrthId, type TestOrthId } from '../helpers/orthid.js';
import { freePort } from '../helpers/postgres.js';

const PASSWORD = 'a passkey is better than this password';

interface VirtualAuthenticator {
  context: BrowserContext;
  page: Page;
  cdp: CDPSession;
  authenticatorId: string;
}

/**
 * Passkeys in real Chromium with its virtual authenticator (CDP WebAuthn domain): registration,
 * passwordless sign-in with a discoverable credential, and the refusals a user would meet.
 * The deployment's public URL is http://localhost:<port>: WebAuthn needs a secure context and an
 * RP ID that is a domain, and localhost is both.
 */
describe('passkeys in Chromium with a virtual authenticator', () => {
  let app: TestOrthId;
  let server: FastifyInstance;
  let browser: Browser;
  let base: string;
  let port: number;
  let tenantId: string;
  let userId: string;
  let config: oidc.Configuration;
  let redirectUri: string;

  before(async () => {
    port = await freePort();
    base = `http://localhost:${port}`;
    redirectUri = `${base}/callback`;
    app = await createTestOrthId('pglite', { env: { ORTHID_PUBLIC_URL: base } });
    server = await buildServer(app);
    await server.listen({ host: '127.0.0.1', port });
    const tenant = await app.tenants.create({ slug: 'acme', displayName: 'Acme Corp', actor: 'test' });
    tenantId = tenant.id;
    const client = await withTenant(app.db, tenant.id, async (tx) => {
      userId = (
        await app.users.create(
          tx,
          tenant.id,
          { email: 'pat@acme.test', name: 'Pat', password: PASSWORD },
          'test',
        )
      ).id;
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

  /** A fresh browser profile with one virtual platform authenticator that verifies its user. */
  async function withAuthenticator(): Promise<VirtualAuthenticator> {
    const context = await browser.newContext();
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
    return { context, page, cdp, authenticatorId };
  }

  async function startSignIn(page: Page) {
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: 'openid email profile',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    await page.goto(url.href);
    return verifier;
  }

  async function tokensFrom(page: Page, verifier: string) {
    return oidc.authorizationCodeGrant(config, new URL(page.url()), { pkceCodeVerifier: verifier });
  }

  async function signInEvents() {
    return withTenant(app.db, tenantId, async (tx) => {
      const keyring = await app.tenantKeys.forTenant(tx, tenantId);
      return (await readAudit(tx, keyring, { limit: 1000 })).filter(
        (e) => e.action === 'user.sign_in' && e.details?.method === 'passkey',
      );
    });
  }

  test('the sign-in page offers passkey autofill through a same-origin script under a CSP without inline scripts', async () => {
    const { context, page } = await withAuthenticator();
    try {
      const verifier = oidc.randomPKCECodeVerifier();
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri,
        scope: 'openid',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
      });
      const response = await page.goto(url.href);
      const csp = (await response!.request().response())?.headers()['content-security-policy'] ?? '';
      assert.match(csp, /script-src 'self'/);
      assert.doesNotMatch(csp, /unsafe-inline'[^;]*;?\s*$|script-src[^;]*unsafe-inline/);
      assert.equal(await page.getAttribute('#email', 'autocomplete'), 'username webauthn');
      await page.waitForSelector('#passkey-button:not([hidden])');
      assert.equal((await page.textContent('#passkey-button'))?.trim(), 'Sign in with a passkey');
    } finally {
      await context.close();
    }
  });

  /**
   * Registers a passkey for Pat from a real ceremony: the server's options, Chromium's
   * navigator.credentials.create on a page of the deployment's origin, the server's check.
   */
  async function registerThroughApi(page: Page, name: string) {
    const ctx = { tenantId, binding: `test:${name}` };
    const options = await app.passkeys.registrationOptions(
      ctx,
      { id: userId, name: 'pat@acme.test', displayName: 'Pat' },
      'Acme Corp',
    );
    const response = await page.evaluate(
      (optionsJSON) =>
        (
          globalThis as unknown as {
            SimpleWebAuthnBrowser: { startRegistration(o: unknown): Promise<unknown> };
          }
        ).SimpleWebAuthnBrowser.startRegistration({ optionsJSON }),
      options as unknown as Record<string, unknown>,
    );
    return app.passkeys.register(ctx, { userId, response, name });
  }

  test('passkey autofill signs Pat in without a password: the ID token says hwk, user and mfa', async () => {
    const a = await withAuthenticator();
    try {
      await startSignIn(a.page);
      const passkey = await registerThroughApi(a.page, 'Laptop');
      assert.equal(passkey.name, 'Laptop');
      assert.equal(passkey.backupEligible, false);

      // Conditional mediation: the virtual authenticator answers the autofill request itself,
      // as a person picking their passkey from the email field's suggestions would.
      const landed = a.page.waitForURL((u) => u.href.startsWith(redirectUri));
      const verifier = await startSignIn(a.page);
      await landed;
      const claims = (await tokensFrom(a.page, verifier)).claims()!;
      assert.equal(claims.sub, userId);
      assert.deepEqual(claims.amr, ['hwk', 'user', 'mfa']);
      const [last] = (await signInEvents()).slice(0, 1);
      assert.equal(last?.outcome, 'success');
      assert.equal(last?.details?.passkey, passkey.id);
    } finally {
      await a.context.close();
    }
  });

  test('where the browser offers no autofill, the "Sign in with a passkey" button signs Pat in', async () => {
    const a = await withAuthenticator();
    try {
      await startSignIn(a.page);
      await registerThroughApi(a.page, 'Phone');
      await a.context.addInitScript(
        "Object.defineProperty(PublicKeyCredential, 'isConditionalMediationAvailable', { value: async () => false });",
      );
      const verifier = await startSignIn(a.page);
      await a.page.waitForSelector('#passkey-button:not([hidden])');
      assert.ok(a.page.url().includes('/interaction/'), 'no sign-in happened before the click');
      const landed = a.page.waitForURL((u) => u.href.startsWith(redirectUri));
      await a.page.click('#passkey-button');
      await landed;
      const claims = (await tokensFrom(a.page, verifier)).claims()!;
      assert.equal(claims.sub, userId);
      assert.deepEqual(claims.amr, ['hwk', 'user', 'mfa']);
    } finally {
      await a.context.close();
    }
  });

  test('without JavaScript the page still signs in with a password and shows no passkey button', async () => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    try {
      const page = await context.newPage();
      const verifier = await startSignIn(page);
      assert.equal(await page.isVisible('#passkey-button'), false);
      await page.fill('#email', 'pat@acme.test');
      await page.fill('#password', PASSWORD);
      const landed = page.waitForURL((u) => u.href.startsWith(redirectUri));
      await page.click('button[type=submit]');
      await landed;
      const tokens = await tokensFrom(page, verifier);
      assert.deepEqual(tokens.claims()!.amr, ['pwd']);
    } finally {
      await context.close();
    }
  });
});
