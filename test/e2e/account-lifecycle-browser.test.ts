// A person's whole account life in real Chromium with JavaScript off, on PostgreSQL, in English
// and German: sign-up from a stock relying party's sign-in, the verification link read from a
// real SMTP server, sign-in to the app, the account pages (signed in through the tenant's own
// provider) where they change their name and password, sign-out, "Forgot password?", the reset
// link from the mail, and a sign-in with the new password. Every page is checked by axe-core (no
// serious or critical violation) and photographed.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import * as oidc from 'openid-client';
import type { Browser, Page } from 'playwright-core';
import { runOperation } from '../../src/ops/operations.js';
import { buildServer } from '../../src/server/app.js';
import { withTenant } from '../../src/storage/db/database.js';
import { launchChromium } from '../helpers/chromium.js';
import { runCli } from '../helpers/cli.js';
import { createTestOrthId, TEST_MASTER_KEY, type TestOrthId } from '../helpers/orthid.js';
import { auditPage, testOutputDir } from '../helpers/page-audit.js';
import { freePort } from '../helpers/postgres.js';
import { startTestSmtpServer, type TestSmtpServer } from '../helpers/smtp-server.js';

const FIRST = 'a first passphrase typed into a real browser';
const CHANGED = 'the second passphrase, chosen on the account page';
const RESET = 'a third passphrase, set from the mailed link';
const OUTPUT = testOutputDir('account-lifecycle-browser');

/** What each page says, per language: the headings a person sees on the way. */
const WORDS = {
  en: {
    signIn: 'Sign in',
    createAccount: 'Create an account',
    checkMail: 'Check your mail',
    verifyLink: 'Verify your email address',
    verified: 'Your address is verified',
    verifyMail: 'Verify my address',
    allow: 'Allow Acme Portal?',
    profile: 'Profile',
    nameSaved: 'Your name was saved.',
    password: 'Password',
    passwordChanged: 'Your password was changed, and your other sessions were signed out.',
    signOut: 'Sign out?',
    signedOut: 'Signed out',
    wrongPassword: 'The email or password is incorrect.',
    forgot: 'Forgot password?',
    forgotHeading: 'Forgot your password?',
    sent: 'Check your email',
    resetMail: 'Choose a new password',
    choose: 'Choose a new password',
    done: 'Your password was changed',
  },
  de: {
    signIn: 'Anmelden',
    createAccount: 'Konto erstellen',
    checkMail: 'Sehen Sie in Ihr Postfach',
    verifyLink: 'E-Mail-Adresse bestätigen',
    verified: 'Ihre Adresse ist bestätigt',
    verifyMail: 'Meine Adresse bestätigen',
    allow: 'Acme Portal Zugriff erlauben?',
    profile: 'Profil',
    nameSaved: 'Ihr Name wurde gespeichert.',
    password: 'Passwort',
    passwordChanged: 'Ihr Passwort wurde geändert, und Ihre anderen Sitzungen wurden abgemeldet.',
    signOut: 'Abmelden?',
    signedOut: 'Abgemeldet',
    wrongPassword: 'E-Mail-Adresse oder Passwort ist falsch.',
    forgot: 'Passwort vergessen?',
    forgotHeading: 'Passwort vergessen?',
    sent: 'Prüfen Sie Ihre E-Mails',
    resetMail: 'Neues Passwort wählen',
    choose: 'Neues Passwort wählen',
    done: 'Ihr Passwort wurde geändert',
  },
} as const;

