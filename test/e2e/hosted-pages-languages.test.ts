// The hosted pages in the visitor's language, over real HTTP with a stock relying party:
// ui_locales of the authorization request first, then Accept-Language (q-values honoured), then
// the tenant's default language, then English; `<html lang>` says which; errors shown on the
// pages are translated while the API's error codes stay as they are.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import * as oidc from 'openid-client';
import { exitCodes, isOrthIdError } from '../../src/core/errors.js';
import { totpCode } from '../../src/identity/totp.js';
import { configureMfaPolicy } from '../../src/ops/mfa-policy.js';
import { runOperation } from '../../src/ops/operations.js';
import { buildServer } from '../../src/server/app.js';
import { withTenant } from '../../src/storage/db/database.js';
import { SCRIPTED_PAGE_HEADERS } from '../../src/web/layout.js';
import { runCli } from '../helpers/cli.js';
import { CookieBrowser, readForm } from '../helpers/cookie-browser.js';
import { enrolmentSecret, pageError, recoveryCodesOn } from '../helpers/mfa-sign-in.js';
import { createTestOrthId, type TestOrthId } from '../helpers/orthid.js';
import { createTestDatabase, freePort } from '../helpers/postgres.js';

const PASSWORD = 'correct horse battery staple 42';

const lang = (page: string) => /<html lang="([^"]*)">/.exec(page)?.[1];
const h1 = (page: string) => /<h1>([^<]*)<\/h1>/.exec(page)?.[1];
const alert = (page: string) => /<p class="error" role="alert"[^>]*>([^<]*)<\/p>/.exec(page)?.[1];

