// Self sign-up and invitations over real HTTP, a real PostgreSQL and a real SMTP server: the
// sign-in page's link, the mailed link and code, the same answer for an address that has an
// account, refused links and codes, allowed domains, throttles, invitations, and clean logs.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { decodeJwt, importJWK, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import { readAudit } from '../../src/audit/audit-log.js';
import { fixedClock } from '../../src/core/clock.js';
import { createLogger } from '../../src/core/logger.js';
import { rotateSigningKey, usableSigningKeys } from '../../src/crypto/signing-keys.js';
import { runOperation } from '../../src/ops/operations.js';
import { buildServer } from '../../src/server/app.js';
import { withTenant } from '../../src/storage/db/database.js';
import { ADMIN_PERMISSION, adminResourceIndicator } from '../../src/tenancy/admin-resource.js';
import { issuerFor, type Tenant } from '../../src/tenancy/tenants.js';
import { ensureAdminClient } from '../helpers/admin-principal.js';
import { CookieBrowser, readForm } from '../helpers/cookie-browser.js';
import { consentToCallback } from '../helpers/hosted-sign-in.js';
import { createTestOrthId, DRIVERS, type TestOrthId } from '../helpers/orthid.js';
import { freePort } from '../helpers/postgres.js';
import { startTestSmtpServer, type TestSmtpServer } from '../helpers/smtp-server.js';

const PASSWORD = 'a long enough passphrase for sign-up';
const EXISTING = 'ann@acme.test';

