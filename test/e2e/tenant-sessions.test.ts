// Two tenants' sessions in one browser: each tenant's session cookie lives on its own path, so
// signing in to one tenant leaves the browser signed in to the other.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import * as oidc from 'openid-client';
import { buildServer } from '../../src/server/app.js';
import { withTenant } from '../../src/storage/db/database.js';
import { CookieBrowser } from '../helpers/cookie-browser.js';
import { consentToCallback, submitHostedSignIn } from '../helpers/hosted-sign-in.js';
import { createTestOrthId, type TestOrthId } from '../helpers/orthid.js';
import { freePort } from '../helpers/postgres.js';

const PASSWORD = 'correct horse battery staple 42';

describe('sessions of two tenants in one browser', () => {
  let app: TestOrthId;
  let server: FastifyInstance;
  let base: string;
  const tenants: Record<string, { issuer: string; client: { client_id: string; client_secret: string } }> =
    {};

  before(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    app = await createTestOrthId('pglite', { env: { ORTHID_PUBLIC_URL: base } });
    server = await buildServer(app);
    await server.listen({ host: '127.0.0.1', port });
    for (const slug of ['alpha', 'beta']) {
      const tenant = await app.tenants.create({ slug, actor: 'test' });
      await withTenant(app.db, tenant.id, async (tx) => {
        await app.users.create(tx, tenant.id, { email: `ann@${slug}.test`, password: PASSWORD }, 'test');
        const client = await app.clients.create(
          tx,
          tenant.id,
          { name: `${slug} web`, grantTypes: ['authorization_code'], redirectUris: [`${base}/cb/${slug}`] },
          'test',
        );
        tenants[slug] = {
          issuer: `${base}/t/${slug}`,
          client: { client_id: client.clientId, client_secret: client.clientSecret! },
        };
      });
    }
  });

  after(async () => {
    await server?.close();
    await app?.close();
  });

  async function signInTo(slug: string, browser: CookieBrowser) {
    const t = tenants[slug]!;
    const redirectUri = `${base}/cb/${slug}`;
    const signIn = await submitHostedSignIn({
      issuer: t.issuer,
      client: t.client,
      redirectUri,
      email: `ann@${slug}.test`,
      password: PASSWORD,
      scope: 'openid email',
      browser,
    });
    assert.equal(signIn.posted.status, 303);
    const callback = await consentToCallback(signIn, redirectUri);
    assert.ok(callback.searchParams.get('code'), `signed in to ${slug}`);
    return signIn.config;
  }

  /** An authorization request that must not show a page: a code when the tenant's session holds. */
  async function silentAuthorization(slug: string, browser: CookieBrowser, config: oidc.Configuration) {
    const redirectUri = `${base}/cb/${slug}`;
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: 'openid email',
      prompt: 'none',
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
      state: oidc.randomState(),
    });
    const done = await browser.follow(await browser.get(url.href), base, redirectUri);
    return new URL(done.url).searchParams;
  }

  test('signing in to tenant B keeps the browser signed in to tenant A', { timeout: 60_000 }, async () => {
    const browser = new CookieBrowser();
    const alpha = await signInTo('alpha', browser);
    const beta = await signInTo('beta', browser);

    const atAlpha = await silentAuthorization('alpha', browser, alpha);
    assert.equal(atAlpha.get('error'), null, `alpha answered ${atAlpha.get('error')}`);
    assert.ok(atAlpha.get('code'));
    const atBeta = await silentAuthorization('beta', browser, beta);
    assert.equal(atBeta.get('error'), null, `beta answered ${atBeta.get('error')}`);
    assert.ok(atBeta.get('code'));

    // A browser that never signed in to alpha is still asked to.
    const stranger = await silentAuthorization('alpha', new CookieBrowser(), alpha);
    assert.equal(stranger.get('error'), 'login_required');
  });

  test("a tenant's session cookie is scoped to the tenant's path", { timeout: 60_000 }, async () => {
    const browser = new CookieBrowser();
    const t = tenants.alpha!;
    const signIn = await submitHostedSignIn({
      issuer: t.issuer,
      client: t.client,
      redirectUri: `${base}/cb/alpha`,
      email: 'ann@alpha.test',
      password: PASSWORD,
      scope: 'openid email',
      browser,
    });
    // The session cookie is set when the browser resumes the authorization after the form.
    const resumed = await browser.get(new URL(signIn.posted.headers.get('location')!, base).href);
    const session = resumed.headers.getSetCookie().filter((c) => /^_session(\.sig)?=/.test(c));
    assert.ok(session.length > 0, 'the resumed authorization sets the session cookie');
    for (const cookie of session) assert.match(cookie, /; path=\/t\/alpha\/(;|$)/i);
  });
});
