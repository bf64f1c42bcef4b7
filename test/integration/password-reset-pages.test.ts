// "Forgot password?" over real HTTP on real PostgreSQL, mail through a real SMTP server, a stock
// openid-client relying party and no JavaScript: the sign-in page's link, the request, the mail,
// the new password, every old session and refresh token ended, sign-in with the new password only;
// one answer for known and unknown addresses; used, expired and forged links; CSRF; languages;
// and neither a link's secret nor an address in the server's log.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import * as oidc from 'openid-client';
import { fixedClock } from '../../src/core/clock.js';
import { createLogger } from '../../src/core/logger.js';
import { createDeliveryWorker, type DeliveryWorker } from '../../src/mail/delivery-worker.js';
import { createSmtpTransport } from '../../src/mail/transport.js';
import { buildServer } from '../../src/server/app.js';
import { withTenant } from '../../src/storage/db/database.js';
import type { Tenant } from '../../src/tenancy/tenants.js';
import { CookieBrowser, readForm } from '../helpers/cookie-browser.js';
import { getPage, type MfaFlow, pageError, startFlow, submit } from '../helpers/mfa-sign-in.js';
import { createTestOrthId, type TestOrthId } from '../helpers/orthid.js';
import { freePort } from '../helpers/postgres.js';
import { startTestSmtpServer, type TestSmtpServer } from '../helpers/smtp-server.js';

const OLD = 'correct horse battery staple 42';
const NEW = 'a brand new passphrase of many words';
const LINK = /(http:\/\/\S+\/password\/reset\?token=[A-Za-z0-9_-]+)/;

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

