// A sign-in waiting at its second step rests on the password it checked: a password reset (or any
// new password) of that account in the meantime ends it, over real HTTP on real PostgreSQL with a
// stock openid-client relying party; the same interaction then asks for the password again.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { fixedClock } from '../../src/core/clock.js';
import { TOTP_PERIOD_SECONDS, totpCode } from '../../src/identity/totp.js';
import { buildServer } from '../../src/server/app.js';
import { withTenant } from '../../src/storage/db/database.js';
import type { Tenant } from '../../src/tenancy/tenants.js';
import { CookieBrowser } from '../helpers/cookie-browser.js';
import { getPage, type MfaFlow, pageError, startFlow, submit, tokens } from '../helpers/mfa-sign-in.js';
import { createTestOrthId, type TestOrthId } from '../helpers/orthid.js';
import { freePort } from '../helpers/postgres.js';

const PASSWORD = 'correct horse battery staple 42';
const NEW_PASSWORD = 'a different, equally long passphrase 7';
const STEP_MS = TOTP_PERIOD_SECONDS * 1000;
const mail = (text: string) => ({ subject: 'Reset', text, html: `<p>${text}</p>` });

describe('a pending second step and a password reset', { timeout: 300_000 }, () => {
  let app: TestOrthId;
  let server: FastifyInstance;
  let base: string;
  let tenant: Tenant;
  let client: { client_id: string; client_secret: string };
  // TOTP codes by a fixed clock moved a step at a time, so no code is ever replayed by chance.
  const start = Math.floor(Date.now() / STEP_MS) * STEP_MS + 1000;
  const clock = fixedClock(new Date(start));
  const nextCode = (secret: string) => {
    clock.set(new Date(clock.now().getTime() + STEP_MS));
    return totpCode(secret, clock.now());
  };
  let address = 0;
  const browser = () => new CookieBrowser({ 'x-forwarded-for': `198.51.100.${++address}` });

  before(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    app = await createTestOrthId('postgres', {
      env: { ORTHID_PUBLIC_URL: base, ORTHID_TRUST_PROXY: '127.0.0.1' },
      clock,
    });
    server = await buildServer(app);
    await server.listen({ host: '127.0.0.1', port });
    tenant = await app.tenants.create({ slug: 'acme', actor: 'test' });
    client = await withTenant(app.db, tenant.id, async (tx) => {
      const created = await app.clients.create(
        tx,
        tenant.id,
        { name: 'web', grantTypes: ['authorization_code'], redirectUris: [`${base}/cb`], firstParty: true },
        'test',
      );
      return { client_id: created.clientId, client_secret: created.clientSecret! };
    });
  });

  after(async () => {
    await server?.close();
    await app?.close();
  });

  let users = 0;
  /** A user with a TOTP factor; returns its address and secret. */
  async function userWithTotp() {
    const email = `user${++users}@acme.test`;
    const secret = await withTenant(app.db, tenant.id, async (tx) => {
      const user = await app.users.create(tx, tenant.id, { email, password: PASSWORD }, 'test');
      return app.mfa.provisionTotp(tx, tenant.id, user.id, 'test');
    });
    return { email, secret };
  }

  /** The sign-in up to the second-factor page. */
  async function atSecondStep(email: string, password = PASSWORD): Promise<MfaFlow> {
    const flow = await startFlow({
      issuer: `${base}/t/acme`,
      client,
      redirectUri: `${base}/cb`,
      browser: browser(),
    });
    await submit(flow, { email, password });
    assert.equal(flow.status, 200);
    assert.match(flow.html, /name="code"/, 'the second-factor page');
    return flow;
  }

  /** Two TOTP steps on: a new password is set later than the one the sign-in checked. */
  const later = () => clock.set(new Date(clock.now().getTime() + 60_000));

  async function resetPassword(email: string) {
    later();
    let secret = '';
    await app.passwordReset.request({
      tenantId: tenant.id,
      email,
      ip: '203.0.113.9',
      composeLink: (link) => {
        secret = link.secret;
        return mail('Reset');
      },
    });
    assert.ok(secret, 'a reset link was issued');
    await app.passwordReset.complete({
      tenantId: tenant.id,
      secret,
      password: NEW_PASSWORD,
      ip: '203.0.113.9',
      composeChanged: () => mail('Changed'),
    });
  }

  test('without a reset, the second step finishes the sign-in', async () => {
    const { email, secret } = await userWithTotp();
    const flow = await atSecondStep(email);
    await submit(flow, { code: nextCode(secret) });
    const claims = await tokens(flow);
    assert.equal(claims.email, email);
  });

  test('a reset after the password step ends that sign-in: the right code no longer signs in', async () => {
    const { email, secret } = await userWithTotp();
    const flow = await atSecondStep(email);
    const interaction = flow.url.replace(/(\/interaction\/[^/?]+).*$/, '$1');
    await resetPassword(email);
    await submit(flow, { code: nextCode(secret) });
    assert.equal(flow.callback, undefined, 'no authorization code for the old password');
    assert.equal(flow.status, 400);
    assert.match(flow.html, /This sign-in step has expired/);
    // The interaction is back at its first step: it asks for the password, and the new one works.
    await getPage(flow, interaction);
    assert.match(flow.html, /name="password"/);
    await submit(flow, { email, password: PASSWORD });
    assert.equal(pageError(flow.html)?.code, 'auth.invalid_credentials', 'the old password is refused');
    await submit(flow, { email, password: NEW_PASSWORD });
    await submit(flow, { code: nextCode(secret) });
    assert.equal((await tokens(flow)).email, email);
  });

  test('a password set by an administrator ends a pending step the same way', async () => {
    const { email, secret } = await userWithTotp();
    const flow = await atSecondStep(email);
    later();
    await withTenant(app.db, tenant.id, async (tx) => {
      const user = (await app.users.findByEmail(tx, tenant.id, email))!;
      await app.users.setPassword(tx, tenant.id, user.id, NEW_PASSWORD, { mfaEnforced: true, actor: 'test' });
    });
    await submit(flow, { code: nextCode(secret) });
    assert.equal(flow.callback, undefined);
    assert.match(flow.html, /This sign-in step has expired|data-code="mfa.step_expired"/);
  });
});