function capturedLog() {
  let text = '';
  const stream = new Writable({
    write(chunk, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  return { log: createLogger('trace', stream), text: () => text };
}

for (const driver of DRIVERS)
  describe(`self sign-up and invitations (${driver}, real SMTP)`, { timeout: 300_000 }, () => {
    let smtp: TestSmtpServer;
    let app: TestOrthId;
    let server: FastifyInstance;
    let base: string;
    let tenant: Tenant;
    let client: { client_id: string; client_secret: string };
    const clock = fixedClock('2031-06-01T09:00:00Z');
    const logs = capturedLog();
    /** Every secret and address the tests handle: none may reach a log line. */
    const secrets = new Set<string>();
    let nextAddress = 10;
    /** Each test signs up from its own client address (the server trusts the loopback proxy). */
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
      server = await buildServer({ ...app, log: logs.log });
      await server.listen({ host: '127.0.0.1', port });
      tenant = await app.tenants.create({ slug: 'acme', displayName: 'Acme', actor: 'test' });
      await withTenant(app.db, tenant.id, async (tx) => {
        await app.users.create(tx, tenant.id, { email: EXISTING, password: PASSWORD }, 'test');
        await app.rbac.organisations.create(tx, tenant.id, { name: 'Sales' }, 'test');
        const created = await app.clients.create(
          tx,
          tenant.id,
          { name: 'Acme Web', grantTypes: ['authorization_code'], redirectUris: [`${base}/cb`] },
          'test',
        );
        client = { client_id: created.clientId, client_secret: created.clientSecret! };
      });
    });

    after(async () => {
      await server?.close();
      await app?.close();
      await smtp?.close();
    });

    const configure = async (settings: Record<string, unknown>) => {
      const out = await runOperation(app, 'tenant.configure', { slug: 'acme', ...settings });
      // What a replica's change listener does on the notice; this process runs none.
      app.oidc.invalidate(tenant.id);
      return out as { signUp: string; signUpDomains: string[] };
    };

    /** Starts an authorization request; returns the sign-in page and what finishing it needs. */
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

    const signUpLink = (page: string) => /href="([^"]*\/sign-up)"/.exec(page)?.[1];

    async function signUp(email: string, name = 'Ada Lovelace', flow?: Awaited<ReturnType<typeof begin>>) {
      const started = flow ?? (await begin());
      const href = signUpLink(started.page);
      assert.ok(href, 'the sign-in page links to sign-up');
      const form = await started.browser.get(new URL(href, base).href);
      assert.equal(form.status, 200);
      assert.match(
        form.headers.get('content-security-policy') ?? '',
        /default-src 'none'.*frame-ancestors 'none'/,
      );
      assert.equal(form.headers.get('x-frame-options'), 'DENY');
      const { action, fields } = readForm(await form.text());
      secrets.add(email);
      const posted = await started.browser.post(new URL(action, base).href, {
        ...fields,
        name,
        email,
        password: PASSWORD,
      });
      return { ...started, posted, html: await posted.text() };
    }

    /** Delivers the queue and returns the newest mail to `to`. */
    async function mailTo(to: string) {
      await app.mailWorker.runOnce();
      const mail = smtp.received.filter((m) => m.rcptTo.includes(to)).at(-1);
      assert.ok(mail, 'a mail arrived');
      const text = mail.parsed.text ?? '';
      const link = /(http\S+\/sign-up\/verify\?token=\S+)/.exec(text)?.[1];
      const invitation = /(http\S+\/invitation\?token=\S+)/.exec(text)?.[1];
      const code = /^(\d{6})$/m.exec(text)?.[1];
      for (const s of [link, invitation, code]) if (s) secrets.add(s);
      if (link) secrets.add(new URL(link).searchParams.get('token')!);
      if (invitation) secrets.add(new URL(invitation).searchParams.get('token')!);
      return { subject: mail.parsed.subject ?? '', text, link, invitation, code };
    }

    const codeOf = (html: string) => /data-code="([^"]+)"/.exec(html)?.[1];

    /** Signs in on the request's own sign-in page and returns the ID token's claims. */
    async function signIn(flow: Awaited<ReturnType<typeof begin>>, email: string) {
      const page = await flow.browser.get(flow.signInUrl);
      const { action, fields } = readForm(await page.text());
      const posted = await flow.browser.post(new URL(action, base).href, {
        ...fields,
        email,
        password: PASSWORD,
      });
      return posted;
    }

    async function finish(flow: Awaited<ReturnType<typeof begin>>, posted: Response) {
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

    const audit = () =>
      withTenant(app.db, tenant.id, async (tx) =>
        readAudit(tx, await app.tenantKeys.forTenant(tx, tenant.id), { limit: 1000 }),
      );

    test('with sign-up off (the default) the sign-in page offers none and the page is a clear 404', async () => {
      const shown = await configure({});
      assert.equal(shown.signUp, 'off');
      const flow = await begin();
      assert.equal(signUpLink(flow.page), undefined);
      const page = await flow.browser.get(`${flow.signInUrl}/sign-up`);
      assert.equal(page.status, 404);
      assert.equal(codeOf(await page.text()), 'signup.closed');
    });

    test('sign-up mails a link; until it is opened the account cannot sign in; then sign-in completes', async () => {
      assert.equal((await configure({ signUp: 'on' })).signUp, 'on');
      const email = 'grace@acme.test';
      const flow = await signUp(email, 'Grace Hopper');
      assert.equal(flow.posted.status, 200);
      assert.match(flow.html, /<h1>Check your mail<\/h1>/);
      const mail = await mailTo(email);
      assert.equal(mail.subject, 'Verify your email address for Acme');
      assert.ok(mail.link?.startsWith(`${base}/t/acme/sign-up/verify?token=`));
      assert.ok(mail.code);

      const early = await signIn(flow, email);
      assert.equal(early.status, 403);
      const earlyPage = await early.text();
      assert.equal(codeOf(earlyPage), 'signup.email_unverified');
      assert.match(earlyPage, /Send a new mail/);

      // Opened on another device: the page asks first (a mail scanner's GET verifies nothing).
      const phone = browserFrom();
      const opened = await phone.get(mail.link!);
      assert.equal(opened.status, 200);
      const confirm = readForm(await opened.text());
      const done = await phone.post(new URL(confirm.action, base).href, confirm.fields);
      assert.equal(done.status, 200);
      assert.match(await done.text(), /Your address is verified/);

      const claims = await finish(flow, await signIn(flow, email));
      assert.equal(claims.email, email);
      assert.equal(claims.email_verified, true);

      const events = await audit();
      const signedUp = events.find((e) => e.action === 'user.signed_up' && e.outcome === 'success');
      assert.ok(signedUp);
      assert.equal(signedUp.actor, signedUp.target);
      const verified = events.find((e) => e.action === 'user.email_verified');
      assert.equal(verified?.actor, signedUp.target);
      assert.deepEqual(verified?.details, { method: 'link' });

      // The link worked once.
      const again = await phone.get(mail.link!);
      assert.equal(again.status, 400);
      assert.equal(codeOf(await again.text()), 'account.link_used');
    });

    test('the code from the mail, typed on the page, verifies too; a wrong code is refused with a stable code', async () => {
      const email = 'katherine@acme.test';
      const flow = await signUp(email, 'Katherine Johnson');
      const mail = await mailTo(email);
      const form = readForm(flow.html);
      const wrong = String((Number(mail.code) + 1) % 1_000_000).padStart(6, '0');
      const refused = await flow.browser.post(new URL(form.action, base).href, {
        ...form.fields,
        code: wrong,
      });
      assert.equal(refused.status, 400);
      assert.equal(codeOf(await refused.text()), 'account.code_invalid');
      const accepted = await flow.browser.post(new URL(form.action, base).href, {
        ...form.fields,
        code: mail.code!,
      });
      assert.equal(accepted.status, 200);
      const page = await accepted.text();
      const next = /href="([^"]+)">Continue to sign in/.exec(page)?.[1];
      assert.equal(next && new URL(next, base).href, flow.signInUrl);
      const claims = await finish(flow, await signIn(flow, email));
      assert.equal(claims.email_verified, true);
      // The mailed link of a verified address is spent with it.
      const late = await browserFrom().get(mail.link!);
      assert.equal(codeOf(await late.text()), 'account.link_used');
    });

    test('an address that has an account gets the same page, and a mail saying so instead', async () => {
      const fresh = await signUp('hedy@acme.test', 'Hedy Lamarr');
      const taken = await signUp(EXISTING, 'Hedy Lamarr');
      assert.equal(taken.posted.status, fresh.posted.status);
      const normalised = (html: string) =>
        html
          .replace(/name="(csrf|token)" value="[^"]*"/g, 'name="$1" value=""')
          .replace(/name="email" value="[^"]*"/g, 'name="email" value=""')
          .replace(/\/interaction\/[^/]+\//g, '/interaction/uid/');
      assert.equal(normalised(taken.html), normalised(fresh.html));
      const mail = await mailTo(EXISTING);
      assert.equal(mail.subject, 'You already have an account at Acme');
      assert.match(mail.text, /Forgot password\?/);
      assert.equal(mail.link, undefined);
      assert.equal(mail.code, undefined);
      // The code form of that page verifies nothing, and says so as for any wrong code.
      const form = readForm(taken.html);
      const tried = await taken.browser.post(new URL(form.action, base).href, {
        ...form.fields,
        code: '123456',
      });
      assert.equal(codeOf(await tried.text()), 'account.code_invalid');
      const events = await audit();
      assert.ok(
        events.some(
          (e) =>
            e.action === 'user.signed_up' &&
            e.outcome === 'failure' &&
            (e.details as { reason?: string }).reason === 'account_exists',
        ),
      );
    });

    test('a forged or expired link is refused with a stable code and verifies nothing', async () => {
      const email = 'mary@acme.test';
      await signUp(email, 'Mary Jackson');
      const mail = await mailTo(email);
      const browser = browserFrom();
      const secret = new URL(mail.link!).searchParams.get('token')!;
      const forged = `${secret.slice(0, -1)}${secret.endsWith('A') ? 'B' : 'A'}`;
      for (const token of [forged, 'not-a-token', '']) {
        const page = await browser.get(`${base}/t/acme/sign-up/verify?token=${encodeURIComponent(token)}`);
        assert.equal(page.status, 400);
        assert.equal(codeOf(await page.text()), 'account.link_invalid');
      }
      // A confirm form posted without the page's CSRF token changes nothing.
      const noCsrf = await browser.post(`${base}/t/acme/sign-up/verify`, { token: secret });
      assert.equal(noCsrf.status, 403);
      const opened = readForm(await (await browser.get(mail.link!)).text());
      clock.set(new Date(clock.now().getTime() + 25 * 3600 * 1000));
      const expired = await browser.post(new URL(opened.action, base).href, opened.fields);
      assert.equal(expired.status, 400);
      assert.equal(codeOf(await expired.text()), 'account.link_expired');
      const user = await withTenant(app.db, tenant.id, (tx) => app.users.findByEmail(tx, tenant.id, email));
      assert.equal(user?.email_verified, false);
      assert.equal(user?.awaiting_verification, true);
    });

    test('allowed domains: another domain gets a clear page with a stable code and no account', async () => {
      assert.deepEqual((await configure({ signUpDomains: ['Acme.test', 'example.org'] })).signUpDomains, [
        'acme.test',
        'example.org',
      ]);
      await assert.rejects(configure({ signUpDomains: ['not a domain'] }), /not a domain name/);
      const refused = await signUp('eve@elsewhere.test', 'Eve');
      assert.equal(refused.posted.status, 403);
      assert.equal(codeOf(refused.html), 'signup.domain_not_allowed');
      const user = await withTenant(app.db, tenant.id, (tx) =>
        app.users.findByEmail(tx, tenant.id, 'eve@elsewhere.test'),
      );
      assert.equal(user, undefined);
      const allowed = await signUp('dorothy@example.org', 'Dorothy Vaughan');
      assert.equal(allowed.posted.status, 200);
      await configure({ signUpDomains: [] });
    });

    test('a password the policy refuses is said on the form, and no account is made', async () => {
      const started = await begin();
      const form = await started.browser.get(new URL(signUpLink(started.page)!, base).href);
      const { action, fields } = readForm(await form.text());
      const posted = await started.browser.post(new URL(action, base).href, {
        ...fields,
        name: 'Short',
        email: 'short@acme.test',
        password: 'short',
      });
      assert.equal(posted.status, 400);
      assert.equal(codeOf(await posted.text()), 'password.too_short');
      assert.equal(
        await withTenant(app.db, tenant.id, (tx) => app.users.findByEmail(tx, tenant.id, 'short@acme.test')),
        undefined,
      );
    });

    test('sign-up and resend are throttled per address and per client address', async () => {
      const email = 'flood@acme.test';
      // Three mails an hour per address, whoever asks and whether or not it has an account.
      for (let i = 0; i < 3; i++) assert.equal((await signUp(email)).posted.status, 200);
      const fourth = await signUp(email);
      assert.equal(fourth.posted.status, 429);
      assert.equal(codeOf(fourth.html), 'signup.throttled');
      assert.ok(Number(fourth.posted.headers.get('retry-after')) > 0);

      // One client address: a few are free, then it waits.
      const browser = browserFrom();
      const statuses: number[] = [];
      for (let i = 0; i < 7; i++) {
        statuses.push((await signUp(`spray${i}@acme.test`, 'Spray', await begin(browser))).posted.status);
      }
      assert.deepEqual(statuses, [200, 200, 200, 200, 200, 200, 429]);
    });

    test('an invitation from the CLI operation is accepted: a verified user and the membership, audited', async () => {
      await configure({ signUp: 'off' });
      const email = 'ida@acme.test';
      secrets.add(email);
      const invited = (await runOperation(app, 'user.invite', {
        tenant: 'acme',
        email,
        organisation: 'Sales',
      })) as { id: string; organisationId: string };
      const mail = await mailTo(email);
      assert.equal(mail.subject, 'You are invited to Acme');
      assert.match(mail.text, /join Sales at Acme/);
      const browser = browserFrom();
      const page = await browser.get(mail.invitation!);
      assert.equal(page.status, 200);
      const form = readForm(await page.text());
      const weak = await browser.post(new URL(form.action, base).href, {
        ...form.fields,
        name: 'Ida',
        password: 'x',
      });
      assert.equal(codeOf(await weak.text()), 'password.too_short');
      const accepted = await browser.post(new URL(form.action, base).href, {
        ...form.fields,
        name: 'Ida Rhodes',
        password: PASSWORD,
      });
      assert.equal(accepted.status, 200);
      assert.match(await accepted.text(), /Your account is ready/);
      const user = await withTenant(app.db, tenant.id, (tx) => app.users.findByEmail(tx, tenant.id, email));
      assert.equal(user?.email_verified, true);
      const memberships = await withTenant(app.db, tenant.id, (tx) =>
        app.rbac.memberships.listOfUser(tx, user!.id, { limit: 50 }),
      );
      assert.deepEqual(
        memberships.items.map((m) => m.organisationId),
        [invited.organisationId],
      );
      const events = await audit();
      assert.equal(events.find((e) => e.action === 'invitation.created')?.actor, 'cli');
      const acceptedEvent = events.find((e) => e.action === 'invitation.accepted');
      assert.equal(acceptedEvent?.actor, `user:${user!.id}`);
      assert.equal(acceptedEvent?.target, `invitation:${invited.id}`);
      const used = await browser.get(mail.invitation!);
      assert.equal(codeOf(await used.text()), 'account.link_used');
      await assert.rejects(
        runOperation(app, 'user.invite', { tenant: 'acme', email }),
        /already has an account/,
      );
    });

    test('an account waiting for its address asks for a new mail after the right password; the old link ends', async () => {
      await configure({ signUp: 'on' });
      const email = 'annie@acme.test';
      const flow = await signUp(email, 'Annie Easley');
      const first = await mailTo(email);
      const waiting = await signIn(flow, email);
      assert.equal(waiting.status, 403);
      const resend = readForm(await waiting.text());
      const resent = await flow.browser.post(new URL(resend.action, base).href, resend.fields);
      assert.equal(resent.status, 200);
      assert.match(await resent.text(), /<h1>Check your mail<\/h1>/);
      const second = await mailTo(email);
      assert.notEqual(second.link, first.link);
      const old = await browserFrom().get(first.link!);
      assert.equal(codeOf(await old.text()), 'account.link_used');
      // Asking for an address with no account waiting answers alike and mails nothing.
      const before = smtp.received.length;
      const other = await flow.browser.post(new URL(resend.action, base).href, {
        ...resend.fields,
        email: 'nobody@acme.test',
      });
      assert.equal(other.status, 200);
      await app.mailWorker.runOnce();
      assert.equal(smtp.received.length, before);
    });

    test('an invitation from the admin API is accepted into its organisation', async () => {
      const key = await withTenant(app.db, tenant.id, async (tx) => {
        const keyring = await app.tenantKeys.forTenant(tx, tenant.id);
        if ((await usableSigningKeys(tx, keyring, clock.now())).length === 0) {
          await rotateSigningKey(tx, keyring, 'EdDSA', clock.now(), 0);
        }
        return (await usableSigningKeys(tx, keyring, clock.now()))[0]!;
      });
      await ensureAdminClient(app.db, tenant.id, 'admin-client', app.config.publicUrl);
      const now = Math.floor(clock.now().getTime() / 1000);
      const token = await new SignJWT({ client_id: 'admin-client', scope: ADMIN_PERMISSION })
        .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt' })
        .setIssuer(issuerFor(app.config.publicUrl, 'acme'))
        .setSubject('admin-client')
        .setAudience(adminResourceIndicator(app.config.publicUrl))
        .setIssuedAt(now)
        .setExpirationTime(now + 600)
        .setJti(randomUUID())
        .sign(await importJWK(key.privateJwk, key.alg));
      const sales = await withTenant(app.db, tenant.id, async (tx) =>
        (await app.rbac.organisations.list(tx, { limit: 10 })).items.find((o) => o.name === 'Sales'),
      );
      const email = 'evelyn@acme.test';
      secrets.add(email);
      const call = (body: unknown) =>
        server.inject({
          method: 'POST',
          url: '/api/v1/tenants/acme/invitations',
          headers: { authorization: `Bearer ${token}` },
          payload: body as Record<string, unknown>,
        });
      const bad = await call({ email: 'not an address' });
      assert.equal(bad.statusCode, 400);
      const unknownOrg = await call({ email, organisationId: randomUUID() });
      assert.equal(unknownOrg.statusCode, 404);
      assert.equal(unknownOrg.json().code, 'organisation.not_found');
      const taken = await call({ email: EXISTING });
      assert.equal(taken.statusCode, 409);
      assert.equal(taken.json().code, 'user.email_taken');
      const created = await call({ email, organisationId: sales!.id });
      assert.equal(created.statusCode, 201);
      assert.equal(created.json().organisationId, sales!.id);
      const mail = await mailTo(email);
      const browser = browserFrom();
      const form = readForm(await (await browser.get(mail.invitation!)).text());
      const accepted = await browser.post(new URL(form.action, base).href, {
        ...form.fields,
        name: 'Evelyn Boyd',
        password: PASSWORD,
      });
      assert.equal(accepted.status, 200);
      const user = await withTenant(app.db, tenant.id, (tx) => app.users.findByEmail(tx, tenant.id, email));
      const memberships = await withTenant(app.db, tenant.id, (tx) =>
        app.rbac.memberships.listOfUser(tx, user!.id, { limit: 50 }),
      );
      assert.deepEqual(
        memberships.items.map((m) => m.organisationId),
        [sales!.id],
      );
      const events = await audit();
      assert.equal(
        events.find(
          (e) => e.action === 'invitation.created' && e.target === `invitation:${created.json().id}`,
        )?.actor,
        'client:admin-client',
      );
    });

    test('no address, link, token or code reaches the log', () => {
      const text = logs.text();
      assert.ok(text.length > 0, 'the server logged its requests');
      for (const secret of secrets) assert.ok(!text.includes(secret), 'a secret or address is in the log');
    });
  });
