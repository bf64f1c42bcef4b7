// Sign-up with a passkey over real HTTP, a real PostgreSQL and a real SMTP server, with an
// authenticator in software (real P-256 signatures): the address proved before the passkey, the
// passkey activating the account, recovery codes, the login; the refusals of forged, replayed,
// expired and other interactions' responses, leaving nothing usable behind; the same answer for
// an address that has an account; the domain allow-list; the link in and out of the sign-up's browser.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { readAudit } from '../../src/audit/audit-log.js';
import { fixedClock } from '../../src/core/clock.js';
import { createLogger } from '../../src/core/logger.js';
import { runOperation } from '../../src/ops/operations.js';
import { buildServer } from '../../src/server/app.js';
import { withTenant } from '../../src/storage/db/database.js';
import type { Tenant } from '../../src/tenancy/tenants.js';
import { CookieBrowser, readForm } from '../helpers/cookie-browser.js';
import { consentToCallback } from '../helpers/hosted-sign-in.js';
import { createTestOrthId, DRIVERS, type TestOrthId } from '../helpers/orthid.js';
import { freePort } from '../helpers/postgres.js';
import { startTestSmtpServer, type TestSmtpServer } from '../helpers/smtp-server.js';
import {
  type CreationOptions,
  FLAGS,
  type RequestOptions,
  SoftwarePasskey,
} from '../helpers/software-passkey.js';

const PASSWORD = 'a long enough passphrase for sign-up';
const EXISTING = 'ann@acme.test';
const START = '2031-06-01T09:00:00Z';