describe('password reset on the hosted pages (postgres)', { timeout: 300_000 }, () => {
  let smtp: TestSmtpServer;
  let app: TestOrthId;
  let server: FastifyInstance;
  let worker: DeliveryWorker;
  let base: string;
  let tenant: Tenant;
  let client: { client_id: string; client_secret: string };
  const clock = fixedClock(new Date());
  const logs = capturedLog();
  /** Everything that must never reach a log line. */
  const secrets = new Set<string>([OLD, NEW]);
  let address = 0;
  const browser = (headers: Record<string, string> = {}) =>
    new CookieBrowser({ 'x-forwarded-for': `198.51.100.${++address}`, ...headers });

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
    server = await buildServer({ ...app, log: logs.log });
    await server.listen({ host: '127.0.0.1', port });
    worker = createDeliveryWorker({
      db: app.db,
      tenantKeys: app.tenantKeys,
      clock,
      log: logs.log,
      transport: createSmtpTransport(app.config.mail.smtp!),
    });
    tenant = await app.tenants.create({ slug: 'acme', displayName: 'Acme', actor: 'test' });
    client = await withTenant(app.db, tenant.id, async (tx) => {
      for (const name of ['ada', 'bob', 'carl', 'dora']) {
        await app.users.create(tx, tenant.id, { email: `${name}@acme.test`, password: OLD }, 'test');
      }
      const created = await app.clients.create(
        tx,
        tenant.id,
        {
          name: 'Acme web',
          grantTypes: ['authorization_code', 'refresh_token'],
          redirectUris: [`${base}/cb`],
          firstParty: true,
        },
        'test',
      );
      return { client_id: created.clientId, client_secret: created.clientSecret! };
    });
    for (const name of ['ada', 'bob', 'carl', 'dora']) secrets.add(`${name}@acme.test`);
  });

  after(async () => {
    await server?.close();
    await app?.close();
    await smtp?.close();
  });

  const begin = (b = browser()) =>
    startFlow({
      issuer: `${base}/t/acme`,
      client,
      redirectUri: `${base}/cb`,
      browser: b,
      params: { scope: 'openid email offline_access', prompt: 'consent' },
    });

  const userId = async (email: string) =>
    (await withTenant(app.db, tenant.id, (tx) => app.users.findByEmail(tx, tenant.id, email)))!.id;
  const sessionsOf = async (email: string) => {
    const id = await userId(email);
    return (await withTenant(app.db, tenant.id, (tx) => app.rbac.sessions.list(tx, id, { limit: 50 }))).items;
  };

  /** Delivers what is queued; returns the mails that arrived for `to`. */
  async function deliver(to: string) {
    const from = smtp.received.length;
    await worker.runOnce();
    return smtp.received.slice(from).filter((m) => m.rcptTo.includes(to));
  }

  /** The forgot-password page reached from the sign-in page's link. */
  async function forgotPage(flow: MfaFlow) {
    const href = /<a href="([^"]*\/password\/forgot[^"]*)">/.exec(flow.html)?.[1];
    assert.ok(href, 'the sign-in page links to the forgot-password page');
    await getPage(flow, href);
    assert.equal(flow.status, 200);
    return flow;
  }

  async function postForm(b: CookieBrowser, pageUrl: string, html: string, fields: Record<string, string>) {
    const form = readForm(html);
    const response = await b.post(new URL(form.action, pageUrl).href, { ...form.fields, ...fields });
    return { status: response.status, html: await response.text(), headers: response.headers };
  }

  async function linkFor(email: string, b = browser()) {
    const flow = await forgotPage(await begin(b));
    const sent = await postForm(b, flow.url, flow.html, { email });
    assert.equal(sent.status, 200);
    const [mail] = await deliver(email);
    assert.ok(mail, `a reset mail for ${email} arrived`);
    const link = LINK.exec(mail.parsed.text ?? '')?.[1];
    assert.ok(link, 'the mail carries the link');
    secrets.add(new URL(link).searchParams.get('token')!);
    return { link, mail, browser: b };
  }

  test('request, mail, new password: old sessions and refresh tokens end, only the new password signs in', async () => {
    // Signed in before, with a refresh token.
    const earlier = await submit(await begin(), { email: 'ada@acme.test', password: OLD });
    assert.ok(earlier.callback, `signed in: ${earlier.html.slice(0, 300)}`);
    const issued = await oidc.authorizationCodeGrant(earlier.config, earlier.callback, {
      pkceCodeVerifier: earlier.verifier,
      expectedState: earlier.state,
    });
    assert.ok(issued.refresh_token);
    assert.equal((await sessionsOf('ada@acme.test')).length, 1);

    const b = browser();
    const flow = await forgotPage(await begin(b));
    assert.match(flow.html, /<h1>Forgot your password\?<\/h1>/);
    const page = await b.get(flow.url);
    assert.equal(page.headers.get('x-frame-options'), 'DENY');
    assert.match(page.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
    assert.doesNotMatch(await page.text(), /<script/);

    const known = await postForm(b, flow.url, flow.html, { email: 'ada@acme.test' });
    const unknown = await postForm(b, flow.url, flow.html, { email: 'nobody@acme.test' });
    assert.equal(known.status, 200);
    assert.equal(unknown.status, known.status);
    assert.equal(unknown.html, known.html);
    assert.match(known.html, /Check your email/);

    const arrived = await deliver('ada@acme.test');
    assert.equal(arrived.length, 1);
    assert.equal(smtp.received.filter((m) => m.rcptTo.includes('nobody@acme.test')).length, 0);
    const mail = arrived[0]!;
    assert.equal(mail.parsed.subject, 'Reset your password at Acme');
    const link = LINK.exec(mail.parsed.text ?? '')?.[1];
    assert.ok(link?.startsWith(`${base}/t/acme/password/reset?token=`));
    assert.match(String(mail.parsed.html), /password\/reset\?token=/);
    secrets.add(new URL(link!).searchParams.get('token')!);

    const choose = await b.get(link!);
    const chooseHtml = await choose.text();
    assert.equal(choose.status, 200);
    assert.match(chooseHtml, /Choose a new password/);
    const done = await postForm(b, link!, chooseHtml, { password: NEW, confirm: NEW });
    assert.equal(done.status, 200, done.html);
    assert.match(done.html, /Your password was changed/);

    // Signed out everywhere: no session left, the refresh token refused.
    assert.deepEqual(await sessionsOf('ada@acme.test'), []);
    await assert.rejects(oidc.refreshTokenGrant(earlier.config, issued.refresh_token!), (e: unknown) => {
      assert.equal((e as { error?: string }).error, 'invalid_grant');
      return true;
    });
    const notice = await deliver('ada@acme.test');
    assert.equal(notice.length, 1);
    assert.equal(notice[0]!.parsed.subject, 'Your Acme password was changed');

    // Back to the sign-in it started from: the old password fails, the new one signs in.
    const signInHref = /<a href="([^"]*\/interaction\/[^"]*)">Sign in<\/a>/.exec(done.html)?.[1];
    assert.ok(signInHref);
    await getPage(flow, signInHref!);
    assert.equal(flow.status, 200);
    const wrong = await submit(flow, { email: 'ada@acme.test', password: OLD });
    assert.equal(wrong.status, 401);
    assert.equal(pageError(wrong.html)?.code, 'auth.invalid_credentials');
    const right = await submit(wrong, { email: 'ada@acme.test', password: NEW });
    assert.ok(right.callback, `signed in with the new password: ${right.html.slice(0, 300)}`);

    // The link was used: it now says so, and changes nothing.
    const again = await b.get(link!);
    assert.equal(again.status, 410);
    assert.equal(pageError(await again.text())?.code, 'account.link_used');
  });

  test('an expired or forged link gets a clear page with its code', async () => {
    const { link, browser: b } = await linkFor('bob@acme.test');
    const token = new URL(link).searchParams.get('token')!;
    const forged = link.replace(token, `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`);
    const bad = await b.get(forged);
    assert.equal(bad.status, 400);
    assert.equal(pageError(await bad.text())?.code, 'account.link_invalid');
    const none = await b.get(`${base}/t/acme/password/reset`);
    assert.equal(none.status, 400);

    const page = await (await b.get(link)).text();
    const now = clock.now();
    clock.set(new Date(now.getTime() + app.passwordReset.options.ttlSeconds * 1000 + 1000));
    try {
      const late = await b.get(link);
      assert.equal(late.status, 410);
      assert.equal(pageError(await late.text())?.code, 'account.link_expired');
      // A form opened before it expired is refused too, and nothing changes.
      const posted = await postForm(b, link, page, { password: NEW, confirm: NEW });
      assert.equal(posted.status, 410);
      assert.equal(pageError(posted.html)?.code, 'account.link_expired');
    } finally {
      clock.set(now);
    }
    const signIn = await app.signInWithPassword({
      tenantId: tenant.id,
      email: 'bob@acme.test',
      password: OLD,
      ip: '192.0.2.10',
    });
    assert.ok(signIn.userId);
  });

  test('two different passwords, or one the policy refuses, keep the form and the link', async () => {
    const { link, browser: b } = await linkFor('dora@acme.test');
    const page = await (await b.get(link)).text();
    const mismatch = await postForm(b, link, page, { password: NEW, confirm: `${NEW}!` });
    assert.equal(mismatch.status, 400);
    assert.equal(pageError(mismatch.html)?.code, 'account.password_mismatch');
    const short = await postForm(b, link, page, { password: 'short', confirm: 'short' });
    assert.equal(short.status, 400);
    assert.equal(pageError(short.html)?.code, 'password.too_short');
    const done = await postForm(b, link, page, { password: NEW, confirm: NEW });
    assert.equal(done.status, 200);
  });

  test('a disabled user gets the same answer and no mail', async () => {
    const id = await userId('carl@acme.test');
    await withTenant(app.db, tenant.id, (tx) => app.users.disable(tx, tenant.id, id, 'test'));
    const b = browser();
    const flow = await forgotPage(await begin(b));
    const answer = await postForm(b, flow.url, flow.html, { email: 'carl@acme.test' });
    const unknown = await postForm(b, flow.url, flow.html, { email: 'nobody.else@acme.test' });
    assert.equal(answer.status, 200);
    assert.equal(answer.html, unknown.html);
    assert.deepEqual(await deliver('carl@acme.test'), []);
  });

  test('a form without its CSRF token is refused and sends nothing', async () => {
    const b = browser();
    const flow = await forgotPage(await begin(b));
    const form = readForm(flow.html);
    const response = await b.post(new URL(form.action, flow.url).href, { email: 'bob@acme.test' });
    assert.equal(response.status, 403);
    assert.equal(pageError(await response.text())?.code, undefined);
    // Another browser's cookie does not make the token valid either.
    const other = await browser().post(new URL(form.action, flow.url).href, {
      ...form.fields,
      email: 'bob@acme.test',
    });
    assert.equal(other.status, 403);
    assert.deepEqual(await deliver('bob@acme.test'), []);
  });

  test('the pages and the mail speak the language asked for', async () => {
    const b = browser({ 'accept-language': 'de-DE,de;q=0.9' });
    const flow = await forgotPage(await begin(b));
    assert.match(flow.html, /<html lang="de">/);
    assert.match(flow.html, /Passwort vergessen\?/);
    const sent = await postForm(b, flow.url, flow.html, { email: 'bob@acme.test' });
    assert.match(sent.html, /Prüfen Sie Ihre E-Mails/);
    const [mail] = await deliver('bob@acme.test');
    assert.equal(mail?.parsed.subject, 'Passwort bei Acme zurücksetzen');
    const link = LINK.exec(mail!.parsed.text ?? '')![1]!;
    secrets.add(new URL(link).searchParams.get('token')!);
    // The link remembers the language even in a browser that asks for none.
    const page = await (await new CookieBrowser().get(link)).text();
    assert.match(page, /Neues Passwort wählen/);
  });

  test('no link secret, password or address reached the log', () => {
    const text = logs.text();
    assert.ok(text.length > 0, 'the server logged requests');
    for (const secret of secrets) assert.ok(!text.includes(secret), 'a secret or an address was logged');
  });
});