describe('an account from sign-up to password reset in Chromium, in two languages', {
  timeout: 480_000,
}, () => {
  let smtp: TestSmtpServer;
  let app: TestOrthId;
  let server: FastifyInstance;
  let browser: Browser;
  let base: string;
  let config: oidc.Configuration;
  const redirectUri = () => `${base}/callback`;
  const account = (path = '') => `${base}/t/acme/account${path}`;

  before(async () => {
    smtp = await startTestSmtpServer();
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    app = await createTestOrthId('postgres', {
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
    await runOperation(app, 'tenant.create', { slug: 'acme', displayName: 'Acme Corp' });
    // Sign-up turned on as an operator does, with the `orthid` command on the same database.
    const operator = {
      ORTHID_DATA_DIR: app.dataDir,
      ORTHID_DATABASE_URL: app.databaseUrl!,
      ORTHID_MASTER_KEY: TEST_MASTER_KEY,
      ORTHID_PUBLIC_URL: base,
    };
    // The test database was migrated without a keystore; `orthid migrate` binds it to this one.
    const migrated = await runCli(['migrate'], operator);
    assert.equal(migrated.code, 0, migrated.stderr);
    const configured = await runCli(['tenant', 'configure', 'acme', '--sign-up', 'on'], operator);
    assert.equal(configured.code, 0, configured.stderr);
    assert.match(configured.stdout, /sign-up on/);
    const tenant = await app.tenants.get('acme');
    app.oidc.invalidate(tenant.id);
    const client = await withTenant(app.db, tenant.id, (tx) =>
      app.clients.create(
        tx,
        tenant.id,
        { name: 'Acme Portal', grantTypes: ['authorization_code'], redirectUris: [redirectUri()] },
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

  /** Delivers the queue and returns the newest mail to `email` that arrived after `from`. */
  async function mailTo(email: string, from: number) {
    await app.mailWorker.runOnce();
    const mail = smtp.received
      .slice(from)
      .filter((m) => m.rcptTo.includes(email))
      .at(-1);
    assert.ok(mail, 'the mail arrived at the SMTP server');
    return mail.parsed.text ?? '';
  }

  const heading = async (page: Page) => ((await page.textContent('h1')) ?? '').trim();

  for (const locale of ['en', 'de'] as const) {
    const words = WORDS[locale];
    test(`a person signs up, verifies, manages their account, forgets and resets their password (${locale})`, async (t) => {
      const context = await browser.newContext({
        javaScriptEnabled: false,
        locale,
        extraHTTPHeaders: { 'accept-language': locale },
      });
      const page = await context.newPage();
      const visited: string[] = [];
      page.on('request', (request) => visited.push(request.url()));
      let step = 0;
      /** Every page is in the browser's language, passes axe and is photographed. */
      const audit = async (name: string) => {
        assert.equal(await page.getAttribute('html', 'lang'), locale, name);
        await auditPage(browser, page, OUTPUT, `${locale}-${String(++step).padStart(2, '0')}-${name}`);
      };
      const email = `pat.${locale}@acme.test`;

      // The relying party sends the person to sign in; they have no account yet.
      const verifier = oidc.randomPKCECodeVerifier();
      const signInUrl = oidc.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri(),
        scope: 'openid email profile',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
      });
      await page.goto(signInUrl.href);
      assert.equal(await heading(page), words.signIn);
      await audit('sign-in');
      await page.click(`a:has-text("${words.createAccount}")`);
      assert.equal(await heading(page), words.createAccount);
      await audit('sign-up');
      await page.fill('#name', 'Pat Example');
      await page.fill('#email', email);
      await page.fill('#password', FIRST);
      const beforeSignUp = smtp.received.length;
      await page.click('button[type=submit]');
      assert.equal(await heading(page), words.checkMail);
      await audit('check-mail');

      // The verification link from the mail, opened in the same browser.
      const verifyMail = await mailTo(email, beforeSignUp);
      assert.ok(verifyMail.includes(words.verifyMail), 'the mail is in the page language');
      const verifyLink = /(http:\/\/\S+\/sign-up\/verify\?token=[A-Za-z0-9_-]+)/.exec(verifyMail)?.[1];
      assert.ok(verifyLink, 'the mail holds a verification link');
      await page.goto(verifyLink);
      assert.equal(await heading(page), words.verifyLink);
      await audit('verify-link');
      await page.click('button[type=submit]');
      assert.equal(await heading(page), words.verified);
      await audit('verified');

      // Sign-in to the relying party, which asks for consent, then the code exchange.
      await page.click('p.links a');
      assert.equal(await heading(page), words.signIn);
      await page.fill('#email', email);
      await page.fill('#password', FIRST);
      await page.click('button[type=submit]');
      assert.equal(await heading(page), words.allow);
      await audit('consent');
      const landed = page.waitForURL((u) => u.href.startsWith(redirectUri()));
      await page.click('button[type=submit]:not(.secondary)');
      await landed;
      const tokens = await oidc.authorizationCodeGrant(config, new URL(page.url()), {
        pkceCodeVerifier: verifier,
      });
      assert.equal(tokens.claims()?.email_verified, true);
      assert.equal(tokens.claims()?.name, 'Pat Example');

      // The account pages sign in through the tenant's own provider (its session is still on).
      const beforeAccount = visited.length;
      await page.goto(account());
      assert.equal(page.url(), account());
      assert.ok(
        visited.slice(beforeAccount).some((u) => u.startsWith(`${base}/t/acme/auth?`)),
        'the account pages went through the provider',
      );
      assert.equal(await heading(page), words.profile);
      assert.equal(await page.inputValue('#name-field'), 'Pat Example');
      await audit('account-profile');
      await page.fill('#name-field', `Pat Renamed ${locale}`);
      await page.click('#name button[type=submit]');
      assert.equal(await page.textContent('[data-notice]'), words.nameSaved);
      assert.equal(await page.inputValue('#name-field'), `Pat Renamed ${locale}`);
      await audit('account-name-saved');

      await page.click(`nav a:has-text("${words.password}")`);
      assert.equal(await heading(page), words.password);
      await audit('account-password');
      await page.fill('#current', FIRST);
      await page.fill('#new', CHANGED);
      await page.click('#password button[type=submit]');
      assert.equal(await page.textContent('[data-notice]'), words.passwordChanged);
      await audit('account-password-changed');

      // Sign-out ends the account pages' cookie and the provider's session.
      await page.click('#sign-out button[type=submit]');
      assert.equal(await heading(page), words.signOut);
      await audit('sign-out');
      await page.click('button[name=logout]');
      assert.equal(page.url(), account('/signed-out'));
      assert.equal(await heading(page), words.signedOut);
      await audit('signed-out');

      // Signing in again: the first password no longer works, and they forgot the second.
      await page.click('p.links a');
      assert.equal(await heading(page), words.signIn);
      await page.fill('#email', email);
      await page.fill('#password', FIRST);
      await page.click('button[type=submit]');
      assert.equal(await page.getAttribute('[role=alert]', 'data-code'), 'auth.invalid_credentials');
      assert.equal(await page.textContent('[role=alert]'), words.wrongPassword);
      await audit('sign-in-refused');
      await page.click(`a:has-text("${words.forgot}")`);
      assert.equal(await heading(page), words.forgotHeading);
      await audit('forgot');
      await page.fill('#email', email);
      const beforeReset = smtp.received.length;
      await page.click('button[type=submit]');
      assert.equal(await heading(page), words.sent);
      await audit('reset-sent');

      const resetMail = await mailTo(email, beforeReset);
      assert.ok(resetMail.includes(words.resetMail), 'the reset mail is in the page language');
      const resetLink = /(http:\/\/\S+\/password\/reset\?token=[A-Za-z0-9_-]+)/.exec(resetMail)?.[1];
      assert.ok(resetLink, 'the mail holds a reset link');
      await page.goto(resetLink);
      assert.equal(await heading(page), words.choose);
      await audit('new-password');
      await page.fill('#password', RESET);
      await page.fill('#confirm', RESET);
      await page.click('button[type=submit]');
      assert.equal(await heading(page), words.done);
      await audit('reset-done');

      // Back to the sign-in the reset began from; the new password opens the account pages.
      await page.click('p.links a');
      assert.equal(await heading(page), words.signIn);
      await page.fill('#email', email);
      await page.fill('#password', RESET);
      await page.click('button[type=submit]');
      assert.equal(page.url(), account());
      assert.equal(await heading(page), words.profile);
      assert.equal(await page.inputValue('#name-field'), `Pat Renamed ${locale}`);
      await audit('signed-in-again');

      t.diagnostic(`screenshots in ${OUTPUT}`);
      await context.close();
    });
  }
});