describe('hosted pages in English, German and French', { timeout: 120_000 }, () => {
  let app: TestOrthId;
  let server: FastifyInstance;
  let base: string;
  const rps: Record<string, { config: oidc.Configuration; redirectUri: string }> = {};

  before(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    app = await createTestOrthId('pglite', { env: { ORTHID_PUBLIC_URL: base } });
    server = await buildServer(app);
    await server.listen({ host: '127.0.0.1', port });
    for (const slug of ['acme', 'berlin', 'lyon']) {
      const tenant = await app.tenants.create({ slug, displayName: `${slug} corp`, actor: 'test' });
      const redirectUri = `${base}/callback`;
      const client = await withTenant(app.db, tenant.id, async (tx) => {
        await app.users.create(tx, tenant.id, { email: 'ann@acme.test', password: PASSWORD }, 'test');
        return app.clients.create(
          tx,
          tenant.id,
          {
            name: 'Acme Web',
            grantTypes: ['authorization_code', 'refresh_token'],
            redirectUris: [redirectUri],
          },
          'test',
        );
      });
      const config = await oidc.discovery(
        new URL(`${base}/t/${slug}`),
        client.clientId,
        client.clientSecret!,
        undefined,
        { execute: [oidc.allowInsecureRequests] },
      );
      rps[slug] = { config, redirectUri };
    }
    // berlin's visitors read German unless they ask for a language the pages have.
    await runOperation(app, 'tenant.configure', { slug: 'berlin', defaultLocale: 'de' });
    // lyon offers its users an authenticator app after the password.
    await configureMfaPolicy(app, await app.tenants.get('lyon'), { mode: 'optional' }, 'test');
    // What a replica's change listener does on the notice; this process runs none.
    app.oidc.invalidate((await app.tenants.get('berlin')).id);
    app.oidc.invalidate((await app.tenants.get('lyon')).id);
  });

  after(async () => {
    await server?.close();
    await app?.close();
  });

  /** Starts an authorization request and returns the hosted sign-in page it leads to. */
  async function signInPage(slug: string, browser: CookieBrowser, params: Record<string, string> = {}) {
    const { config, redirectUri } = rps[slug]!;
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: 'openid email offline_access',
      prompt: 'consent',
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
      ...params,
    });
    const login = await browser.follow(await browser.get(url.href), url.href);
    assert.equal(login.response.status, 200);
    for (const [name, value] of Object.entries(SCRIPTED_PAGE_HEADERS)) {
      assert.equal(login.response.headers.get(name), value, `${name} on the sign-in page`);
    }
    return { page: await login.response.text(), url: login.url };
  }

  test('without a language asked for, the pages stay English', async () => {
    const { page } = await signInPage('acme', new CookieBrowser());
    assert.equal(lang(page), 'en');
    assert.equal(h1(page), 'Sign in');
    assert.match(page, /<label for="password">Password<\/label>/);
    assert.match(page, /acme corp · secured by OrthID/);
  });

  test('ui_locales=fr renders French, even when the browser prefers German', async () => {
    const browser = new CookieBrowser({ 'accept-language': 'de-DE,de;q=0.9' });
    const { page } = await signInPage('acme', browser, { ui_locales: 'fr' });
    assert.equal(lang(page), 'fr');
    assert.equal(h1(page), 'Connexion');
    assert.match(page, /pour continuer vers Acme Web/);
    assert.match(page, /<label for="email">Adresse e-mail<\/label>/);
    assert.match(page, /<button type="submit">Se connecter<\/button>/);
    assert.match(page, /<title>Connexion · acme corp<\/title>/);
    assert.match(page, /acme corp · sécurisé par OrthID/);
    // The passkey script is a static file: its words come from the page, in the page's language.
    assert.match(
      page,
      /data-msg-cancelled="La demande de clé d’accès a été annulée ou a expiré\. Réessayez\."/,
    );
    assert.match(page, /data-msg-unsupported="Votre navigateur n’a pas pu utiliser de clé d’accès ici\./);
  });

  test('ui_locales names languages best first; the first the pages have wins', async () => {
    const { page } = await signInPage('acme', new CookieBrowser(), { ui_locales: 'ja de-CH fr' });
    assert.equal(lang(page), 'de');
    assert.equal(h1(page), 'Anmelden');
  });

  test('Accept-Language: de renders German, through sign-in, a wrong password and consent', async () => {
    const browser = new CookieBrowser({ 'accept-language': 'de' });
    const { page, url } = await signInPage('acme', browser);
    assert.equal(lang(page), 'de');
    assert.equal(h1(page), 'Anmelden');
    assert.match(page, /<label for="password">Passwort<\/label>/);

    const form = readForm(page);
    const wrong = await browser.post(new URL(form.action, url).href, {
      ...form.fields,
      email: 'ann@acme.test',
      password: 'not the password',
    });
    assert.equal(wrong.status, 401);
    const wrongPage = await wrong.text();
    assert.equal(lang(wrongPage), 'de');
    assert.equal(alert(wrongPage), 'E-Mail-Adresse oder Passwort ist falsch.');
    assert.doesNotMatch(wrongPage, /incorrect/);

    const again = readForm(wrongPage);
    const posted = await browser.post(new URL(again.action, url).href, {
      ...again.fields,
      email: 'ann@acme.test',
      password: PASSWORD,
    });
    assert.equal(posted.status, 303);
    const consent = await browser.follow(posted, url);
    const consentPage = await consent.response.text();
    assert.equal(lang(consentPage), 'de');
    assert.equal(h1(consentPage), 'Acme Web Zugriff erlauben?');
    assert.match(consentPage, /<li>Ihre E-Mail-Adresse sehen<\/li>/);
    assert.match(consentPage, /<button type="submit">Erlauben<\/button>/);
    assert.match(consentPage, /<button type="submit" class="secondary">Ablehnen<\/button>/);
  });

  test('Accept-Language q-values are honoured, not the order of the header', async () => {
    const german = await signInPage(
      'acme',
      new CookieBrowser({ 'accept-language': 'fr;q=0.3, en;q=0.5, de;q=0.8' }),
    );
    assert.equal(lang(german.page), 'de');
    const french = await signInPage(
      'acme',
      new CookieBrowser({ 'accept-language': 'de;q=0.2, ja, fr-CA;q=0.9' }),
    );
    assert.equal(lang(french.page), 'fr');
    assert.equal(h1(french.page), 'Connexion');
  });

  test('an unsupported language falls back to the tenant default, then to English', async () => {
    const browser = () => new CookieBrowser({ 'accept-language': 'ja, es;q=0.5' });
    const berlin = await signInPage('berlin', browser(), { ui_locales: 'it' });
    assert.equal(lang(berlin.page), 'de');
    assert.equal(h1(berlin.page), 'Anmelden');
    const acme = await signInPage('acme', browser(), { ui_locales: 'it' });
    assert.equal(lang(acme.page), 'en');
    assert.equal(h1(acme.page), 'Sign in');
    // A language asked for still beats the tenant's default.
    const asked = await signInPage('berlin', new CookieBrowser({ 'accept-language': 'en-GB' }));
    assert.equal(lang(asked.page), 'en');
  });

  test('the tenant default is a checked setting of tenant configure', async () => {
    const shown = (await runOperation(app, 'tenant.configure', { slug: 'berlin' })) as {
      defaultLocale: string;
    };
    assert.equal(shown.defaultLocale, 'de');
    await assert.rejects(
      runOperation(app, 'tenant.configure', { slug: 'berlin', defaultLocale: 'klingon' }),
      (error: unknown) => isOrthIdError(error, 'request.invalid') && /en, de, fr/.test(error.message),
    );
    assert.equal(
      ((await runOperation(app, 'tenant.configure', { slug: 'acme' })) as { defaultLocale: string })
        .defaultLocale,
      'en',
    );
  });

  test('the error page of a broken interaction is in the visitor language', async () => {
    const browser = new CookieBrowser({ 'accept-language': 'fr' });
    const { url } = await signInPage('acme', browser);
    const forged = await browser.post(url.replace(/\/interaction\/[^/]+$/, '/interaction/forged/login'), {
      csrf: 'x',
    });
    assert.equal(forged.status, 400);
    const page = await forged.text();
    assert.equal(lang(page), 'fr');
    assert.equal(h1(page), 'Impossible de continuer');
    assert.match(page, /Recommencez depuis l’application\./);
  });

  test('the device code page follows Accept-Language; the sign-out pages follow ui_locales', async () => {
    const device = await new CookieBrowser({ 'accept-language': 'fr-FR, en;q=0.5' }).get(
      `${base}/t/acme/device`,
    );
    const devicePage = await device.text();
    assert.equal(lang(devicePage), 'fr');
    assert.equal(h1(devicePage), 'Connecter un appareil');
    assert.match(devicePage, /Saisissez le code affiché sur votre appareil\./);

    const berlinDevice = await (await new CookieBrowser().get(`${base}/t/berlin/device`)).text();
    assert.equal(lang(berlinDevice), 'de', 'the tenant default applies to provider-rendered pages too');
    assert.equal(h1(berlinDevice), 'Gerät verbinden');

    // Signed in (in French) first: without a session there is nothing to confirm.
    const browser = new CookieBrowser({ 'accept-language': 'fr' });
    const { page, url } = await signInPage('acme', browser);
    const form = readForm(page);
    const posted = await browser.post(new URL(form.action, url).href, {
      ...form.fields,
      email: 'ann@acme.test',
      password: PASSWORD,
    });
    const consent = await browser.follow(posted, url);
    const consentPage = await consent.response.text();
    assert.equal(h1(consentPage), 'Autoriser Acme Web\u00a0?');
    assert.match(consentPage, /<li>Garder l’accès à votre compte lorsque vous ne l’utilisez pas<\/li>/);
    const allow = readForm(consentPage);
    await browser.follow(
      await browser.post(new URL(allow.action, url).href, allow.fields),
      url,
      rps.acme!.redirectUri,
    );

    const endSession = oidc.buildEndSessionUrl(rps.acme!.config, { ui_locales: 'de' });
    const signOut = await browser.follow(await browser.get(endSession.href), endSession.href);
    const signOutPage = await signOut.response.text();
    assert.equal(lang(signOutPage), 'de');
    assert.equal(h1(signOutPage), 'Abmelden?');
    assert.match(signOutPage, /Sie werden auf diesem Gerät von acme corp abgemeldet\./);
    assert.match(signOutPage, />Angemeldet bleiben<\/button>/);

    const logout = readForm(signOutPage, 'op.logoutForm');
    const out = await browser.post(new URL(logout.action, base).href, { ...logout.fields, logout: 'yes' });
    const done = await browser.follow(out, base);
    const donePage = await done.response.text();
    // A new request without ui_locales: the browser's language again.
    assert.equal(lang(donePage), 'fr');
    assert.equal(h1(donePage), 'Vous êtes déconnecté');
  });

  /** Posts the page's form `id` with `fields` and follows redirects to the next page. */
  async function post(browser: CookieBrowser, at: { page: string; url: string }, fields = {}, id?: string) {
    const form = readForm(at.page, id);
    const action = new URL(form.action, at.url).href;
    const next = await browser.follow(await browser.post(action, { ...form.fields, ...fields }), action);
    return { status: next.response.status, page: await next.response.text(), url: next.url };
  }

  /** ann's recovery codes at lyon, from the German enrolment, for the French sign-in after it. */
  let lyonCodes: string[] = [];

  test('the second-factor steps in German: offer, enrolment with a refused code, recovery codes', async () => {
    const browser = new CookieBrowser({ 'accept-language': 'de' });
    const offer = await post(browser, await signInPage('lyon', browser), {
      email: 'ann@acme.test',
      password: PASSWORD,
    });
    assert.equal(offer.status, 200);
    assert.equal(lang(offer.page), 'de');
    assert.equal(h1(offer.page), 'Schützen Sie Ihr Konto');
    assert.match(offer.page, /<button type="submit">Authenticator-App einrichten<\/button>/);
    assert.match(offer.page, />Stattdessen einen Passkey verwenden<\/button>/);
    assert.match(offer.page, />Jetzt nicht<\/button>/);

    const enrol = await post(browser, offer, {}, 'enrol-start');
    assert.equal(h1(enrol.page), 'Authenticator-App einrichten');
    assert.match(enrol.page, /alt="QR-Code für Ihre Authenticator-App"/);
    assert.match(enrol.page, /<label for="code">Code aus Ihrer Authenticator-App<\/label>/);
    const secret = enrolmentSecret(enrol.page);
    const right = totpCode(secret, app.clock.now());
    const wrong = right.replace(/^./, (d) => String((Number(d) + 1) % 10));
    const refused = await post(browser, enrol, { code: wrong }, 'enrol-confirm');
    assert.equal(refused.status, 401);
    assert.equal(lang(refused.page), 'de');
    assert.deepEqual(pageError(refused.page), {
      code: 'mfa.code_invalid',
      message: 'Dieser Code ist falsch oder abgelaufen. Prüfen Sie ihn und versuchen Sie es erneut.',
    });

    const codes = await post(browser, refused, { code: right }, 'enrol-confirm');
    assert.equal(h1(codes.page), 'Wiederherstellungscodes sichern');
    assert.equal(recoveryCodesOn(codes.page).length, 10);
    assert.match(codes.page, /<button type="submit">Gesichert, weiter<\/button>/);
    lyonCodes = recoveryCodesOn(codes.page);
    const consent = await post(browser, codes, {}, 'continue');
    assert.equal(h1(consent.page), 'Acme Web Zugriff erlauben?');
  });

  test('the second-factor steps in French: the code form, the recovery form, what is left in French digits', async () => {
    assert.equal(lyonCodes.length, 10, 'the German test enrolled ann');
    const browser = new CookieBrowser({ 'accept-language': 'de' });
    const step = await post(browser, await signInPage('lyon', browser, { ui_locales: 'fr' }), {
      email: 'ann@acme.test',
      password: PASSWORD,
    });
    assert.equal(lang(step.page), 'fr');
    assert.equal(h1(step.page), 'Validation en deux étapes');
    assert.match(step.page, /pour continuer vers Acme Web/);
    assert.match(step.page, /<label for="code">Code de votre application d’authentification<\/label>/);
    assert.match(step.page, /<button type="submit">Valider<\/button>/);
    assert.match(step.page, /<title>Validation en deux étapes · lyon corp<\/title>/);

    const link = /<a href="([^"]*recovery=1)">Utiliser un code de secours<\/a>/.exec(step.page)?.[1];
    assert.ok(link, 'the link to the recovery form, in French');
    const recoveryUrl = new URL(link.replace(/&amp;/g, '&'), step.url).href;
    const recovery = { page: await (await browser.get(recoveryUrl)).text(), url: recoveryUrl };
    assert.match(recovery.page, /<label for="recovery-code">Code de secours<\/label>/);
    assert.match(recovery.page, /Utiliser plutôt votre application d’authentification/);

    const malformed = await post(browser, recovery, { recovery_code: 'nope' }, 'recovery-code-form');
    assert.equal(malformed.status, 400);
    assert.equal(pageError(malformed.page)?.code, 'mfa.code_malformed');
    assert.match(pageError(malformed.page)?.message ?? '', /^Saisissez le code exactement/);

    const used = await post(browser, malformed, { recovery_code: lyonCodes[0]! }, 'recovery-code-form');
    assert.equal(h1(used.page), 'Code de secours utilisé');
    assert.match(used.page, /<p class="sub" id="remaining">Il vous reste 9 codes de secours\.<\/p>/);
    assert.equal(lang(used.page), 'fr');
  });

  test('a protocol error page is translated and keeps the stable error code', async () => {
    const { config } = rps.acme!;
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: 'https://elsewhere.example/cb',
      scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
      ui_locales: 'fr',
    });
    const response = await new CookieBrowser({ 'accept-language': 'de' }).get(url.href);
    assert.equal(response.status, 400);
    const page = await response.text();
    // Its ui_locales still name the language, before the browser's.
    assert.equal(lang(page), 'fr');
    assert.equal(h1(page), 'Une erreur s’est produite');
    assert.match(page, /\(erreur invalid_redirect_uri\)/);
    assert.doesNotMatch(page, /redirect_uri did not match/);
  });
});