for (const driver of DRIVERS)
  describe(`sign-up with a passkey (${driver}, real SMTP)`, { timeout: 300_000 }, () => {
    let smtp: TestSmtpServer;
    let app: TestOrthId;
    let server: FastifyInstance;
    let base: string;
    let tenant: Tenant;
    let client: { client_id: string; client_secret: string };
    const clock = fixedClock(START);
    let nextAddress = 10;
    let logged = '';
    const log = createLogger(
      'trace',
      new Writable({
        write(chunk, _encoding, done) {
          logged += chunk.toString();
          done();
        },
      }),
    );
    /** Every address, code and link secret the tests handle: none may reach a log line. */
    const secrets = new Set<string>();
    const browserFrom = () => new CookieBrowser({ 'x-forwarded-for': `203.0.113.${nextAddress++}` });

    before(async () => {
      smtp = await startTestSmtpServer();
      const port = await freePort();
      base = `http://127.0.0.1:${port}`;
      app = await createTestOrthId(driver, {
        clock,
        env: {
          ORTHID_PUBLIC_URL: base,
          ORTHID_TRUST_PROXY: '127.0.0.1',
          ORTHID_SMTP_URL: `smtp://${smtp.user}@127.0.0.1:${smtp.port}`,
          ORTHID_SMTP_PASSWORD_FILE: smtp.passwordFile,
          ORTHID_SMTP_CA_FILE: smtp.caFile,
          ORTHID_MAIL_FROM: 'Acme <no-reply@acme.test>',
        },
      });
      server = await buildServer({ ...app, log });
      await server.listen({ host: '127.0.0.1', port });
      tenant = await app.tenants.create({ slug: 'acme', displayName: 'Acme', actor: 'test' });
      await withTenant(app.db, tenant.id, async (tx) => {
        await app.users.create(tx, tenant.id, { email: EXISTING, password: PASSWORD }, 'test');
        const created = await app.clients.create(
          tx,
          tenant.id,
          { name: 'Acme Web', grantTypes: ['authorization_code'], redirectUris: [`${base}/cb`] },
          'test',
        );
        client = { client_id: created.clientId, client_secret: created.clientSecret! };
      });
      await configure({ signUp: 'on' });
    });

    after(async () => {
      await server?.close();
      await app?.close();
      await smtp?.close();
    });

    async function configure(settings: Record<string, unknown>) {
      await runOperation(app, 'tenant.configure', { slug: 'acme', ...settings });
      app.oidc.invalidate(tenant.id);
    }

    const authenticator = () => new SoftwarePasskey(base, '127.0.0.1');
    const codeOf = (html: string) => /data-code="([^"]+)"/.exec(html)?.[1];
    const h1 = (html: string) => /<h1>([^<]*)<\/h1>/.exec(html)?.[1];

    async function begin(browser = browserFrom()) {
      const config = await oidc.discovery(
        new URL(`${base}/t/acme`),
        client.client_id,
        client.client_secret,
        undefined,
        { execute: [oidc.allowInsecureRequests] },
      );
      const verifier = oidc.randomPKCECodeVerifier();
      const state = oidc.randomState();
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: `${base}/cb`,
        scope: 'openid email',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        state,
      });
      const login = await browser.follow(await browser.get(url.href), base);
      return { config, verifier, state, browser, signInUrl: login.url, page: await login.response.text() };
    }
    type Flow = Awaited<ReturnType<typeof begin>>;

    /** From the sign-in page to "check your mail" by the passkey path. */
    async function passkeySignUp(email: string, flow?: Flow) {
      const started = flow ?? (await begin());
      const signUpPage = await (await started.browser.get(`${started.signInUrl}/sign-up`)).text();
      const link = /<p class="links" id="passkey-sign-up" data-webauthn-only hidden><a href="([^"]+)"/.exec(
        signUpPage,
      )?.[1];
      assert.ok(link, 'the sign-up page offers the passkey path, hidden until the script shows it');
      const form = await started.browser.get(new URL(link, base).href);
      assert.equal(form.status, 200);
      const html = await form.text();
      assert.doesNotMatch(html, /name="password"/, 'no password is asked');
      const { action, fields } = readForm(html);
      const posted = await started.browser.post(new URL(action, base).href, {
        ...fields,
        name: 'Ada Lovelace',
        email,
      });
      return { ...started, posted, html: await posted.text() };
    }

    async function mailTo(to: string) {
      await app.mailWorker.runOnce();
      const mail = smtp.received.filter((m) => m.rcptTo.includes(to)).at(-1);
      assert.ok(mail, 'a mail arrived');
      const text = mail.parsed.text ?? '';
      const link = /(http\S+\/sign-up\/verify\?token=\S+)/.exec(text)?.[1];
      const code = /^(\d{6})$/m.exec(text)?.[1];
      secrets.add(to);
      if (code) secrets.add(code);
      if (link) secrets.add(new URL(link).searchParams.get('token')!);
      return { subject: mail.parsed.subject ?? '', link, code };
    }

    /** Types the mailed code on "check your mail"; answers the page that follows. */
    async function typeCode(flow: Flow & { html: string }, code: string) {
      const { action, fields } = readForm(flow.html);
      const posted = await flow.browser.post(new URL(action, base).href, { ...fields, code });
      return { status: posted.status, html: await posted.text() };
    }

    /** The create-passkey page's ceremony: its options, and a post of a response. */
    function ceremony(flow: Flow, html: string) {
      const { action, fields } = readForm(html, 'passkey-form');
      const optionsUrl = /data-options="([^"]+)"/.exec(html)![1]!;
      return {
        async options(): Promise<{ status: number; json?: CreationOptions & Record<string, unknown> }> {
          const res = await flow.browser.post(new URL(optionsUrl, base).href, { csrf: fields.csrf! });
          return {
            status: res.status,
            json: res.ok ? ((await res.json()) as CreationOptions & Record<string, unknown>) : undefined,
          };
        },
        async post(response: unknown) {
          const res = await flow.browser.post(new URL(action, base).href, {
            ...fields,
            response: typeof response === 'string' ? response : JSON.stringify(response),
          });
          return { res, html: await res.text() };
        },
      };
    }

    const userOf = (email: string) =>
      withTenant(app.db, tenant.id, async (tx) => {
        const found = await app.users.findByEmail(tx, tenant.id, email);
        if (!found) return undefined;
        return {
          row: found,
          passkeys: await app.passkeys.list(tx, found.id),
        };
      });

    const audit = () =>
      withTenant(app.db, tenant.id, async (tx) =>
        readAudit(tx, await app.tenantKeys.forTenant(tx, tenant.id), { limit: 1000 }),
      );

    async function finish(flow: Flow, posted: Response) {
      const callback = await consentToCallback(
        {
          config: flow.config,
          browser: flow.browser,
          posted,
          verifier: flow.verifier,
          state: flow.state,
          origin: base,
        },
        `${base}/cb`,
      );
      const tokens = await oidc.authorizationCodeGrant(flow.config, callback, {
        pkceCodeVerifier: flow.verifier,
        expectedState: flow.state,
      });
      return decodeJwt(tokens.id_token!);
    }

    test('the address is proved first, then the passkey activates the account; recovery codes, then an ID token; then passwordless sign-in', async () => {
      const email = 'ada@acme.test';
      const flow = await passkeySignUp(email);
      assert.equal(flow.posted.status, 200);
      assert.equal(h1(flow.html), 'Check your mail');
      const waiting = await userOf(email);
      assert.ok(waiting?.row.awaiting_verification, 'the account waits for its address');
      assert.equal(waiting.row.password_hash, null, 'no password is stored');
      const signedUp = (await audit()).find(
        (e) => e.action === 'user.signed_up' && e.target === `user:${waiting.row.id}`,
      );
      assert.equal(signedUp?.details?.method, 'passkey');

      const mail = await mailTo(email);
      assert.equal(mail.subject, 'Verify your email address for Acme');
      const proved = await typeCode(flow, mail.code!);
      assert.equal(proved.status, 200);
      assert.equal(h1(proved.html), 'Create your passkey');
      // The proof alone makes no usable account: it waits for its passkey.
      assert.ok((await userOf(email))?.row.awaiting_verification, 'still waiting after the code');

      const key = authenticator();
      const steps = ceremony(flow, proved.html);
      const { json: options } = await steps.options();
      assert.ok(options);
      const selection = options.authenticatorSelection as Record<string, string>;
      assert.equal(selection.residentKey, 'required');
      assert.equal(selection.userVerification, 'required');
      assert.equal(options.user.name, email);
      const { res, html } = await steps.post(key.create(options));
      assert.equal(res.status, 200);
      assert.match(h1(html) ?? '', /recovery codes/i);
      const active = await userOf(email);
      assert.equal(active?.row.awaiting_verification, false);
      assert.equal(active?.row.email_verified, true);
      assert.equal(active?.passkeys.length, 1);

      const { action, fields } = readForm(html);
      const claims = await finish(flow, await flow.browser.post(new URL(action, base).href, fields));
      assert.equal(claims.sub, active!.row.id);
      assert.deepEqual(claims.amr, ['hwk', 'user', 'mfa']);
      assert.equal(claims.email_verified, true);
      const signIn = (await audit()).find(
        (e) => e.action === 'user.sign_in' && e.target === `user:${active!.row.id}`,
      );
      assert.equal(signIn?.details?.method, 'passkey');

      // A password sign-in of an account with none: the answer a wrong password gets.
      const tryPassword = async (address: string) => {
        const again = await begin();
        const form = readForm(again.page);
        const posted = await again.browser.post(new URL(form.action, base).href, {
          ...form.fields,
          email: address,
          password: PASSWORD,
        });
        return { status: posted.status, code: codeOf(await posted.text()) };
      };
      const none = await tryPassword(email);
      const wrong = await tryPassword(EXISTING.replace('ann', 'nobody'));
      assert.deepEqual(none, { status: 401, code: 'auth.invalid_credentials' });
      assert.deepEqual(none, wrong);

      // Passwordless sign-in with the new passkey, from the sign-in page of a new request.
      const later = await begin();
      const signInForm = readForm(later.page, 'passkey-form');
      const optionsUrl = /id="passkey-form"[^>]*data-options="([^"]+)"/.exec(later.page)![1]!;
      const request = (await (
        await later.browser.post(new URL(optionsUrl, base).href, { csrf: signInForm.fields.csrf! })
      ).json()) as RequestOptions;
      const posted = await later.browser.post(new URL(signInForm.action, base).href, {
        ...signInForm.fields,
        response: JSON.stringify(key.get(request)),
      });
      const again = await finish(later, posted);
      assert.equal(again.sub, active!.row.id);
      assert.deepEqual(again.amr, ['hwk', 'user', 'mfa']);
    });

    test('forged, user-unverified, replayed, expired and other challenges are refused with stable codes; nothing is stored', async () => {
      const email = 'refused@acme.test';
      const flow = await passkeySignUp(email);
      const proved = await typeCode(flow, (await mailTo(email)).code!);
      const steps = ceremony(flow, proved.html);
      const key = authenticator();
      const unchanged = async () => {
        const found = await userOf(email);
        assert.equal(found?.row.awaiting_verification, true, 'the account still waits');
        assert.equal(found?.passkeys.length, 0, 'no passkey stored');
      };

      // Nothing the browser made: no response at all, and garbage.
      await steps.options();
      let out = await steps.post('');
      assert.equal(out.res.status, 401);
      assert.equal(codeOf(out.html), 'passkey.verification_failed');
      assert.equal(h1(out.html), 'Create your passkey', 'the page explains and offers the step again');
      await unchanged();

      // The challenge the failure used up: a good response made for it is refused.
      let options = (await steps.options()).json!;
      out = await steps.post('{"id":"x"}');
      assert.equal(codeOf(out.html), 'passkey.verification_failed');
      out = await steps.post(key.create(options));
      assert.equal(codeOf(out.html), 'passkey.challenge_missing');
      await unchanged();

      // A response to another interaction's challenge (its sign-in page's, issued by this server).
      const elsewhere = await begin();
      const elsewhereForm = readForm(elsewhere.page, 'passkey-form');
      const elsewhereOptions = /id="passkey-form"[^>]*data-options="([^"]+)"/.exec(elsewhere.page)![1]!;
      const foreign = (await (
        await elsewhere.browser.post(new URL(elsewhereOptions, base).href, {
          csrf: elsewhereForm.fields.csrf!,
        })
      ).json()) as RequestOptions;
      options = (await steps.options()).json!;
      out = await steps.post(key.create(options, { challenge: foreign.challenge }));
      assert.equal(codeOf(out.html), 'passkey.verification_failed');
      await unchanged();

      // From another site.
      options = (await steps.options()).json!;
      out = await steps.post(key.create(options, { origin: 'https://phish.example' }));
      assert.equal(codeOf(out.html), 'passkey.origin_mismatch');
      await unchanged();

      // An authenticator that did not verify its user (presence only): not a first factor.
      options = (await steps.options()).json!;
      out = await steps.post(key.create(options, { flags: FLAGS.UP | FLAGS.AT }));
      assert.equal(codeOf(out.html), 'passkey.verification_failed');
      await unchanged();

      // A challenge past its five minutes.
      options = (await steps.options()).json!;
      clock.set(new Date(new Date(START).getTime() + 6 * 60_000));
      try {
        out = await steps.post(key.create(options));
      } finally {
        clock.set(START);
      }
      assert.equal(codeOf(out.html), 'passkey.challenge_missing');
      await unchanged();

      // Another interaction of the same browser, whose address nobody proved: no step to take.
      const other = await begin(flow.browser);
      const otherPage = await flow.browser.post(`${other.signInUrl}/sign-up/passkey/register`, {
        csrf: readForm(other.page).fields.csrf!,
        response: JSON.stringify(key.create(options)),
      });
      assert.equal(otherPage.status, 400);
      assert.equal(codeOf(await otherPage.text()), 'signup.passkey_step_expired');
      const otherOptions = await flow.browser.post(`${other.signInUrl}/sign-up/passkey/options`, {
        csrf: readForm(other.page).fields.csrf!,
      });
      assert.equal(otherOptions.status, 400);
      await unchanged();

      // The refusals are audited as failures of the registration.
      const refusals = (await audit()).filter(
        (e) => e.action === 'passkey.registered' && e.outcome === 'failure',
      );
      assert.ok(refusals.length >= 6);

      // Then the right response still works, once; its replay finds no step left.
      options = (await steps.options()).json!;
      const good = key.create(options);
      out = await steps.post(good);
      assert.match(h1(out.html) ?? '', /recovery codes/i);
      const replay = await steps.post(good);
      assert.notEqual(replay.res.status, 200);
      assert.equal((await userOf(email))?.passkeys.length, 1);
    });

    /** A whole passkey sign-up by the code; answers the account's passkey. */
    async function signedUp(email: string) {
      const flow = await passkeySignUp(email);
      const proved = await typeCode(flow, (await mailTo(email)).code!);
      const steps = ceremony(flow, proved.html);
      const key = authenticator();
      const out = await steps.post(key.create((await steps.options()).json!));
      assert.match(h1(out.html) ?? '', /recovery codes/i);
      return { key, flow, html: out.html };
    }

    test('a tenant that requires a second factor takes the passkey as both: no authenticator app is asked, the token says aal2', async () => {
      await configure({ signUp: 'on', mfa: 'required' });
      try {
        const { flow, html } = await signedUp('required@acme.test');
        const { action, fields } = readForm(html);
        const claims = await finish(flow, await flow.browser.post(new URL(action, base).href, fields));
        assert.equal(claims.acr, 'urn:orthid:acr:aal2');
        assert.deepEqual(claims.amr, ['hwk', 'user', 'mfa']);
      } finally {
        await configure({ signUp: 'on', mfa: 'off' });
      }
    });

    test('"Forgot password?" gives a passkey account its first password; the password then leads to the passkey as second step', async () => {
      const email = 'first.password@acme.test';
      await signedUp(email);
      const flow = await begin();
      const forgot = /<a href="([^"]*\/password\/forgot[^"]*)">/.exec(flow.page)?.[1];
      assert.ok(forgot);
      const forgotPage = await (await flow.browser.get(new URL(forgot, base).href)).text();
      const request = readForm(forgotPage);
      await flow.browser.post(new URL(request.action, base).href, { ...request.fields, email });
      await app.mailWorker.runOnce();
      const text = smtp.received.filter((m) => m.rcptTo.includes(email)).at(-1)?.parsed.text ?? '';
      const link = /(http:\/\/\S+\/password\/reset\?token=[A-Za-z0-9_-]+)/.exec(text)?.[1];
      assert.ok(link, 'a reset mail arrived');
      const choose = await (await flow.browser.get(link)).text();
      const form = readForm(choose);
      const done = await flow.browser.post(new URL(form.action, base).href, {
        ...form.fields,
        password: PASSWORD,
        confirm: PASSWORD,
      });
      assert.equal(done.status, 200);
      assert.notEqual((await userOf(email))?.row.password_hash, null);

      const again = await begin();
      const signIn = readForm(again.page);
      const posted = await again.browser.post(new URL(signIn.action, base).href, {
        ...signIn.fields,
        email,
        password: PASSWORD,
      });
      const html = await posted.text();
      assert.equal(posted.status, 200);
      assert.match(html, /id="passkey-form"/, 'the passkey is asked as the second step');
    });

    test('an address that has an account gets the same page and an "account exists" mail; nothing changes', async () => {
      const before = await userOf(EXISTING);
      const fresh = await passkeySignUp('someone.new@acme.test');
      const taken = await passkeySignUp(EXISTING);
      assert.equal(taken.posted.status, fresh.posted.status);
      const strip = (html: string) =>
        html.replace(/value="[^"]*"/g, 'value=""').replace(/\/interaction\/[^/"]+/g, '/interaction/x');
      assert.equal(strip(taken.html), strip(fresh.html));
      const mail = await mailTo(EXISTING);
      assert.equal(mail.subject, 'You already have an account at Acme');
      assert.equal(mail.code, undefined);
      const after = await userOf(EXISTING);
      assert.equal(after?.row.password_hash, before?.row.password_hash);
      assert.equal(after?.passkeys.length, 0);
    });

    test('the domain allow-list applies to a passkey sign-up as to a password one', async () => {
      await configure({ signUp: 'on', signUpDomains: ['acme.test'] });
      try {
        const refused = await passkeySignUp('eve@elsewhere.test');
        assert.equal(refused.posted.status, 403);
        assert.equal(codeOf(refused.html), 'signup.domain_not_allowed');
        assert.equal(await userOf('eve@elsewhere.test'), undefined);
      } finally {
        await configure({ signUp: 'on', signUpDomains: [] });
      }
    });

    test('the mailed link proves the address in the sign-up’s own browser and leads to the passkey; elsewhere it changes nothing', async () => {
      const email = 'linked@acme.test';
      const flow = await passkeySignUp(email);
      const { link } = await mailTo(email);
      assert.ok(link);

      // On another device: the link's page names the sign-up's interaction, which is not there.
      const phone = browserFrom();
      const page = await (await phone.get(link)).text();
      const form = readForm(page);
      assert.match(form.action, /\/interaction\/[^/]+\/sign-up\/passkey\/link$/);
      const elsewhere = await phone.post(new URL(form.action, base).href, form.fields);
      assert.ok(elsewhere.status >= 400 && elsewhere.status < 500);
      // The standalone form of a password sign-up's link does not take it either.
      const standalone = await phone.post(`${base}/t/acme/sign-up/verify`, form.fields);
      assert.equal(codeOf(await standalone.text()), 'signup.passkey_step_expired');
      assert.equal((await userOf(email))?.row.awaiting_verification, true);

      // In the browser that signed up: the passkey step.
      const opened = await (await flow.browser.get(link)).text();
      const confirm = readForm(opened);
      const proved = await flow.browser.post(new URL(confirm.action, base).href, confirm.fields);
      const html = await proved.text();
      assert.equal(h1(html), 'Create your passkey');
      const steps = ceremony(flow, html);
      const out = await steps.post(authenticator().create((await steps.options()).json!));
      assert.match(h1(out.html) ?? '', /recovery codes/i);
      assert.equal((await userOf(email))?.row.email_verified, true);
    });

    test('no address, code or link secret reaches the log', () => {
      assert.ok(logged.length > 0, 'the server logged its requests');
      assert.ok(secrets.size > 5);
      for (const secret of secrets) {
        // A code is six digits: only a standalone one counts (not part of a timestamp).
        const found = /^\d{6}$/.test(secret)
          ? new RegExp(`(?<![\\d.])${secret}(?![\\d.])`).test(logged)
          : logged.includes(secret);
        assert.equal(found, false, 'a secret was logged');
      }
    });
  });
