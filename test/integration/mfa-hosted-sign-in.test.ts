// The second factor at the hosted sign-in, over real HTTP on real PostgreSQL with a stock
// openid-client relying party and no JavaScript: enrolment (QR code, URI, secret, recovery
// codes), TOTP codes accepted once within one step of drift, recovery codes, enrolment bound to
// its sign-in, throttled guessing, step-up by acr_values and prompt=login, and amr/acr in ID tokens.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { readAudit } from '../../src/audit/audit-log.js';
import { fixedClock } from '../../src/core/clock.js';
import { ACR_MFA, ACR_PASSWORD } from '../../src/identity/mfa-factors.js';
import { TOTP_PERIOD_SECONDS, totpCode } from '../../src/identity/totp.js';
import { configureMfaPolicy } from '../../src/ops/mfa-policy.js';
import { buildServer } from '../../src/server/app.js';
import { withTenant } from '../../src/storage/db/database.js';
import type { Tenant } from '../../src/tenancy/tenants.js';
import { CookieBrowser } from '../helpers/cookie-browser.js';
import {
  discover,
  enrolmentSecret,
  getPage,
  type MfaFlow,
  pageError,
  recoveryCodesOn,
  startFlow,
  submit,
  tokens,
} from '../helpers/mfa-sign-in.js';
import { createTestOrthId, type TestOrthId } from '../helpers/orthid.js';
import { freePort } from '../helpers/postgres.js';

const PASSWORD = 'correct horse battery staple 42';
const STEP_MS = TOTP_PERIOD_SECONDS * 1000;