describe('orthid tenant configure --default-locale', { timeout: 180_000 }, () => {
  let dir: string;
  let env: Record<string, string>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'orthid-locale-cli-'));
    env = {
      ORTHID_DATA_DIR: dir,
      ORTHID_DATABASE_URL: await createTestDatabase(),
      ORTHID_MASTER_KEY: 'locale-cli-test-master-secret-0123456789-abcd',
    };
    assert.equal((await runCli(['keystore', 'init'], env)).code, 0);
    assert.equal((await runCli(['migrate'], env)).code, 0);
    assert.equal((await runCli(['tenant', 'create', 'paris'], env)).code, 0);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('sets, shows and checks the tenant default language', async () => {
    const before = await runCli(['tenant', 'configure', 'paris'], env);
    assert.equal(before.code, 0, before.stderr);
    assert.match(before.stdout, /default language en;/);

    const set = await runCli(['tenant', 'configure', 'paris', '--default-locale', 'FR', '--json'], env);
    assert.equal(set.code, 0, set.stderr);
    assert.equal(JSON.parse(set.stdout).defaultLocale, 'fr');
    assert.match((await runCli(['tenant', 'configure', 'paris'], env)).stdout, /default language fr;/);

    const refused = await runCli(['tenant', 'configure', 'paris', '--default-locale', 'it'], env);
    assert.equal(refused.code, exitCodes.invalid);
    assert.match(refused.stderr, /error\[request\.invalid\].*en, de, fr/);
  });
});
