// When an account's address changes, the previous address is told, by a real SMTP server's
// reading: after the user confirms a new address on the account pages, and after an administrator
// sets one through the admin API. The notice names the new address masked, says whom to contact
// (the tenant's support contact), is in the reader's language, and is queued with the change.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { maskEmail } from '../../src/identity/email-change-notice.js';
import { runOperation } from '../../src/ops/operations.js';
import { buildServer } from '../../src/server/app.js';
import { withTenant } from '../../src/storage/db/database.js';
import type { Tenant } from '../../src/tenancy/tenants.js';
import { mintAdminToken } from '../helpers/admin-token.js';
import { CookieBrowser, readForm } from '../helpers/cookie-browser.js';
import { createTestOrthId, type TestOrthId } from '../helpers/orthid.js';
import { freePort } from '../helpers/postgres.js';
import { startTestSmtpServer, type TestSmtpServer } from '../helpers/smtp-server.js';

const PASSWORD = 'correct horse battery staple 42';

describe('the notice to the previous address', { timeout: 300_000 }, () => {
  let smtp: TestSmtpServer;
  let app: TestOrthId;
  let server: FastifyInstance;
  let base: string;
  let tenant: Tenant;
  let address = 0;
  const browser = (language = 'en') =>
    new CookieBrowser({ 'x-forwarded-for': `198.51.100.${++address}`, 'accept-language': language });
  const account = (path = '') => `${base}/t/acme/account${path}`;

  before(async () => {
    smtp = await startTestSmtpServer();
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    app = await createTestOrthId('postgres', {
      env: {
        ORTHID_PUBLIC_URL: base,
        ORTHID_TRUST_PROXY: '127.0.0.1',
        ORTHID_SMTP_URL: `smtp://${smtp.user}@127.0.0.1:${smtp.port}`,
        ORTHID_SMTP_PASSWORD_FILE: smtp.passwordFile,
        ORTHID_SMTP_CA_FILE: smtp.caFile,
        ORTHID_MAIL_FROM: 'OrthID <no-reply@orthid.test>',
      },
    });
    server = await buildServer(app);
    await server.listen({ host: '127.0.0.1', port });
    await runOperation(app, 'tenant.create', { slug: 'acme', displayName: 'Acme' });
    tenant = await app.tenants.get('acme');
    await withTenant(app.db, tenant.id, (tx) =>
      app.tenants.setSettings(tx, tenant.id, { supportContact: 'help@acme.test' }),
    );
    tenant = await app.tenants.get('acme');
    app.oidc.invalidateAll();
  });

  after(async () => {
    await server?.close();
    await app?.close();
    await smtp?.close();
  });

  let users = 0;
  async function newUser() {
    const email = `user${++users}@acme.test`;
    const user = await withTenant(app.db, tenant.id, (tx) =>
      app.users.create(tx, tenant.id, { email, name: 'Ada', password: PASSWORD }, 'test'),
    );
    return { id: user.id, email };
  }

  async function mailsTo(email: string) {
    await app.mailWorker.runOnce();
    return smtp.received.filter((m) => m.rcptTo.includes(email));
  }

  async function signIn(b: CookieBrowser, email: string) {
    const start = await b.get(account());
    const login = await b.follow(start, account());
    const form = readForm(await login.response.text());
    const posted = await b.post(new URL(form.action, base).href, {
      ...form.fields,
      email,
      password: PASSWORD,
    });
    const done = await b.follow(posted, base);
    assert.equal(done.response.status, 200, done.url);
    return done.response.text();
  }

  test('the address is masked: first letters and the top-level domain only', () => {
    assert.equal(maskEmail('ada.lovelace@example.org'), 'a•••@e•••.org');
    assert.equal(maskEmail('x@mail.example.co'), 'x•••@m•••.co');
  });

  test('a new address confirmed on the account pages: the previous one is told, in German, masked, with the support contact', async () => {
    const user = await newUser();
    const b = browser('de');
    const html = await signIn(b, user.email);
    const next = `moved${users}@elsewhere.test`;
    const form = readForm(html, 'email');
    await b.post(new URL(form.action, base).href, { ...form.fields, email: next });
    const link = /(http:\/\/\S+\/email\/confirm\?token=[A-Za-z0-9_-]+)/.exec(
      (await mailsTo(next)).at(-1)!.parsed.text!,
    )![1]!;
    assert.equal((await mailsTo(user.email)).length, 0, 'nothing to the old address before the link is used');
    const other = browser('de');
    const opened = await other.get(link);
    const confirm = readForm(await opened.text(), 'confirm-email');
    const confirmed = await other.post(new URL(confirm.action, base).href, confirm.fields);
    assert.equal(confirmed.status, 200);

    const [notice] = await mailsTo(user.email);
    assert.ok(notice, 'the previous address got the notice');
    assert.match(notice.parsed.subject!, /Die E-Mail-Adresse Ihres Kontos bei Acme wurde geändert/);
    const text = notice.parsed.text!;
    assert.ok(text.includes(maskEmail(next)), text);
    assert.ok(!text.includes(next) && !notice.raw.includes(next), 'the new address never in full');
    assert.match(text, /wenden Sie sich sofort an help@acme\.test/);
    assert.match(notice.parsed.html as string, /help@acme\.test/);
    assert.ok(!(await mailsTo(next)).some((m) => m.parsed.subject === notice.parsed.subject));
  });

  test('an address set by an administrator through the admin API: the previous one is told, in the tenant language', async () => {
    const user = await newUser();
    const token = await mintAdminToken(app, tenant);
    const next = `admin-set${users}@elsewhere.test`;
    const response = await fetch(`${base}/api/v1/tenants/acme/users/${user.id}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ email: next }),
    });
    assert.equal(response.status, 200, await response.clone().text());
    const [notice] = await mailsTo(user.email);
    assert.ok(notice, 'the previous address got the notice');
    assert.match(notice.parsed.subject!, /The email address of your Acme account was changed/);
    assert.ok(notice.parsed.text!.includes(maskEmail(next)));
    assert.ok(!notice.raw.includes(next));
    assert.match(notice.parsed.text!, /contact help@acme\.test at once/);

    // A change of the name alone, or of the address's case only, tells nobody.
    const renamed = await fetch(`${base}/api/v1/tenants/acme/users/${user.id}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Grace', email: next.toUpperCase() }),
    });
    assert.equal(renamed.status, 200);
    assert.equal((await mailsTo(next.toUpperCase())).length + (await mailsTo(next)).length, 0);
  });

  test('a refused change queues no notice: the address another user holds', async () => {
    const user = await newUser();
    const holder = await newUser();
    const token = await mintAdminToken(app, tenant);
    const response = await fetch(`${base}/api/v1/tenants/acme/users/${user.id}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ email: holder.email }),
    });
    assert.equal(response.status, 409);
    assert.equal((await mailsTo(user.email)).length, 0);
  });
});
