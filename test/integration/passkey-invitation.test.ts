// Accepting an invitation with a passkey over real HTTP, a real PostgreSQL and a real SMTP
// server, with an authenticator in software (real P-256 signatures): the account made with its
// passkey and no password, its membership, the link used once, recovery codes, passwordless
// sign-in; a reused, forged or expired link refused as on the password path; a failed ceremony
// leaving no account and a link that still works.
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

const PASSWORD = 'a long enough passphrase for an invitation';
const START = '2031-06-01T09:00:00Z';

for (const driver of DRIVERS)
  describe(`an invitation accepted with a passkey (${driver}, real SMTP)`, { timeout: 300_000 }, () => {
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
    /** Every address and link secret the tests handle: none may reach a log line. */
    const secrets = new Set<string>();
    const browserFrom = () => new CookieBrowser({ 'x-forwarded-for': `198.51.100.${nextAddress++}` });

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
        await app.rbac.organisations.create(tx, tenant.id, { name: 'Sales' }, 'test');
        const created = await app.clients.create(
          tx,
          tenant.id,
          { name: 'Acme Web', grantTypes: ['authorization_code'], redirectUris: [`${base}/cb`] },
          'test',
        );
        client = { client_id: created.clientId, client_secret: created.clientSecret! };
      });
      // Invitations work with sign-up off: the link is the permission.
      await runOperation(app, 'tenant.configure', { slug: 'acme', signUp: 'off' });
      app.oidc.invalidate(tenant.id);
    });

    after(async () => {
      await server?.close();
      await app?.close();
      await smtp?.close();
    });

    const authenticator = () => new SoftwarePasskey(base, '127.0.0.1');
    const codeOf = (html: string) => /data-code="([^"]+)"/.exec(html)?.[1];
    const h1 = (html: string) => /<h1>([^<]*)<\/h1>/.exec(html)?.[1];

    /** Invites an address into Sales; answers the invitation and the mailed link. */
    async function invite(email: string) {
      secrets.add(email);
      const invited = (await runOperation(app, 'user.invite', {
        tenant: 'acme',
        email,
        organisation: 'Sales',
      })) as { id: string; organisationId: string };
      await app.mailWorker.runOnce();
      const text = smtp.received.filter((m) => m.rcptTo.includes(email)).at(-1)?.parsed.text ?? '';
      const link = /(http\S+\/invitation\?token=\S+)/.exec(text)?.[1];
      assert.ok(link, 'the invitation mail arrived');
      secrets.add(new URL(link).searchParams.get('token')!);
      return { ...invited, link };
    }

    /** From the mailed link to the create-passkey page, by the "with a passkey" choice. */
    async function toPasskeyStep(link: string, name = 'Grace Hopper', browser = browserFrom()) {
      const invitationPage = await (await browser.get(link)).text();
      assert.match(invitationPage, /name="password"/, 'the password form is still there');
      const offer =
        /<p class="links" id="passkey-invitation" data-webauthn-only hidden><a href="([^"]+)"/.exec(
          invitationPage,
        )?.[1];
      assert.ok(offer, 'the invitation page offers a passkey, shown where the script finds WebAuthn');
      assert.match(invitationPage, /<script src="[^"]+\/assets\/passkeys\.js" defer>/);
      const namePage = await browser.get(new URL(offer.replace(/&amp;/g, '&'), base).href);
      assert.equal(namePage.status, 200);
      const nameHtml = await namePage.text();
      assert.doesNotMatch(nameHtml, /name="password"/, 'no password is asked');
      const form = readForm(nameHtml);
      const posted = await browser.post(new URL(form.action, base).href, { ...form.fields, name });
      return { browser, status: posted.status, html: await posted.text() };
    }

    /** The create-passkey page's ceremony: its options, and a post of a response. */
    function ceremony(browser: CookieBrowser, html: string) {
      const { action, fields } = readForm(html, 'passkey-form');
      const optionsUrl = /data-options="([^"]+)"/.exec(html)![1]!;
      return {
        fields,
        // What the page's script sends: the form's CSRF token and the invitation it names.
        async options(): Promise<{ status: number; json?: CreationOptions & Record<string, unknown> }> {
          const res = await browser.post(new URL(optionsUrl, base).href, {
            csrf: fields.csrf!,
            token: fields.token!,
          });
          return {
            status: res.status,
            json: res.ok ? ((await res.json()) as CreationOptions & Record<string, unknown>) : undefined,
          };
        },
        async post(response: unknown) {
          const res = await browser.post(new URL(action, base).href, {
            ...fields,
            response: typeof response === 'string' ? response : JSON.stringify(response),
          });
          return { res, html: await res.text() };
        },
      };
    }

    /** The account at an address, as far as these tests look (no sealed column, so no failure prints one). */
    const userOf = (email: string) =>
      withTenant(app.db, tenant.id, async (tx) => {
        const row = await app.users.findByEmail(tx, tenant.id, email);
        if (!row) return undefined;
        return {
          id: row.id,
          hasPassword: row.password_hash !== null,
          emailVerified: row.email_verified,
          awaitingVerification: row.awaiting_verification,
          passkeys: (await app.passkeys.list(tx, row.id)).length,
          organisations: (await app.rbac.memberships.listOfUser(tx, row.id, { limit: 50 })).items.map(
            (m) => m.organisationId,
          ),
        };
      });

    const invitationStatus = (id: string) =>
      withTenant(app.db, tenant.id, async (tx) => (await app.invitations.get(tx, tenant.id, id)).status);

    const audit = () =>
      withTenant(app.db, tenant.id, async (tx) =>
        readAudit(tx, await app.tenantKeys.forTenant(tx, tenant.id), { limit: 1000 }),
      );

    async function begin() {
      const config = await oidc.discovery(
        new URL(`${base}/t/acme`),
        client.client_id,
        client.client_secret,
        undefined,
        { execute: [oidc.allowInsecureRequests] },
      );
      const browser = browserFrom();
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
      return { config, verifier, state, browser, page: await login.response.text() };
    }

    /** Passwordless sign-in from the sign-in page of a new authorization request; answers the ID token's claims. */
    async function signInWith(key: SoftwarePasskey) {
      const flow = await begin();
      const form = readForm(flow.page, 'passkey-form');
      const optionsUrl = /id="passkey-form"[^>]*data-options="([^"]+)"/.exec(flow.page)![1]!;
      const request = (await (
        await flow.browser.post(new URL(optionsUrl, base).href, { csrf: form.fields.csrf! })
      ).json()) as RequestOptions;
      const posted = await flow.browser.post(new URL(form.action, base).href, {
        ...form.fields,
        response: JSON.stringify(key.get(request)),
      });
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

    let accepted:
      | {
          link: string;
          email: string;
          /** A second tab that reached the passkey step with the same link before it was used. */
          stale: { browser: CookieBrowser; html: string; passwordForm: ReturnType<typeof readForm> };
        }
      | undefined;

    test('the passkey makes the account: no password, verified, in the organisation, the link used; recovery codes; then passwordless sign-in', async () => {
      const email = 'grace@acme.test';
      const invited = await invite(email);
      const step = await toPasskeyStep(invited.link);
      assert.equal(step.status, 200);
      assert.equal(h1(step.html), 'Create your passkey');
      const staleTab = await toPasskeyStep(invited.link, 'Grace B. Hopper');
      const passwordForm = readForm(await (await staleTab.browser.get(invited.link)).text());
      // Nothing is stored before the ceremony: no account, and the link still works.
      assert.equal(await userOf(email), undefined);
      assert.equal(await invitationStatus(invited.id), 'pending');

      const key = authenticator();
      const steps = ceremony(step.browser, step.html);
      const { status, json: options } = await steps.options();
      assert.equal(status, 200);
      assert.ok(options);
      const selection = options.authenticatorSelection as Record<string, string>;
      assert.equal(selection.residentKey, 'required');
      assert.equal(selection.userVerification, 'required');
      assert.equal(options.user.name, email);
      assert.equal(await userOf(email), undefined, 'the options make no account either');

      const { res, html } = await steps.post(key.create(options));
      assert.equal(res.status, 200);
      assert.match(h1(html) ?? '', /recovery codes/i);
      const codes = [...html.matchAll(/<li><code>([^<]+)<\/code><\/li>/g)].map((m) => m[1]!);
      assert.ok(codes.length >= 8, 'the first recovery codes are shown');
      for (const code of codes) secrets.add(code);

      const user = await userOf(email);
      assert.ok(user);
      assert.equal(user.hasPassword, false, 'no password is stored');
      assert.equal(user.emailVerified, true, 'the invitation link proved the address');
      assert.equal(user.awaitingVerification, false);
      assert.equal(user.passkeys, 1);
      assert.deepEqual(user.organisations, [invited.organisationId]);
      assert.equal(await invitationStatus(invited.id), 'accepted');

      const events = await audit();
      const acceptedEvent = events.find(
        (e) => e.action === 'invitation.accepted' && e.target === `invitation:${invited.id}`,
      );
      assert.equal(acceptedEvent?.actor, `user:${user.id}`);
      assert.equal(acceptedEvent?.details?.method, 'passkey');
      assert.equal(acceptedEvent?.details?.organisationId, invited.organisationId);
      const created = events.find((e) => e.action === 'user.created' && e.target === `user:${user.id}`);
      assert.equal(created?.actor, `invitation:${invited.id}`);
      const registered = events.find(
        (e) => e.action === 'passkey.registered' && e.target === `user:${user.id}`,
      );
      assert.equal(registered?.outcome, 'success');
      const actor = `user:${user.id}`;
      for (const action of ['membership.added', 'user.mfa_recovery_codes_regenerated']) {
        const outcome = events.find((e) => e.action === action && e.actor === actor)?.outcome;
        assert.equal(outcome, 'success', `${action} is audited`);
      }

      // "I have saved them": the account is ready, to sign in from the application with the passkey.
      const done = readForm(html, 'continue');
      const ready = await step.browser.post(new URL(done.action, base).href, done.fields);
      assert.equal(ready.status, 200);
      const readyHtml = await ready.text();
      assert.equal(h1(readyHtml), 'Your account is ready');
      assert.match(readyHtml, /with your passkey/);

      const claims = await signInWith(key);
      assert.equal(claims.sub, user.id);
      assert.deepEqual(claims.amr, ['hwk', 'user', 'mfa']);
      assert.equal(claims.email_verified, true);
      accepted = { link: invited.link, email, stale: { ...staleTab, passwordForm } };
    });

    test('a used link is refused on every step with the password path’s page and code; nothing changes', async () => {
      assert.ok(accepted, 'runs after the acceptance');
      const before = await userOf(accepted.email);
      const { stale } = accepted;
      const passwordPath = await stale.browser.get(accepted.link);
      const passwordHtml = await passwordPath.text();
      assert.equal(codeOf(passwordHtml), 'account.link_used');

      const passkeyPage = await stale.browser.get(
        `${base}/t/acme/invitation/passkey?token=${new URL(accepted.link).searchParams.get('token')}`,
      );
      assert.equal(passkeyPage.status, passwordPath.status);
      assert.equal(await passkeyPage.text(), passwordHtml, 'the same page as the password path');

      // The tab that reached the passkey step before: its options and its ceremony are refused.
      const steps = ceremony(stale.browser, stale.html);
      const options = await steps.options();
      assert.equal(options.status, passwordPath.status);
      const fake = authenticator().create({
        challenge: 'AAAA',
        rp: { name: 'Acme' },
        user: { id: 'AAAA', name: accepted.email },
      });
      const posted = await steps.post(fake);
      assert.equal(posted.res.status, passwordPath.status);
      assert.equal(codeOf(posted.html), 'account.link_used');
      const nameStep = await stale.browser.post(`${base}/t/acme/invitation/passkey`, {
        ...steps.fields,
        name: 'Someone Else',
      });
      assert.equal(codeOf(await nameStep.text()), 'account.link_used');
      // And the password form of the same link, as before.
      const password = await stale.browser.post(new URL(stale.passwordForm.action, base).href, {
        ...stale.passwordForm.fields,
        name: 'Someone Else',
        password: PASSWORD,
      });
      assert.equal(codeOf(await password.text()), 'account.link_used');
      assert.deepEqual(await userOf(accepted.email), before);
    });

    test('a forged or expired link gets the password path’s page and code', async () => {
      const browser = browserFrom();
      const forgedPassword = await browser.get(`${base}/t/acme/invitation?token=forged-token`);
      const forgedPasskey = await browser.get(`${base}/t/acme/invitation/passkey?token=forged-token`);
      assert.equal(forgedPasskey.status, forgedPassword.status);
      const forgedHtml = await forgedPassword.text();
      assert.equal(codeOf(forgedHtml), 'account.link_invalid');
      assert.equal(await forgedPasskey.text(), forgedHtml);
      const forgedPost = await browser.post(`${base}/t/acme/invitation/passkey/register`, {
        token: 'forged-token',
        csrf: 'forged',
        name: 'Mallory',
        response: '{}',
      });
      assert.equal(codeOf(await forgedPost.text()), 'account.link_invalid');

      const email = 'late@acme.test';
      const invited = await invite(email);
      const step = await toPasskeyStep(invited.link);
      const steps = ceremony(step.browser, step.html);
      const options = (await steps.options()).json!;
      clock.set(new Date(new Date(START).getTime() + 8 * 24 * 3600_000));
      try {
        const expiredPassword = await browserFrom().get(invited.link);
        const expiredHtml = await expiredPassword.text();
        assert.equal(codeOf(expiredHtml), 'account.link_expired');
        const out = await steps.post(authenticator().create(options));
        assert.equal(out.res.status, expiredPassword.status);
        assert.equal(codeOf(out.html), 'account.link_expired');
      } finally {
        clock.set(START);
      }
      assert.equal(await userOf(email), undefined);
    });

    test('a failed ceremony leaves no account and an unused link; the passkey can be tried again, or the password path taken', async () => {
      const email = 'katherine@acme.test';
      const invited = await invite(email);
      const step = await toPasskeyStep(invited.link, 'Katherine Johnson');
      const steps = ceremony(step.browser, step.html);
      const key = authenticator();
      const unchanged = async () => {
        assert.equal(await userOf(email), undefined, 'no account is left behind');
        assert.equal(await invitationStatus(invited.id), 'pending', 'the invitation is not used');
      };

      // A response that is no response: the page explains and offers the step again.
      await steps.options();
      let out = await steps.post('{"id":"x"}');
      assert.equal(out.res.status, 401);
      assert.equal(codeOf(out.html), 'passkey.verification_failed');
      assert.equal(h1(out.html), 'Create your passkey');
      await unchanged();

      // Made for another site.
      let options = (await steps.options()).json!;
      out = await steps.post(key.create(options, { origin: 'https://phish.example' }));
      assert.equal(codeOf(out.html), 'passkey.origin_mismatch');
      await unchanged();

      // An authenticator that did not verify its user: not enough for an account's only credential.
      options = (await steps.options()).json!;
      out = await steps.post(key.create(options, { flags: FLAGS.UP | FLAGS.AT }));
      assert.equal(codeOf(out.html), 'passkey.verification_failed');
      await unchanged();

      // A response to no challenge (the failure used the last one up).
      out = await steps.post(key.create(options));
      assert.equal(codeOf(out.html), 'passkey.challenge_missing');
      await unchanged();

      // A passkey another account holds already: refused before any account is made.
      const other = await invite('dorothy@acme.test');
      const otherStep = await toPasskeyStep(other.link, 'Dorothy Vaughan');
      const otherSteps = ceremony(otherStep.browser, otherStep.html);
      const shared = authenticator();
      const first = await otherSteps.post(shared.create((await otherSteps.options()).json!));
      assert.match(h1(first.html) ?? '', /recovery codes/i);
      options = (await steps.options()).json!;
      out = await steps.post(shared.create(options));
      assert.equal(codeOf(out.html), 'passkey.already_registered');
      await unchanged();

      // The refusals are audited as failed registrations.
      const refusals = (await audit()).filter(
        (e) => e.action === 'passkey.registered' && e.outcome === 'failure',
      );
      assert.ok(refusals.length >= 5);

      // The link still works: by the password path here (the passkey path works as the first test shows).
      const passwordForm = readForm(await (await browserFrom().get(invited.link)).text());
      const byPassword = await browserFrom().post(new URL(passwordForm.action, base).href, {
        ...passwordForm.fields,
        name: 'Katherine Johnson',
        password: PASSWORD,
      });
      assert.equal(byPassword.status, 200);
      assert.equal(h1(await byPassword.text()), 'Your account is ready');
      const user = await userOf(email);
      assert.equal(user?.hasPassword, true);
      assert.equal(user?.passkeys, 0);
      assert.equal(await invitationStatus(invited.id), 'accepted');
    });

    test('a name the account cannot take is refused before the ceremony; nothing is stored', async () => {
      const email = 'nameless@acme.test';
      const invited = await invite(email);
      const step = await toPasskeyStep(invited.link, '   ');
      assert.equal(step.status, 400);
      assert.equal(codeOf(step.html), 'signup.name_invalid');
      assert.doesNotMatch(step.html, /id="passkey-form"/);
      assert.equal(await userOf(email), undefined);
      assert.equal(await invitationStatus(invited.id), 'pending');
    });

    test('no address, link secret or recovery code reaches the log', () => {
      assert.ok(logged.length > 0, 'the server logged its requests');
      assert.ok(secrets.size > 5);
      for (const secret of secrets) assert.equal(logged.includes(secret), false, 'a secret was logged');
    });
  });