describe('a second factor at the hosted sign-in', { timeout: 300_000 }, () => {
  let app: TestOrthId;
  let server: FastifyInstance;
  let base: string;
  const tenants: Record<string, { tenant: Tenant; client: { client_id: string; client_secret: string } }> =
    {};
  // The codes' time: a fixed clock at the start of a step, moved a step at a time, so which
  // codes are current, expired or replayed never depends on when the test runs.
  const start = Math.floor(Date.now() / STEP_MS) * STEP_MS + 1000;
  const clock = fixedClock(new Date(start));
  const step = (n: number) => new Date(start + n * STEP_MS);
  let address = 0;
  /** A browser at its own client address: failures of one test never block another's address. */
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
    for (const [slug, mode] of [
      ['acme', 'required'],
      ['beta', 'off'],
      ['gamma', 'optional'],
    ] as const) {
      const tenant = await app.tenants.create({ slug, actor: 'test' });
      const client = await withTenant(app.db, tenant.id, async (tx) => {
        for (const name of ['ann', 'bob', 'carl', 'dora', 'erin', 'fay', 'gus']) {
          await app.users.create(
            tx,
            tenant.id,
            { email: `${name}@${slug}.test`, password: PASSWORD },
            'test',
          );
        }
        const created = await app.clients.create(
          tx,
          tenant.id,
          {
            name: `${slug} web`,
            grantTypes: ['authorization_code'],
            redirectUris: [`${base}/cb`],
            firstParty: true,
          },
          'test',
        );
        return { client_id: created.clientId, client_secret: created.clientSecret! };
      });
      await configureMfaPolicy(app, tenant, { mode }, 'test');
      tenants[slug] = { tenant: await app.tenants.get(slug), client };
    }
    app.oidc.invalidateAll();
  });

  after(async () => {
    await server?.close();
    await app?.close();
  });

  const begin = (slug: string, options: { browser?: CookieBrowser; params?: Record<string, string> } = {}) =>
    startFlow({
      issuer: `${base}/t/${slug}`,
      client: tenants[slug]!.client,
      redirectUri: `${base}/cb`,
      browser: options.browser ?? browser(),
      params: options.params,
    });

  const password = (flow: MfaFlow, email: string, pass = PASSWORD) => submit(flow, { email, password: pass });

  const userId = async (slug: string, email: string) => {
    const { tenant } = tenants[slug]!;
    return (await withTenant(app.db, tenant.id, (tx) => app.users.findByEmail(tx, tenant.id, email)))!.id;
  };

  const auditOf = async (slug: string, action: string) => {
    const { tenant } = tenants[slug]!;
    const events = await withTenant(app.db, tenant.id, async (tx) =>
      readAudit(tx, await app.tenantKeys.forTenant(tx, tenant.id), { limit: 500 }),
    );
    return events.filter((e) => e.action === action);
  };

  const activeFactors = async (slug: string, email: string) => {
    const { tenant } = tenants[slug]!;
    const id = await userId(slug, email);
    return withTenant(app.db, tenant.id, (tx) => app.mfa.listFactors(tx, id));
  };

  /** Signs in with the password and enrols an authenticator app; returns its secret and codes. */
  async function enrol(slug: string, email: string) {
    const flow = await password(await begin(slug), email);
    const secret = enrolmentSecret(flow.html);
    await submit(flow, { code: totpCode(secret, clock.now()) }, 'enrol-confirm');
    const codes = recoveryCodesOn(flow.html);
    await submit(flow, {}, 'continue');
    assert.ok(flow.callback, 'the enrolment ends at the callback');
    return { secret, codes, claims: await tokens(flow) };
  }

  test('discovery lists the authentication context classes a client can ask for', async () => {
    const config = await discover(`${base}/t/acme`, tenants.acme!.client);
    assert.deepEqual(config.serverMetadata().acr_values_supported, [ACR_PASSWORD, ACR_MFA]);
  });

  test('a user the tenant requires a second factor of enrols at sign-in: QR code, URI and secret, a wrong or malformed code refused, then ten recovery codes and an ID token with amr otp', async () => {
    clock.set(step(0));
    const flow = await password(await begin('acme'), 'ann@acme.test');
    assert.equal(flow.status, 200);
    assert.match(flow.html, /<h1>Set up your authenticator app<\/h1>/);
    const qr = /<img src="data:image\/svg\+xml;base64,([^"]+)"/.exec(flow.html);
    assert.ok(qr, 'the QR code is an image of the page itself, no script and no other origin');
    assert.match(Buffer.from(qr[1]!, 'base64').toString(), /^<svg[^>]*>.*<path/s);
    const secret = enrolmentSecret(flow.html);
    assert.match(secret, /^[A-Z2-7]{32}$/, 'the secret as text, 160 bits in base32');
    assert.match(flow.html, new RegExp(`href="otpauth://totp/[^"]*secret=${secret}`));
    assert.match(flow.html, /autocomplete="one-time-code"/);
    assert.match(flow.html, /inputmode="numeric"/);
    assert.doesNotMatch(flow.html, /Not now/, 'a required enrolment cannot be skipped');

    const right = totpCode(secret, clock.now());
    const wrong = right.replace(/^./, (d) => String((Number(d) + 1) % 10));
    await submit(flow, { code: wrong }, 'enrol-confirm');
    assert.equal(flow.status, 401);
    assert.deepEqual(pageError(flow.html), {
      code: 'mfa.code_invalid',
      message: 'That code is not correct or has expired. Enter the code your authenticator app shows now.',
    });
    assert.equal(enrolmentSecret(flow.html), secret, 'the same enrolment is shown again');
    await submit(flow, { code: '12ab56' }, 'enrol-confirm');
    assert.equal(flow.status, 400);
    assert.equal(pageError(flow.html)?.code, 'mfa.code_malformed');
    assert.equal((await activeFactors('acme', 'ann@acme.test')).factors.length, 0, 'nothing enrolled yet');

    await submit(flow, { code: right }, 'enrol-confirm');
    assert.equal(flow.status, 200);
    const codes = recoveryCodesOn(flow.html);
    assert.equal(codes.length, 10);
    assert.equal(new Set(codes).size, 10);
    for (const code of codes) assert.match(code, /^[0-9a-z]{5}-[0-9a-z]{5}$/);
    await submit(flow, {}, 'continue');
    const claims = await tokens(flow);
    assert.deepEqual(claims.amr, ['pwd', 'otp', 'mfa']);
    assert.equal(claims.acr, ACR_MFA);

    const listed = await activeFactors('acme', 'ann@acme.test');
    assert.equal(listed.factors.length, 1);
    assert.equal(listed.factors[0]!.kind, 'totp');
    assert.equal(listed.recoveryCodesLeft, 10);
    assert.ok(!JSON.stringify(listed).includes(secret), 'the listing never carries the secret');
    const events = await auditOf('acme', 'user.mfa_enrolled');
    assert.deepEqual(events.map((e) => [e.outcome, e.details?.reason ?? null]).reverse(), [
      ['failure', 'invalid_code'],
      ['failure', 'malformed'],
      ['success', null],
    ]);
    for (const e of events)
      assert.ok(!JSON.stringify(e).includes(secret) && !JSON.stringify(e).includes(right));
    // Kept for the next tests.
    annSecret = secret;
    annCodes = codes;
  });

  let annSecret = '';
  let annCodes: string[] = [];

  test('a code is accepted once, within one step of clock drift either side, and an expired one is refused', async () => {
    assert.ok(annSecret, 'runs after the enrolment above');
    clock.set(step(0));
    const first = await password(await begin('acme'), 'ann@acme.test');
    assert.match(first.html, /<h1>Two-step verification<\/h1>/);
    assert.match(first.html, /autocomplete="one-time-code"/);
    assert.match(first.html, /inputmode="numeric"/);
    await submit(first, { code: totpCode(annSecret, step(0)) }, 'totp-form');
    assert.equal(first.status, 401);
    assert.equal(pageError(first.html)?.code, 'mfa.code_replayed', 'the enrolment code was used already');
    await submit(first, { code: totpCode(annSecret, step(1)) }, 'totp-form');
    assert.ok(first.callback, 'the next step’s code is accepted a step early');
    assert.deepEqual((await tokens(first)).amr, ['pwd', 'otp', 'mfa']);

    clock.set(step(2));
    const second = await password(await begin('acme'), 'ann@acme.test');
    await submit(second, { code: totpCode(annSecret, step(1)) }, 'totp-form');
    assert.equal(pageError(second.html)?.code, 'mfa.code_replayed', 'accepted once, however late');
    await submit(second, { code: totpCode(annSecret, step(0)) }, 'totp-form');
    assert.equal(pageError(second.html)?.code, 'mfa.code_invalid', 'two steps old has expired');
    await submit(second, { code: totpCode(annSecret, step(2)) }, 'totp-form');
    assert.ok(second.callback);
    const reasons = (await auditOf('acme', 'user.mfa_verified')).map((e) => [
      e.outcome,
      e.details?.reason ?? null,
    ]);
    assert.deepEqual(reasons.reverse(), [
      ['failure', 'replayed_code'],
      ['success', null],
      ['failure', 'replayed_code'],
      ['failure', 'invalid_code'],
      ['success', null],
    ]);
  });

  test('a recovery code signs in once and says how many remain; the same code again is refused', async () => {
    assert.ok(annCodes.length === 10, 'runs after the enrolment above');
    const flow = await password(await begin('acme'), 'ann@acme.test');
    const link = /<a href="([^"]*recovery=1)">Use a recovery code<\/a>/.exec(flow.html);
    assert.ok(link, 'the second-factor page links to the recovery-code form');
    await getPage(flow, link[1]!);
    assert.match(flow.html, /name="recovery_code"/);
    await submit(flow, { recovery_code: annCodes[0]!.toUpperCase() }, 'recovery-code-form');
    assert.equal(flow.status, 200);
    assert.match(flow.html, /You have 9 recovery codes left\./);
    await submit(flow, {}, 'continue');
    const claims = await tokens(flow);
    assert.deepEqual(claims.amr, ['pwd', 'mfa']);
    assert.equal(claims.acr, ACR_MFA);

    const again = await password(await begin('acme'), 'ann@acme.test');
    await getPage(again, /<a href="([^"]*recovery=1)"/.exec(again.html)![1]!);
    await submit(again, { recovery_code: annCodes[0]! }, 'recovery-code-form');
    assert.equal(again.status, 401);
    assert.deepEqual(pageError(again.html), {
      code: 'mfa.recovery_code_used',
      message: 'That recovery code was already used; each works once. Enter another of your codes.',
    });
    assert.equal(again.callback, undefined);
    assert.equal((await activeFactors('acme', 'ann@acme.test')).recoveryCodesLeft, 9, 'nothing else spent');
    const events = await auditOf('acme', 'user.mfa_recovery_code_used');
    assert.deepEqual(
      events.map((e) => [e.outcome, e.details?.reason ?? e.details?.remaining]),
      [
        ['failure', 'recovery_code_reused'],
        ['success', 9],
      ],
    );
  });

  test('an enrolment started in one sign-in cannot be completed from another, and the refusal changes nothing', async () => {
    clock.set(step(10));
    const a = await password(await begin('acme'), 'carl@acme.test');
    const b = await password(await begin('acme'), 'carl@acme.test');
    const factorA = /name="factor" value="([^"]+)"/.exec(a.html)![1]!;
    const secretA = enrolmentSecret(a.html);
    await submit(b, { factor: factorA, code: totpCode(secretA, clock.now()) }, 'enrol-confirm');
    assert.equal(b.status, 403);
    assert.equal(pageError(b.html)?.code, 'mfa.enrolment_foreign');
    assert.equal((await activeFactors('acme', 'carl@acme.test')).factors.length, 0);
    const refused = (await auditOf('acme', 'user.mfa_enrolled')).find(
      (e) => e.details?.reason === 'foreign_enrolment',
    );
    assert.ok(refused, 'the refusal is audited');
    assert.equal(refused.target, `user:${await userId('acme', 'carl@acme.test')}`);

    await submit(a, { code: totpCode(secretA, clock.now()) }, 'enrol-confirm');
    assert.equal(recoveryCodesOn(a.html).length, 10, 'the sign-in that began it still completes it');
  });

  test('a wrong password answers alike whether or not the account has a second factor', async () => {
    const strip = (html: string) =>
      html
        .replace(/value="[^"]*"/g, 'value=""')
        .replace(/\/interaction\/[^/"]+/g, '/interaction/X')
        .replace(/interaction=[^&"]+/g, 'interaction=X');
    const pages: string[] = [];
    for (const email of ['ann@acme.test', 'dora@acme.test', 'nobody@acme.test']) {
      const flow = await password(await begin('acme'), email, 'not the password at all');
      assert.equal(flow.status, 401);
      assert.equal(pageError(flow.html)?.message, 'The email or password is incorrect.');
      pages.push(strip(flow.html).replace(email, 'EMAIL'));
    }
    assert.equal(pages[0], pages[1], 'with MFA and without');
    assert.equal(pages[0], pages[2], 'and an unknown account');
  });

  test('guessing codes is throttled per account in PostgreSQL, and a correct code waits out the block', async () => {
    clock.set(step(20));
    const { secret } = await enrol('acme', 'erin@acme.test');
    clock.set(step(21));
    const statuses: number[] = [];
    // Each guess from its own address: the account's counter alone blocks.
    for (let i = 0; i < 6; i++) {
      const flow = await password(await begin('acme'), 'erin@acme.test');
      await submit(flow, { code: totpCode(secret, step(30 + i)) }, 'totp-form');
      statuses.push(flow.status);
    }
    assert.deepEqual(statuses, [401, 401, 401, 401, 401, 401]);
    const blocked = await password(await begin('acme'), 'erin@acme.test');
    await submit(blocked, { code: totpCode(secret, clock.now()) }, 'totp-form');
    assert.equal(blocked.status, 429, 'after five free failures the account waits');
    assert.equal(pageError(blocked.html)?.code, 'auth.throttled');
    clock.set(new Date(clock.now().getTime() + 5_000));
    await submit(blocked, { code: totpCode(secret, clock.now()) }, 'totp-form');
    assert.ok(blocked.callback, 'the block ends');
  });

  test('with MFA optional the sign-in offers it and "Not now" signs in with the password alone', async () => {
    const flow = await password(await begin('gamma'), 'gus@gamma.test');
    assert.match(flow.html, /<h1>Protect your account<\/h1>/);
    await submit(flow, {}, 'enrol-skip');
    const claims = await tokens(flow);
    assert.deepEqual(claims.amr, ['pwd']);
    assert.equal(claims.acr, ACR_PASSWORD);

    const opted = await password(await begin('gamma'), 'fay@gamma.test');
    await submit(opted, {}, 'enrol-start');
    assert.match(opted.html, /Not now/, 'an optional enrolment can still be left');
    await submit(opted, { code: totpCode(enrolmentSecret(opted.html), clock.now()) }, 'enrol-confirm');
    await submit(opted, {}, 'continue');
    assert.deepEqual((await tokens(opted)).amr, ['pwd', 'otp', 'mfa']);
  });

  test('acr_values demanding a second factor step a password-only session up; prompt=login asks again', async () => {
    clock.set(step(40));
    const shared = browser();
    const plain = await password(await begin('beta', { browser: shared }), 'bob@beta.test');
    const first = await tokens(plain);
    assert.deepEqual(first.amr, ['pwd']);
    assert.equal(first.acr, ACR_PASSWORD);

    const silent = await begin('beta', { browser: shared });
    assert.ok(silent.callback, 'the session answers a request that demands nothing');

    const demanding = await begin('beta', { browser: shared, params: { acr_values: ACR_MFA } });
    assert.equal(demanding.callback, undefined, 'a password-only session is not accepted');
    assert.match(demanding.html, /<h1>Sign in<\/h1>/);
    await password(demanding, 'bob@beta.test');
    assert.match(demanding.html, /<h1>Set up your authenticator app<\/h1>/, 'no factor yet: enrol');
    assert.doesNotMatch(demanding.html, /Not now/, 'the client demands it');
    const secret = enrolmentSecret(demanding.html);
    await submit(demanding, { code: totpCode(secret, clock.now()) }, 'enrol-confirm');
    await submit(demanding, {}, 'continue');
    const stepped = await tokens(demanding);
    assert.equal(stepped.acr, ACR_MFA);
    assert.deepEqual(stepped.amr, ['pwd', 'otp', 'mfa']);
    assert.equal(stepped.sub, first.sub);

    const satisfied = await begin('beta', { browser: shared, params: { acr_values: ACR_MFA } });
    assert.ok(satisfied.callback, 'a session with a second factor meets the demand');
    assert.equal((await tokens(satisfied)).acr, ACR_MFA);

    clock.set(step(41));
    const again = await begin('beta', { browser: shared, params: { prompt: 'login' } });
    assert.match(again.html, /<h1>Sign in<\/h1>/);
    await password(again, 'bob@beta.test');
    assert.match(again.html, /<h1>Two-step verification<\/h1>/, 'a user with a factor is asked for it');
    await submit(again, { code: totpCode(secret, clock.now()) }, 'totp-form');
    assert.equal((await tokens(again)).acr, ACR_MFA);
  });

  test('a correct password with a second step to come is audited as verified, and user.sign_in only once that step completes the sign-in', async () => {
    clock.set(step(60));
    const trailOf = async (slug: string, email: string) => {
      const target = `user:${await userId(slug, email)}`;
      const { tenant } = tenants[slug]!;
      const events = await withTenant(app.db, tenant.id, async (tx) =>
        readAudit(tx, await app.tenantKeys.forTenant(tx, tenant.id), { limit: 500 }),
      );
      const signInSteps = [
        'user.password_verified',
        'user.mfa_enrolled',
        'user.mfa_verified',
        'user.sign_in',
      ];
      // Oldest first.
      return events
        .filter((e) => e.target === target && signInSteps.includes(e.action))
        .reverse()
        .map((e) => [e.action, e.outcome]);
    };

    // MFA off: the password alone signs the user in.
    const plain = await password(await begin('beta'), 'ann@beta.test');
    assert.ok(plain.callback);
    assert.deepEqual(await trailOf('beta', 'ann@beta.test'), [['user.sign_in', 'success']]);

    // MFA required: the password is verified, the enrolment proves a factor, the sign-in completes
    // when the user continues past the recovery codes.
    const flow = await password(await begin('acme'), 'fay@acme.test');
    assert.match(flow.html, /<h1>Set up your authenticator app<\/h1>/);
    assert.deepEqual(await trailOf('acme', 'fay@acme.test'), [['user.password_verified', 'success']]);
    const secret = enrolmentSecret(flow.html);
    await submit(flow, { code: totpCode(secret, clock.now()) }, 'enrol-confirm');
    assert.equal(recoveryCodesOn(flow.html).length, 10);
    assert.deepEqual(await trailOf('acme', 'fay@acme.test'), [
      ['user.password_verified', 'success'],
      ['user.mfa_enrolled', 'success'],
    ]);
    await submit(flow, {}, 'continue');
    assert.ok(flow.callback);
    const fay = `user:${await userId('acme', 'fay@acme.test')}`;
    const [completed] = (await auditOf('acme', 'user.sign_in')).filter((e) => e.target === fay);
    assert.equal(completed?.actor, fay);
    assert.deepEqual(completed?.details, {
      method: 'password',
      secondFactor: 'totp',
      amr: ['pwd', 'otp', 'mfa'],
      acr: ACR_MFA,
      clientId: tenants.acme!.client.client_id,
    });

    // With the factor: a wrong code leaves the sign-in open; the right one completes it.
    clock.set(step(61));
    const again = await password(await begin('acme'), 'fay@acme.test');
    assert.match(again.html, /<h1>Two-step verification<\/h1>/);
    await submit(again, { code: totpCode(secret, step(60)) }, 'totp-form');
    assert.equal(pageError(again.html)?.code, 'mfa.code_replayed');
    await submit(again, { code: totpCode(secret, clock.now()) }, 'totp-form');
    assert.ok(again.callback);
    assert.deepEqual((await trailOf('acme', 'fay@acme.test')).slice(3), [
      ['user.password_verified', 'success'],
      ['user.mfa_verified', 'failure'],
      ['user.mfa_verified', 'success'],
      ['user.sign_in', 'success'],
    ]);
  });

  test('a second-factor step cannot be reached without the password, nor posted without its CSRF token', async () => {
    const flow = await begin('acme');
    const action = /action="([^"]*)"/.exec(flow.html)![1]!.replace(/\/login$/, '/second-factor');
    const response = await flow.browser.post(new URL(action, flow.url).href, {
      code: '123456',
      method: 'totp',
    });
    assert.equal(response.status, 403, 'no CSRF token');
    const csrf = /name="csrf" value="([^"]*)"/.exec(flow.html)![1]!;
    const early = await flow.browser.post(new URL(action, flow.url).href, {
      csrf,
      code: '123456',
      method: 'totp',
    });
    assert.equal(early.status, 400);
    assert.match(await early.text(), /This sign-in step has expired/);
  });
});
