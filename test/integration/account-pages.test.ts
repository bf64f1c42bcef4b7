// The account pages over real HTTP on real PostgreSQL, driven without JavaScript: sign-in through the
// tenant's own provider (code + PKCE, a sealed cookie), name, password, sessions, a change of
// address confirmed by a link read from a real SMTP server, the picture, the export, self-deletion
// and second factors; every change audited with the user as actor; no token or address logged.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { readAudit } from '../../src/audit/audit-log.js';
import { verifyBundle } from '../../src/bundles/verify-bundle.js';
import { createLogger } from '../../src/core/logger.js';
import { totpCode } from '../../src/identity/totp.js';
import { ACCOUNT_CLIENT_ID } from '../../src/oidc/account-client.js';
import { ensureAccountClients } from '../../src/ops/bootstrap.js';
import { configureMfaPolicy } from '../../src/ops/mfa-policy.js';
import { runOperation } from '../../src/ops/operations.js';
import { buildServer } from '../../src/server/app.js';
import { withTenant } from '../../src/storage/db/database.js';
import type { Tenant } from '../../src/tenancy/tenants.js';
import { CookieBrowser, readForm } from '../helpers/cookie-browser.js';
import { createTestOrthId, type TestOrthId } from '../helpers/orthid.js';
import { blackPng } from '../helpers/png.js';
import { freePort } from '../helpers/postgres.js';
import { startTestSmtpServer, type TestSmtpServer } from '../helpers/smtp-server.js';
import { type CreationOptions, SoftwarePasskey } from '../helpers/software-passkey.js';

const PASSWORD = 'correct horse battery staple 42';
const NEW_PASSWORD = 'a different, equally long passphrase 7';

