import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { readAudit } from '../../src/audit/audit-log.js';
import { buildServer } from '../../src/server/app.js';
import { withTenant } from '../../src/storage/db/database.js';
import { createVerifier, type TokenVerificationError } from '../../src/verify/index.js';
import { CookieBrowser, readForm } from '../helpers/cookie-browser.js';
import { createTestOrthId, DRIVERS, type TestOrthId } from '../helpers/orthid.js';
import { freePort } from '../helpers/postgres.js';

const PASSWORD = 'correct horse battery staple 42';
const API = 'https://api.acme.test';

for (const driver of DRIVERS) {
  describe(`OpenID Connect with a stock relying party (${driver})`, () => {
    let app: TestOrthId;
    let server: FastifyInstance;
    let base: string;
    let issuer: string;
    let rp: { clientId: string; clientSecret: string; redirectUri: string };
    let m2m: { clientId: string; clientSecret: string };
    let userId: string;
    let orgId: string;
    let config: oidc.Configuration;

    before(async () => {
      const port = await freePort();
      base = `http://127.0.0.1:${port}`;
      app = await createTestOrthId(driver, { env: { ORTHID_PUBLIC_URL: base } });
      server = await buildServer(app);
      await server.listen({ host: '127.0.0.1', port });
      const tenant = await app.tenants.create({ slug: 'acme', actor: 'test' });
      await app.tenants.create({ slug: 'other', actor: 'test' });
      issuer = `${base}/t/acme`;
      const redirectUri = `${base}/callback`;
      await withTenant(app.db, tenant.id, async (tx) => {
        userId = (
          await app.users.create(
            tx,
            tenant.id,
            { email: 'ann@acme.test', name: 'Ann Acme', password: PASSWORD },
            'test',
          )
        ).id;
        const resource = await app.rbac.resources.create(
          tx,
          tenant.id,
          { indicator: API, name: 'Orders API' },
          'test',
        );
        const read = await app.rbac.permissions.create(
          tx,
          tenant.id,
          resource.id,
          { name: 'orders:read' },
          'test',
        );
        await app.rbac.permissions.create(tx, tenant.id, resource.id, { name: 'orders:write' }, 'test');
        const clerk = await app.rbac.roles.create(tx, tenant.id, { name: 'clerk' }, 'test');
        await app.rbac.roles.addPermission(tx, tenant.id, clerk.id, read.id, 'test');
        const org = await app.rbac.organisations.create(tx, tenant.id, { name: 'Acme Retail' }, 'test');
        orgId = org.id;
        const membership = await app.rbac.memberships.add(tx, tenant.id, org.id, userId, 'test');
        await app.rbac.memberships.grantRole(tx, tenant.id, membership.id, clerk.id, 'test');
        const web = await app.clients.create(
          tx,
          tenant.id,
          {
            name: 'Acme Web',
            grantTypes: ['authorization_code', 'refresh_token'],
            redirectUris: [redirectUri],
            postLogoutRedirectUris: [`${base}/bye`],
            resources: [API],
          },
          'test',
        );
        rp = { clientId: web.clientId, clientSecret: web.clientSecret!, redirectUri };
        const machine = await app.clients.create(
          tx,
          tenant.id,
          { name: 'Acme Worker', grantTypes: ['client_credentials'], resources: [API] },
          'test',
        );
        await app.rbac.clientRoles.grant(tx, tenant.id, machine.clientId, clerk.id, 'test');
        m2m = { clientId: machine.clientId, clientSecret: machine.clientSecret! };
      });
      config = await oidc.discovery(new URL(issuer), rp.clientId, rp.clientSecret, undefined, {
        execute: [oidc.allowInsecureRequests],
      });
    });

    after(async () => {
      await server?.close();
      await app?.close();
    });

    async function signIn(browser: CookieBrowser, password = PASSWORD) {
      const verifier = oidc.randomPKCECodeVerifier();
      const state = oidc.randomState();
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: rp.redirectUri,
        scope: 'openid email profile offline_access orders:read orders:write',
        resource: API,
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
        prompt: 'consent',
        state,
      });
      const login = await browser.follow(await browser.get(url.href), url.href);
      assert.equal(login.response.status, 200);
      const loginPage = await login.response.text();
      assert.match(loginPage, /Sign in/);
      const form = readForm(loginPage);
      const posted = await browser.post(new URL(form.action, base).href, {
        ...form.fields,
        email: 'ann@acme.test',
        password,
      });
      return { posted, verifier, state };
    }

    async function authorize(browser: CookieBrowser) {
      const { posted, verifier, state } = await signIn(browser);
      assert.equal(posted.status, 303);
      const consent = await browser.follow(posted, base);
      const consentPage = await consent.response.text();
      assert.match(consentPage, /Allow Acme Web/);
      const form = readForm(consentPage);
      const allowed = await browser.post(new URL(form.action, base).href, form.fields);
      const done = await browser.follow(allowed, base, rp.redirectUri);
      return oidc.authorizationCodeGrant(config, new URL(done.url), {
        pkceCodeVerifier: verifier,
        expectedState: state,
      });
    }

    test('authorization code with PKCE through the hosted sign-in form yields verifiable tokens', async () => {
      const tokens = await authorize(new CookieBrowser());
      const claims = tokens.claims()!;
      assert.equal(claims.sub, userId);
      assert.equal(claims.email, 'ann@acme.test');
      assert.equal(claims.name, 'Ann Acme');
      const jwks = createRemoteJWKSet(new URL(`${issuer}/jwks`));
      await jwtVerify(tokens.id_token!, jwks, { issuer, audience: rp.clientId });
      const access = await jwtVerify(tokens.access_token, jwks, { issuer, audience: API });
      assert.equal(access.payload.scope, 'orders:read');
      assert.deepEqual(access.payload.roles, ['clerk']);
      assert.deepEqual(access.payload.organisations, [orgId]);
      assert.equal(decodeProtectedHeader(tokens.access_token).alg, 'EdDSA');
      assert.ok(tokens.refresh_token);
    });

    test('refresh tokens rotate, and re-using a rotated one revokes the whole grant', async () => {
      const first = await authorize(new CookieBrowser());
      const second = await oidc.refreshTokenGrant(config, first.refresh_token!, { resource: API });
      assert.notEqual(second.refresh_token, first.refresh_token);
      await assert.rejects(
        oidc.refreshTokenGrant(config, first.refresh_token!),
        (e: oidc.ResponseBodyError) => {
          assert.equal(e.error, 'invalid_grant');
          return true;
        },
      );
      await assert.rejects(
        oidc.refreshTokenGrant(config, second.refresh_token!),
        (e: oidc.ResponseBodyError) => {
          assert.equal(e.error, 'invalid_grant');
          return true;
        },
      );
    });

    test('one refresh token presented twice at once rotates once, and the replay revokes the grant', async () => {
      const first = await authorize(new CookieBrowser());
      const started = new Date().toISOString();
      const results = await Promise.allSettled([
        oidc.refreshTokenGrant(config, first.refresh_token!, { resource: API }),
        oidc.refreshTokenGrant(config, first.refresh_token!, { resource: API }),
      ]);
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
      assert.equal(won.length, 1, 'exactly one of the two gets new tokens');
      assert.equal((lost[0]!.reason as oidc.ResponseBodyError).error, 'invalid_grant');
      const rotated = (won[0] as PromiseFulfilledResult<oidc.TokenEndpointResponse>).value;
      await assert.rejects(
        oidc.refreshTokenGrant(config, rotated.refresh_token!),
        (e: oidc.ResponseBodyError) => e.error === 'invalid_grant',
      );
      // The revocation is audited (written after the response, so it may take a moment).
      const tenant = await app.tenants.get('acme');
      const revocations = () =>
        withTenant(app.db, tenant.id, async (tx) =>
          readAudit(tx, await app.tenantKeys.forTenant(tx, tenant.id), { limit: 50 }),
        ).then((events) =>
          events.filter((e) => e.action === 'grant.revoked_replay' && e.occurredAt >= started),
        );
      for (let waited = 0; (await revocations()).length === 0 && waited < 5000; waited += 100) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.equal((await revocations()).length, 1, 'one grant.revoked_replay event for the replayed grant');
    });

    test('a revoked refresh token no longer works and introspects as inactive', async () => {
      const tokens = await authorize(new CookieBrowser());
      await oidc.tokenRevocation(config, tokens.refresh_token!);
      const introspection = await oidc.tokenIntrospection(config, tokens.refresh_token!);
      assert.equal(introspection.active, false);
      await assert.rejects(oidc.refreshTokenGrant(config, tokens.refresh_token!));
    });

    test('userinfo returns the decrypted profile for the signed-in user', async () => {
      const browser = new CookieBrowser();
      const verifier = oidc.randomPKCECodeVerifier();
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: rp.redirectUri,
        scope: 'openid email profile',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
      });
      const login = await browser.follow(await browser.get(url.href), url.href);
      const form = readForm(await login.response.text());
      const posted = await browser.post(new URL(form.action, base).href, {
        ...form.fields,
        email: 'ann@acme.test',
        password: PASSWORD,
      });
      const consent = await browser.follow(posted, base);
      const cform = readForm(await consent.response.text());
      const done = await browser.follow(
        await browser.post(new URL(cform.action, base).href, cform.fields),
        base,
        rp.redirectUri,
      );
      const tokens = await oidc.authorizationCodeGrant(config, new URL(done.url), {
        pkceCodeVerifier: verifier,
      });
      const info = await oidc.fetchUserInfo(config, tokens.access_token, userId);
      assert.equal(info.email, 'ann@acme.test');
      assert.equal(info.name, 'Ann Acme');
    });

    test('RP-initiated logout ends the session and says so', async () => {
      const browser = new CookieBrowser();
      const tokens = await authorize(browser);
      const logoutUrl = oidc.buildEndSessionUrl(config, {
        id_token_hint: tokens.id_token!,
        post_logout_redirect_uri: `${base}/bye`,
      });
      const confirm = await browser.follow(await browser.get(logoutUrl.href), logoutUrl.href);
      const page = await confirm.response.text();
      assert.match(page, /Sign out\?/);
      const form = readForm(page, 'op.logoutForm');
      const out = await browser.post(new URL(form.action, base).href, { ...form.fields, logout: 'yes' });
      const landed = await browser.follow(out, base, `${base}/bye`);
      assert.ok(landed.url.startsWith(`${base}/bye`));
      // The session is gone: a new authorization request asks for credentials again.
      const again = oidc.buildAuthorizationUrl(config, {
        redirect_uri: rp.redirectUri,
        scope: 'openid',
        code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
        code_challenge_method: 'S256',
      });
      const relogin = await browser.follow(await browser.get(again.href), again.href);
      assert.match(await relogin.response.text(), /Sign in/);
    });

    test('client credentials for an API return a JWT whose scope and roles match the RBAC data', async () => {
      const machine = await oidc.discovery(new URL(issuer), m2m.clientId, m2m.clientSecret, undefined, {
        execute: [oidc.allowInsecureRequests],
      });
      const tokens = await oidc.clientCredentialsGrant(machine, {
        resource: API,
        scope: 'orders:read orders:write',
      });
      const { payload } = await jwtVerify(
        tokens.access_token,
        createRemoteJWKSet(new URL(`${issuer}/jwks`)),
        {
          issuer,
          audience: API,
        },
      );
      assert.equal(payload.scope, 'orders:read');
      assert.deepEqual(payload.roles, ['clerk']);
      assert.equal(payload.client_id, m2m.clientId);
    });

    test('a client asking for an API it was not given is refused with invalid_target', async () => {
      const machine = await oidc.discovery(new URL(issuer), m2m.clientId, m2m.clientSecret, undefined, {
        execute: [oidc.allowInsecureRequests],
      });
      await assert.rejects(
        oidc.clientCredentialsGrant(machine, {
          resource: 'https://api.elsewhere.test',
          scope: 'orders:read',
        }),
        (error: oidc.ResponseBodyError) => {
          assert.equal(error.error, 'invalid_target');
          assert.match(
            error.error_description ?? '',
            /may not request tokens for https:\/\/api\.elsewhere\.test/,
          );
          return true;
        },
      );
    });

    test("a token issued by one tenant is inactive at another tenant's introspection", async () => {
      const tokens = await authorize(new CookieBrowser());
      const otherIssuer = `${base}/t/other`;
      const otherTenant = await app.tenants.get('other');
      const introspector = await withTenant(app.db, otherTenant.id, (tx) =>
        app.clients.create(
          tx,
          otherTenant.id,
          { name: 'Introspector', grantTypes: ['client_credentials'] },
          'test',
        ),
      );
      const otherConfig = await oidc.discovery(
        new URL(otherIssuer),
        introspector.clientId,
        introspector.clientSecret,
        undefined,
        {
          execute: [oidc.allowInsecureRequests],
        },
      );
      const result = await oidc.tokenIntrospection(otherConfig, tokens.refresh_token!);
      assert.equal(result.active, false);
    });

    test("the exported verifier accepts this tenant's tokens and rejects another tenant's", async () => {
      const machine = await oidc.discovery(new URL(issuer), m2m.clientId, m2m.clientSecret, undefined, {
        execute: [oidc.allowInsecureRequests],
      });
      const { access_token } = await oidc.clientCredentialsGrant(machine, {
        resource: API,
        scope: 'orders:read',
      });
      const verify = createVerifier({ issuer, audience: API });
      const claims = await verify(access_token);
      assert.equal(claims.client_id, m2m.clientId);
      assert.equal(claims.scope, 'orders:read');
      // The key it resolved is remembered; signatures and claims are still checked every time.
      assert.equal((await verify(access_token)).sub, claims.sub);
      const [head, body, signature] = access_token.split('.') as [string, string, string];
      const forged = Buffer.from(JSON.stringify({ ...claims, scope: 'orders:write' })).toString('base64url');
      const flipped = `${signature[0] === 'A' ? 'B' : 'A'}${signature.slice(1)}`;
      for (const bad of [`${head}.${forged}.${signature}`, `${head}.${body}.${flipped}`]) {
        await assert.rejects(verify(bad), (e: TokenVerificationError) => e.code === 'token.invalid');
      }
      const unknownKid = Buffer.from(
        JSON.stringify({ ...JSON.parse(Buffer.from(head, 'base64url').toString()), kid: 'not-a-key' }),
      ).toString('base64url');
      await assert.rejects(
        verify(`${unknownKid}.${body}.${signature}`),
        (e: TokenVerificationError) => e.code === 'token.invalid',
      );
      await assert.rejects(
        createVerifier({ issuer: `${base}/t/other`, audience: API })(access_token),
        (e: TokenVerificationError) => {
          assert.equal(e.code, 'token.invalid');
          return true;
        },
      );
      await assert.rejects(
        createVerifier({ issuer, audience: 'https://elsewhere.test' })(access_token),
        /not valid/,
      );
    });

    test('denying consent sends the browser back to the app with access_denied and its state', async () => {
      const browser = new CookieBrowser();
      const { posted, state } = await signIn(browser);
      assert.equal(posted.status, 303);
      const consent = await browser.follow(posted, base);
      const consentPage = await consent.response.text();
      const deny = readForm(consentPage.slice(consentPage.lastIndexOf('<form')));
      assert.match(deny.action, /\/abort$/);
      const denied = await browser.post(new URL(deny.action, base).href, deny.fields);
      assert.equal(denied.status, 303);
      const done = await browser.follow(denied, base, rp.redirectUri);
      const answer = new URL(done.url).searchParams;
      assert.equal(answer.get('error'), 'access_denied');
      assert.equal(answer.get('state'), state);
      assert.equal(answer.get('code'), null);
    });

    test('a wrong password gives the generic error and is audited; the right one still works', async () => {
      const browser = new CookieBrowser();
      const { posted } = await signIn(browser, 'not the password at all');
      assert.equal(posted.status, 401);
      assert.match(await posted.text(), /The email or password is incorrect\./);
      const tenant = await app.tenants.get('acme');
      const events = await withTenant(app.db, tenant.id, async (tx) =>
        readAudit(tx, await app.tenantKeys.forTenant(tx, tenant.id), { limit: 50 }),
      );
      assert.ok(events.some((e) => e.action === 'user.sign_in' && e.outcome === 'failure'));
      const tokens = await authorize(new CookieBrowser());
      assert.equal(tokens.claims()!.sub, userId);
    });

    test('after signing-key rotation old tokens still verify and new tokens carry the new kid', async () => {
      const machine = await oidc.discovery(new URL(issuer), m2m.clientId, m2m.clientSecret, undefined, {
        execute: [oidc.allowInsecureRequests],
      });
      const before = await oidc.clientCredentialsGrant(machine, { resource: API, scope: 'orders:read' });
      const oldKid = decodeProtectedHeader(before.access_token).kid;
      const { runOperation } = await import('../../src/ops/operations.js');
      const rotated = (await runOperation(app, 'keystore.rotateSigning', { tenant: 'acme' })) as {
        kid: string;
      };
      // The server was not subscribed to change notifications here, so drop its cached provider.
      app.oidc.invalidate((await app.tenants.get('acme')).id);
      const afterTokens = await oidc.clientCredentialsGrant(machine, { resource: API, scope: 'orders:read' });
      assert.equal(decodeProtectedHeader(afterTokens.access_token).kid, rotated.kid);
      assert.notEqual(rotated.kid, oldKid);
      const jwks = createRemoteJWKSet(new URL(`${issuer}/jwks`));
      await jwtVerify(before.access_token, jwks, { issuer, audience: API });
      await jwtVerify(afterTokens.access_token, jwks, { issuer, audience: API });
    });
  });
}