describe('the account pages', { timeout: 300_000 }, () => {
  let smtp: TestSmtpServer;
  let app: TestOrthId;
  let server: FastifyInstance;
  let base: string;
  let tenant: Tenant;
  let logText = '';
  let address = 0;
  /** A browser at its own client address, so one test's failures never throttle another's. */
  const browser = () => new CookieBrowser({ 'x-forwarded-for': `198.51.100.${++address}` });
  const account = (path = '') => `${base}/t/acme/account${path}`;
  /** OrthID's clock runs this far ahead of the provider's: a sign-in made now looks that old. */
  let ahead = 0;
  const clock = { now: () => new Date(Date.now() + ahead) };

  before(async () => {
    smtp = await startTestSmtpServer();
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    app = await createTestOrthId('postgres', {
      clock,
      env: {
        ORTHID_PUBLIC_URL: base,
        ORTHID_TRUST_PROXY: '127.0.0.1',
        ORTHID_SMTP_URL: `smtp://${smtp.user}@127.0.0.1:${smtp.port}`,
        ORTHID_SMTP_PASSWORD_FILE: smtp.passwordFile,
        ORTHID_SMTP_CA_FILE: smtp.caFile,
        ORTHID_MAIL_FROM: 'OrthID <no-reply@orthid.test>',
      },
    });
    const log = createLogger(
      'trace',
      new Writable({
        write(chunk, _encoding, done) {
          logText += chunk.toString();
          done();
        },
      }),
    );
    server = await buildServer({ ...app, log });
    await server.listen({ host: '127.0.0.1', port });
    await runOperation(app, 'tenant.create', { slug: 'acme', displayName: 'Acme' });
    tenant = await app.tenants.get('acme');
  });

  after(async () => {
    await server?.close();
    await app?.close();
    await smtp?.close();
  });

  let users = 0;
  async function newUser(name = 'Ada Lovelace') {
    const email = `user${++users}@acme.test`;
    const user = await withTenant(app.db, tenant.id, (tx) =>
      app.users.create(tx, tenant.id, { email, name, password: PASSWORD }, 'test'),
    );
    return { id: user.id, email };
  }

  /** Opens the account pages in `b` and signs in at the hosted page; returns the page shown after. */
  async function signIn(b: CookieBrowser, email: string, password = PASSWORD, path = '') {
    const start = await b.get(account(path));
    assert.equal(start.status, 303);
    const login = await b.follow(start, account(path));
    const form = readForm(await login.response.text());
    const posted = await b.post(new URL(form.action, base).href, { ...form.fields, email, password });
    const done = await b.follow(posted, base);
    assert.equal(done.response.status, 200, done.url);
    return { html: await done.response.text(), url: done.url };
  }

  async function pageAt(b: CookieBrowser, path: string) {
    const response = await b.get(account(path));
    return { response, html: response.status === 200 ? await response.text() : '' };
  }

  /** Submits the form `id` of `html` with `fields` added. */
  async function submit(b: CookieBrowser, html: string, id: string, fields: Record<string, string> = {}) {
    const form = readForm(html, id);
    return b.post(new URL(form.action, base).href, { ...form.fields, ...fields });
  }

  const codeOn = (html: string) => /data-code="([^"]+)"/.exec(html)?.[1];

  async function auditOf(action: string) {
    const events = await withTenant(app.db, tenant.id, async (tx) =>
      readAudit(tx, await app.tenantKeys.forTenant(tx, tenant.id), { limit: 1000 }),
    );
    return events.filter((e) => e.action === action);
  }

  const userOf = (id: string) => withTenant(app.db, tenant.id, (tx) => app.users.get(tx, tenant.id, id));

  async function mailTo(email: string) {
    await app.mailWorker.runOnce();
    const mails = smtp.received.filter((m) => m.rcptTo.includes(email));
    assert.ok(mails.length > 0, `no mail to ${email}`);
    return mails.at(-1)!;
  }

  test('every tenant has the account client; a start gives it to tenants that lack it, once', async () => {
    const client = await withTenant(app.db, tenant.id, (tx) => app.clients.get(tx, ACCOUNT_CLIENT_ID));
    assert.equal(client.firstParty, true);
    assert.equal(client.public, false);
    assert.deepEqual(client.redirectUris, [`${base}/t/acme/account/callback`]);
    const older = await app.tenants.create({ slug: 'older', actor: 'test' });
    await assert.rejects(
      withTenant(app.db, older.id, (tx) => app.clients.get(tx, ACCOUNT_CLIENT_ID)),
      (e: { code?: string }) => e.code === 'client.not_found',
    );
    assert.equal(await ensureAccountClients({ ...app }), 1);
    assert.equal(await ensureAccountClients({ ...app }), 0, 'a second start changes nothing');
    await withTenant(app.db, older.id, (tx) => app.clients.get(tx, ACCOUNT_CLIENT_ID));
  });

  test('without a session the pages send the browser to the tenant provider with PKCE', async () => {
    const response = await browser().get(account('/password'));
    assert.equal(response.status, 303);
    const location = new URL(response.headers.get('location')!);
    assert.equal(location.origin + location.pathname, `${base}/t/acme/auth`);
    assert.equal(location.searchParams.get('client_id'), ACCOUNT_CLIENT_ID);
    assert.equal(location.searchParams.get('code_challenge_method'), 'S256');
    assert.ok(location.searchParams.get('state') && location.searchParams.get('nonce'));
    const flow = response.headers.getSetCookie().find((c) => c.startsWith('orthid_account_flow='))!;
    assert.match(flow, /Path=\/t\/acme\/account/);
    assert.match(flow, /HttpOnly/);
    assert.match(flow, /SameSite=Lax/);
  });

  test('signing in through the hosted page shows the profile; the session cookie is HttpOnly and Lax', async () => {
    const { email } = await newUser('Grace Hopper');
    const b = browser();
    const start = await b.get(account('/sessions'));
    const login = await b.follow(start, account());
    const form = readForm(await login.response.text());
    const posted = await b.post(new URL(form.action, base).href, {
      ...form.fields,
      email,
      password: PASSWORD,
    });
    let current = posted;
    let url = base;
    let sessionCookie: string | undefined;
    while (current.status >= 300 && current.status < 400) {
      url = new URL(current.headers.get('location')!, url).href;
      current = await b.get(url);
      sessionCookie ??= current.headers.getSetCookie().find((c) => c.startsWith('orthid_account='));
    }
    assert.equal(url, account('/sessions'), 'back on the page that was asked for');
    assert.ok(sessionCookie);
    assert.match(sessionCookie, /HttpOnly/);
    assert.match(sessionCookie, /SameSite=Lax/);
    assert.doesNotMatch(sessionCookie, /Secure/, 'plain http on loopback');
    const profile = await pageAt(b, '');
    assert.equal(profile.response.status, 200);
    assert.match(profile.html, /value="Grace Hopper"/);
    assert.equal(profile.response.headers.get('x-frame-options'), 'DENY');
    assert.match(profile.response.headers.get('content-security-policy')!, /default-src 'none'/);
  });

  test('a body the pages cannot read and a tenant that does not exist get a page with a stable code', async () => {
    const odd = await fetch(account('/name'), {
      method: 'POST',
      body: 'name=x',
      headers: { 'content-type': 'application/xml' },
      redirect: 'manual',
    });
    assert.equal(odd.status, 400);
    assert.equal(codeOn(await odd.text()), 'request.invalid');
    const missing = await fetch(`${base}/t/nowhere/account`, { redirect: 'manual' });
    assert.equal(missing.status, 404);
    assert.equal(codeOn(await missing.text()), 'tenant.not_found');
  });

  test('a forged callback signs nobody in', async () => {
    const b = browser();
    await b.get(account());
    const response = await b.get(account('/callback?code=forged&state=forged'));
    assert.equal(response.status, 401);
    assert.equal(codeOn(await response.text()), 'account.sign_in_failed');
  });

  test('the name is changed and audited with the user as actor; a form without its CSRF token changes nothing', async () => {
    const user = await newUser('Ada Lovelace');
    const b = browser();
    const { html } = await signIn(b, user.email);
    const noCsrf = await b.post(account('/name'), { name: 'Mallory' });
    assert.equal(noCsrf.status, 403);
    assert.equal(codeOn(await noCsrf.text()), 'account.csrf_invalid');
    const wrongCsrf = await b.post(account('/name'), { name: 'Mallory', csrf: 'x'.repeat(43) });
    assert.equal(wrongCsrf.status, 403);
    assert.equal((await userOf(user.id)).name, 'Ada Lovelace');
    const saved = await submit(b, html, 'name', { name: 'Ada King' });
    assert.equal(saved.status, 303);
    const after = await b.get(new URL(saved.headers.get('location')!, base).href);
    const shown = await after.text();
    assert.match(shown, /data-notice/);
    assert.match(shown, /value="Ada King"/);
    assert.equal((await userOf(user.id)).name, 'Ada King');
    const events = (await auditOf('user.updated')).filter((e) => e.target === `user:${user.id}`);
    assert.equal(events.at(-1)?.actor, `user:${user.id}`);
  });

  test('a password change needs the current password, and signs out every other session', async () => {
    const user = await newUser();
    const here = browser();
    const elsewhere = browser();
    await signIn(elsewhere, user.email);
    await signIn(here, user.email);
    const { html } = await pageAt(here, '/password');
    const wrong = await submit(here, html, 'password', {
      current: 'not my password',
      password: NEW_PASSWORD,
    });
    assert.equal(wrong.status, 400);
    assert.equal(codeOn(await wrong.text()), 'account.password_incorrect');
    const refused = (await auditOf('user.password_change_refused')).filter(
      (e) => e.actor === `user:${user.id}`,
    );
    assert.equal(refused.length, 1);
    assert.equal(refused[0]!.outcome, 'failure');
    const tooShort = await submit(here, html, 'password', { current: PASSWORD, password: 'short' });
    assert.equal(tooShort.status, 400);
    assert.equal(codeOn(await tooShort.text()), 'password.too_short');
    const changed = await submit(here, html, 'password', { current: PASSWORD, password: NEW_PASSWORD });
    assert.equal(changed.status, 303);
    assert.equal((await here.get(account('/password'))).status, 200, 'this session stays signed in');
    assert.equal((await elsewhere.get(account())).status, 303, 'the other session is signed out');
    const audited = (await auditOf('user.password_changed')).filter((e) => e.target === `user:${user.id}`);
    assert.equal(audited.at(-1)?.actor, `user:${user.id}`);
    await signIn(browser(), user.email, NEW_PASSWORD);
  });

  test('guessing the current password is slowed like guessing it at sign-in', async () => {
    const user = await newUser();
    const b = browser();
    await signIn(b, user.email);
    const { html } = await pageAt(b, '/password');
    const codes: (string | undefined)[] = [];
    let last: Response | undefined;
    for (let i = 0; i < 7; i++) {
      last = await submit(b, html, 'password', { current: `guess number ${i}`, password: NEW_PASSWORD });
      codes.push(codeOn(await last.text()));
    }
    assert.deepEqual(codes.slice(0, 5), Array(5).fill('account.password_incorrect'), 'the free failures');
    assert.equal(codes.at(-1), 'auth.throttled');
    assert.equal(last!.status, 429);
    assert.ok(Number(last!.headers.get('retry-after')) > 0);
    const right = await submit(b, html, 'password', { current: PASSWORD, password: NEW_PASSWORD });
    assert.equal(right.status, 429, 'not even the right password while the delay lasts');
  });

  test('sessions are listed; one is signed out, then every one', async () => {
    const user = await newUser();
    const phone = browser();
    const laptop = browser();
    await signIn(phone, user.email);
    await signIn(laptop, user.email);
    const { html } = await pageAt(laptop, '/sessions');
    const sessions = [...html.matchAll(/data-session="([^"]+)"/g)].map((m) => m[1]!);
    assert.equal(sessions.length, 2);
    assert.match(html, /This session/);
    assert.match(html, /Account pages/);
    const other = sessions.find(
      (uid) => !new RegExp(`data-session="${uid}">\\s*<h2>This session`).test(html),
    )!;
    const one = await submit(laptop, html, `session-${other}`);
    assert.equal(one.status, 303);
    assert.equal((await phone.get(account())).status, 303, 'that session is signed out');
    const left = await pageAt(laptop, '/sessions');
    assert.equal([...left.html.matchAll(/data-session=/g)].length, 1);
    const everywhere = await submit(laptop, left.html, 'sign-out-everywhere');
    assert.equal(everywhere.status, 303);
    assert.equal(everywhere.headers.get('location'), '/t/acme/account/signed-out');
    assert.equal((await laptop.get(account())).status, 303);
    const revoked = (await auditOf('session.revoked_all')).filter((e) => e.target === `user:${user.id}`);
    assert.equal(revoked[0]?.actor, `user:${user.id}`);
  });

  test('signing out ends the provider session as well and lands on the signed-out page', async () => {
    const user = await newUser();
    const b = browser();
    const { html } = await signIn(b, user.email);
    const out = await submit(b, html, 'sign-out');
    assert.equal(out.status, 303);
    assert.ok(out.headers.getSetCookie().some((c) => /^orthid_account=;.*Max-Age=0/.test(c)));
    const confirm = await b.follow(out, base);
    const form = readForm(await confirm.response.text());
    const done = await b.follow(
      await b.post(new URL(form.action, base).href, { ...form.fields, logout: 'yes' }),
      base,
    );
    assert.equal(done.url, account('/signed-out'));
    const again = await b.get(account());
    assert.equal(again.status, 303);
    const login = await b.follow(again, account());
    assert.match(await login.response.text(), /name="password"/, 'the provider asks for the password again');
  });

  test('a new address changes only once the link mailed to it is used, and the link works once', async () => {
    const user = await newUser();
    const b = browser();
    const { html } = await signIn(b, user.email);
    const next = `moved${users}@acme.test`;
    const asked = await submit(b, html, 'email', { email: next });
    assert.equal(asked.status, 303);
    assert.equal((await userOf(user.id)).email, user.email, 'nothing changes before the link is used');
    const mail = await mailTo(next);
    const link = /(http:\/\/\S+\/email\/confirm\?token=[A-Za-z0-9_-]+)/.exec(mail.parsed.text!)?.[1];
    assert.ok(link, mail.parsed.text);
    // Opened on another device: no session needed; the GET only shows a button.
    const other = browser();
    const opened = await other.get(link);
    assert.equal(opened.status, 200);
    assert.equal((await userOf(user.id)).email, user.email);
    const confirmed = await submit(other, await opened.text(), 'confirm-email');
    assert.equal(confirmed.status, 200);
    const changed = await userOf(user.id);
    assert.equal(changed.email, next);
    assert.equal(changed.emailVerified, true);
    const reused = await submit(other, await (await other.get(link)).text(), 'confirm-email');
    assert.equal(reused.status, 400);
    assert.equal(codeOn(await reused.text()), 'account.link_used');
    await signIn(browser(), next);
  });

  test('an address another user has is refused without the page saying so; its owner is told by mail', async () => {
    const user = await newUser();
    const holder = await newUser();
    const b = browser();
    const { html } = await signIn(b, user.email);
    const asked = await submit(b, html, 'email', { email: holder.email.toUpperCase() });
    assert.equal(asked.status, 303, 'the same answer as for a free address');
    const mail = await mailTo(holder.email);
    assert.match(mail.parsed.subject!, /already has an account/);
    assert.doesNotMatch(mail.parsed.text!, /token=/);
    assert.equal((await userOf(user.id)).email, user.email);
    // Taken between the mail and the click: the link is refused with a stable code, nothing changes.
    const free = `later${users}@acme.test`;
    const page = await pageAt(b, '');
    await submit(b, page.html, 'email', { email: free });
    const link = /(http:\/\/\S+\/email\/confirm\?token=[A-Za-z0-9_-]+)/.exec(
      (await mailTo(free)).parsed.text!,
    )![1]!;
    await withTenant(app.db, tenant.id, (tx) => app.users.create(tx, tenant.id, { email: free }, 'test'));
    const other = browser();
    const refused = await submit(other, await (await other.get(link)).text(), 'confirm-email');
    assert.equal(refused.status, 409);
    assert.equal(codeOn(await refused.text()), 'user.email_taken');
    assert.equal((await userOf(user.id)).email, user.email);
    const bad = await submit(b, (await pageAt(b, '')).html, 'email', { email: 'not an address' });
    assert.equal(bad.status, 400);
    assert.equal(codeOn(await bad.text()), 'request.invalid');
  });

  test('a picture is uploaded with a plain form, shown, and removed', async () => {
    const user = await newUser();
    const b = browser();
    const { html } = await signIn(b, user.email);
    assert.doesNotMatch(html, /<img/);
    const csrf = readForm(html, 'picture').fields.csrf!;
    const upload = async (bytes: Buffer, token = csrf) => {
      const body = new FormData();
      body.set('csrf', token);
      body.set('picture', new Blob([bytes], { type: 'image/png' }), 'me.png');
      const cookie = b
        .cookieValues()
        .map(([n, v]) => `${n}=${v}`)
        .join('; ');
      return fetch(account('/picture'), {
        method: 'POST',
        body,
        redirect: 'manual',
        headers: { cookie, 'x-forwarded-for': '198.51.100.250' },
      });
    };
    assert.equal((await upload(blackPng(64, 64), 'forged')).status, 403);
    const junk = await upload(Buffer.from('not an image'));
    assert.equal(junk.status, 400);
    assert.equal(codeOn(await junk.text()), 'media.unsupported_type');
    const huge = await upload(Buffer.alloc(6 * 1024 * 1024));
    assert.equal(huge.status, 400);
    assert.equal(codeOn(await huge.text()), 'media.too_large');
    assert.equal((await upload(blackPng(64, 64))).status, 303);
    const shown = await pageAt(b, '');
    assert.match(shown.html, /<img src="\/t\/acme\/account\/picture"/);
    const picture = await b.get(account('/picture'));
    assert.equal(picture.status, 200);
    assert.equal(picture.headers.get('content-type'), 'image/webp');
    assert.equal((await submit(b, shown.html, 'picture-remove')).status, 303);
    assert.doesNotMatch((await pageAt(b, '')).html, /<img/);
    const events = (await auditOf('user.avatar_set')).filter((e) => e.target === `user:${user.id}`);
    assert.equal(events.at(-1)?.actor, `user:${user.id}`);
  });

  test('the data export downloads a bundle that verifies against the tenant keys', async () => {
    const user = await newUser();
    const b = browser();
    await signIn(b, user.email);
    const { html } = await pageAt(b, '/data');
    const response = await submit(b, html, 'export');
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'application/x-tar');
    assert.match(response.headers.get('content-disposition')!, /^attachment;/);
    const jwks = (await (await fetch(`${base}/t/acme/jwks`)).json()) as Parameters<typeof verifyBundle>[1];
    const report = await verifyBundle(new Uint8Array(await response.arrayBuffer()), jwks);
    assert.equal(report.kind, 'user-export');
    assert.deepEqual(report.subject, { userId: user.id });
    const exported = (await auditOf('user.exported')).filter((e) => e.target === `user:${user.id}`);
    assert.equal(exported[0]?.actor, `user:${user.id}`);
  });

  test('an account is deleted only where the tenant allows it, and only when confirmed', async () => {
    const user = await newUser();
    const b = browser();
    await signIn(b, user.email);
    const off = await pageAt(b, '/data');
    assert.doesNotMatch(off.html, /id="delete"/);
    const csrf = readForm(off.html, 'export').fields.csrf!;
    const refused = await b.post(account('/data/delete'), { csrf, confirmation: user.email });
    assert.equal(refused.status, 403);
    assert.equal(codeOn(await refused.text()), 'account.self_delete_disabled');
    await userOf(user.id);
    await assert.rejects(
      runOperation(app, 'tenant.configure', { slug: 'acme', selfDelete: 'yes' }),
      (e: { code?: string }) => e.code === 'request.invalid',
    );
    const configured = await runOperation(app, 'tenant.configure', { slug: 'acme', selfDelete: 'on' });
    assert.equal(configured.selfDelete, 'on');
    app.oidc.invalidateAll();
    try {
      const on = await pageAt(b, '/data');
      const wrong = await submit(b, on.html, 'delete', { confirmation: 'someone@else.test' });
      assert.equal(wrong.status, 400);
      assert.equal(codeOn(await wrong.text()), 'account.confirmation_mismatch');
      await userOf(user.id);
      const deleted = await submit(b, on.html, 'delete', { confirmation: PASSWORD });
      assert.equal(deleted.status, 200);
      await assert.rejects(userOf(user.id), (e: { code?: string }) => e.code === 'user.not_found');
      assert.equal((await b.get(account())).status, 303);
      const events = (await auditOf('user.deleted')).filter((e) => e.target === `user:${user.id}`);
      assert.equal(events[0]?.actor, `user:${user.id}`);
    } finally {
      await withTenant(app.db, tenant.id, (tx) =>
        app.tenants.setSettings(tx, tenant.id, { selfDelete: false }),
      );
      app.oidc.invalidateAll();
    }
  });

  test('second factors are listed and removed; the last one stays where the tenant requires one', async () => {
    const user = await newUser();
    const b = browser();
    await signIn(b, user.email);
    assert.match((await pageAt(b, '/security')).html, /You have no second factors/);
    await withTenant(app.db, tenant.id, async (tx) => {
      await app.mfa.provisionTotp(tx, tenant.id, user.id, 'test');
      await app.mfa.provisionTotp(tx, tenant.id, user.id, 'test');
    });
    await configureMfaPolicy(app, tenant, { mode: 'required' }, 'test');
    try {
      const listed = await pageAt(b, '/security');
      const factors = [...listed.html.matchAll(/data-factor="([^"]+)"/g)].map((m) => m[1]!);
      assert.equal(factors.length, 2);
      assert.match(listed.html, /Authenticator app/);
      assert.equal((await submit(b, listed.html, `factor-${factors[0]}`)).status, 303);
      const one = await pageAt(b, '/security');
      assert.doesNotMatch(one.html, /id="factor-/, 'the last required factor offers no removal');
      const csrf = readForm(one.html, 'sign-out').fields.csrf!;
      const forced = await b.post(account('/security/remove'), { csrf, factor: factors[1]! });
      assert.equal(forced.status, 403);
      assert.equal(codeOn(await forced.text()), 'account.factor_required');
      const removed = (await auditOf('user.mfa_factor_removed')).filter(
        (e) => e.target === `user:${user.id}`,
      );
      assert.equal(removed.length, 1);
      assert.equal(removed[0]!.actor, `user:${user.id}`);
    } finally {
      await configureMfaPolicy(app, tenant, { mode: 'off' }, 'test');
    }
  });

  const securityCsrf = (html: string) => readForm(html, 'sign-out').fields.csrf!;
  const recoveryCodesOn = (html: string) =>
    [...html.matchAll(/<li><code>([^<]+)<\/code><\/li>/g)].map((m) => m[1]!);

  test('an authenticator app and a passkey are added from the security page; the first brings recovery codes, the second keeps them', async () => {
    const user = await newUser();
    const b = browser();
    await signIn(b, user.email);
    const security = await pageAt(b, '/security');
    assert.match(security.html, /id="add-totp"/);
    assert.doesNotMatch(security.html, /id="recovery-codes-new"/, 'no codes to renew without a factor');

    // The app: its secret and QR code, a wrong code refused on the same enrolment, then the right one.
    const started = await submit(b, security.html, 'add-totp');
    assert.equal(started.status, 200);
    assert.equal(started.headers.get('cache-control'), 'no-store');
    const enrolHtml = await started.text();
    const secret = /id="secret">([^<]+)</.exec(enrolHtml)![1]!.replace(/ /g, '');
    const factorId = readForm(enrolHtml, 'enrol-confirm').fields.factor!;
    const wrong = await submit(b, enrolHtml, 'enrol-confirm', { code: '000000' });
    assert.equal(wrong.status, 401);
    const wrongHtml = await wrong.text();
    assert.equal(codeOn(wrongHtml), 'mfa.code_invalid');
    assert.equal(readForm(wrongHtml, 'enrol-confirm').fields.factor, factorId, 'the same enrolment again');
    const confirmed = await submit(b, wrongHtml, 'enrol-confirm', { code: totpCode(secret, clock.now()) });
    assert.equal(confirmed.status, 200);
    const codes = recoveryCodesOn(await confirmed.text());
    assert.equal(codes.length, 10);
    const withApp = await pageAt(b, '/security');
    assert.equal([...withApp.html.matchAll(/data-factor="/g)].length, 1);
    assert.match(withApp.html, /Unused recovery codes: 10/);

    // The passkey: its page loads the script from our origin; the ceremony's form posts the response.
    const passkeyPage = await pageAt(b, '/security/passkey');
    assert.equal(passkeyPage.response.status, 200);
    assert.match(passkeyPage.response.headers.get('content-security-policy')!, /script-src 'self'/);
    const form = readForm(passkeyPage.html, 'passkey-form');
    const optionsUrl = /data-options="([^"]+)"/.exec(passkeyPage.html)![1]!;
    // A response the server cannot verify: the page again, with its code and the script allowed.
    const garbled = await b.post(new URL(form.action, base).href, { ...form.fields, response: '{}' });
    assert.equal(garbled.status, 400);
    assert.match(garbled.headers.get('content-security-policy')!, /script-src 'self'/);
    assert.match(codeOn(await garbled.text()) ?? '', /^passkey\./);
    const options = (await (
      await b.post(new URL(optionsUrl, base).href, { csrf: form.fields.csrf! })
    ).json()) as CreationOptions;
    const key = new SoftwarePasskey(base, '127.0.0.1');
    const registered = await b.post(new URL(form.action, base).href, {
      ...form.fields,
      name: 'Laptop',
      response: JSON.stringify(key.create(options)),
    });
    assert.equal(registered.status, 303, 'no new codes: the ones saved still work');
    assert.match(registered.headers.get('location')!, /\/security\?done=factorAdded$/);
    const both = await pageAt(b, '/security');
    assert.match(both.html, /Passkey · Laptop/);
    assert.match(both.html, /Unused recovery codes: 10/);

    // A second app keeps the codes as well.
    const secondApp = await (await submit(b, both.html, 'add-totp')).text();
    const secondSecret = /id="secret">([^<]+)</.exec(secondApp)![1]!.replace(/ /g, '');
    const kept = await submit(b, secondApp, 'enrol-confirm', { code: totpCode(secondSecret, clock.now()) });
    assert.equal(kept.status, 303);
    const three = await pageAt(b, '/security');
    assert.equal([...three.html.matchAll(/data-factor="/g)].length, 3);
    assert.match(three.html, /Unused recovery codes: 10/);

    // New codes on request: the old ones stop working.
    const renewed = await submit(b, three.html, 'recovery-codes-new');
    assert.equal(renewed.status, 200);
    const fresh = recoveryCodesOn(await renewed.text());
    assert.equal(fresh.length, 10);
    assert.ok(fresh.every((c) => !codes.includes(c)));
    const attempt = { tenantId: tenant.id, userId: user.id, ip: '192.0.2.77' };
    await assert.rejects(app.mfa.useRecoveryCode({ ...attempt, code: codes[0]! }));
    assert.equal((await app.mfa.useRecoveryCode({ ...attempt, code: fresh[0]! })).remaining, 9);

    for (const action of ['user.mfa_enrolled', 'passkey.registered', 'user.mfa_recovery_codes_regenerated']) {
      const mine = (await auditOf(action)).filter(
        (e) => e.target === `user:${user.id}` && e.outcome === 'success',
      );
      assert.equal(mine.length, action === 'user.mfa_enrolled' ? 2 : 1, action);
      assert.equal(mine[0]!.actor, `user:${user.id}`, action);
    }
  });

  test('a ceremony is bound to the account session that started it', async () => {
    const user = await newUser();
    const here = browser();
    const there = browser();
    await signIn(here, user.email);
    await signIn(there, user.email);
    const started = await submit(here, (await pageAt(here, '/security')).html, 'add-totp');
    const enrolHtml = await started.text();
    const secret = /id="secret">([^<]+)</.exec(enrolHtml)![1]!.replace(/ /g, '');
    const factor = readForm(enrolHtml, 'enrol-confirm').fields.factor!;
    const csrf = securityCsrf((await pageAt(there, '/security')).html);
    const foreign = await there.post(account('/security/totp/confirm'), {
      csrf,
      factor,
      code: totpCode(secret, clock.now()),
    });
    assert.equal(foreign.status, 403);
    assert.equal(codeOn(await foreign.text()), 'mfa.enrolment_foreign');
    assert.match((await pageAt(here, '/security')).html, /You have no second factors/);
  });

  test('a sign-in older than ten minutes is asked for again before a factor is added or removed', async () => {
    const user = await newUser();
    const b = browser();
    await signIn(b, user.email);
    const secret = await withTenant(app.db, tenant.id, (tx) =>
      app.mfa.provisionTotp(tx, tenant.id, user.id, 'test'),
    );
    const security = await pageAt(b, '/security');
    const factor = /data-factor="([^"]+)"/.exec(security.html)![1]!;
    const started = (await auditOf('user.mfa_enrolment_started')).length;
    ahead = 11 * 60 * 1000;
    try {
      // Still signed in: the pages show, but a change to how one signs in asks for the password first.
      assert.equal((await pageAt(b, '/security')).response.status, 200);
      for (const attempt of [
        () => submit(b, security.html, 'add-totp'),
        () => submit(b, security.html, `factor-${factor}`),
        () => submit(b, security.html, 'recovery-codes-new'),
        () => b.get(account('/security/passkey')),
      ]) {
        const asked = await attempt();
        assert.equal(asked.status, 303);
        const to = new URL(asked.headers.get('location')!);
        assert.equal(to.pathname, '/t/acme/auth');
        assert.equal(to.searchParams.get('prompt'), 'login');
      }
      assert.equal((await auditOf('user.mfa_enrolment_started')).length, started, 'nothing was started');
      assert.equal([...(await pageAt(b, '/security')).html.matchAll(/data-factor="/g)].length, 1);

      // The provider asks for the password (and the second factor) although its session is alive;
      // then the change goes through.
      const asked = await submit(b, security.html, `factor-${factor}`);
      ahead = 0;
      const login = await b.follow(asked, base);
      const loginHtml = await login.response.text();
      assert.match(loginHtml, /name="password"/, 'the sign-in page, not straight back');
      const loginForm = readForm(loginHtml);
      const posted = await b.post(new URL(loginForm.action, base).href, {
        ...loginForm.fields,
        email: user.email,
        password: PASSWORD,
      });
      const second = await b.follow(posted, base);
      const secondHtml = await second.response.text();
      const proved = await submit(b, secondHtml, 'totp-form', { code: totpCode(secret, clock.now()) });
      const back = await b.follow(proved, base);
      assert.match(back.url, /\/security\?done=reauthenticated$/);
      const again = await back.response.text();
      assert.match(again, /You signed in again/);
      assert.equal((await submit(b, again, `factor-${factor}`)).status, 303);
      assert.match((await pageAt(b, '/security')).html, /You have no second factors/);
    } finally {
      ahead = 0;
    }
  });

  test('no address, password, link or token reached the log', async () => {
    assert.ok(logText.length > 0);
    assert.doesNotMatch(logText, /@acme\.test/);
    assert.doesNotMatch(logText, /token=[A-Za-z0-9_-]{20,}/);
    assert.ok(!logText.includes(PASSWORD) && !logText.includes(NEW_PASSWORD));
    assert.doesNotMatch(logText, /orthid_account=[A-Za-z0-9_-]{20,}/);
  });
});
