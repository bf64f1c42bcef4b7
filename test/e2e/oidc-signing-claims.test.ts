// What a stock relying party meets on its defaults: RS256 ID tokens (and the other algorithms on
// request), a discovery document that lists only what a client can use, the claims of granted
// scopes in the ID token, and refresh tokens by consent rather than by `prompt=consent`.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import type { NewClient } from '../../src/oidc/clients.js';
import { runOperation } from '../../src/ops/operations.js';
import { buildServer } from '../../src/server/app.js';
import { withTenant } from '../../src/storage/db/database.js';
import { migrate } from '../../src/storage/db/migrate.js';
import { CookieBrowser, readForm } from '../helpers/cookie-browser.js';
import { createTestOrthId, DRIVERS, type TestOrthId } from '../helpers/orthid.js';
import { freePort } from '../helpers/postgres.js';

const PASSWORD = 'correct horse battery staple 42';
const API = 'https://api.acme.test';

for (const driver of DRIVERS) {
  describe(`signing algorithms, discovery and claims (${driver})`, () => {
    let app: TestOrthId;
    let server: FastifyInstance;
    let base: string;
    let issuer: string;
    let tenantId: string;

    before(async () => {
      const port = await freePort();
      base = `http://127.0.0.1:${port}`;
      app = await createTestOrthId(driver, { env: { ORTHID_PUBLIC_URL: base } });
      server = await buildServer(app);
      await server.listen({ host: '127.0.0.1', port });
      tenantId = (await app.tenants.create({ slug: 'acme', actor: 'test' })).id;
      issuer = `${base}/t/acme`;
      await withTenant(app.db, tenantId, async (tx) => {
        await app.users.create(
          tx,
          tenantId,
          { email: 'ann@acme.test', name: 'Ann Acme', password: PASSWORD },
          'test',
        );
      });
    });

    after(async () => {
      await server?.close();
      await app?.close();
    });

    async function register(input: Partial<NewClient> = {}) {
      const created = await withTenant(app.db, tenantId, (tx) =>
        app.clients.create(
          tx,
          tenantId,
          {
            name: 'Acme Web',
            grantTypes: ['authorization_code', 'refresh_token'],
            redirectUris: [`${base}/callback`],
            ...input,
          },
          'test',
        ),
      );
      // The server here is not subscribed to change notices: drop its cached provider.
      app.oidc.invalidate(tenantId);
      return created;
    }

    /**
     * Signs Ann in through the hosted page as `client` would, allowing the consent page when one
     * is shown; says whether it was, and returns the token response.
     */
    async function authorize(
      client: { clientId: string; clientSecret?: string },
      options: { scope: string; prompt?: string; browser?: CookieBrowser },
    ) {
      const config = await oidc.discovery(new URL(issuer), client.clientId, client.clientSecret, undefined, {
        execute: [oidc.allowInsecureRequests],
      });
      const verifier = oidc.randomPKCECodeVerifier();
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: `${base}/callback`,
        scope: options.scope,
        ...(options.prompt ? { prompt: options.prompt } : {}),
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
      });
      const browser = options.browser ?? new CookieBrowser();
      let step = await browser.follow(await browser.get(url.href), base, `${base}/callback`);
      let consentShown = false;
      for (let pages = 0; !step.url.startsWith(`${base}/callback`) && pages < 3; pages++) {
        const html = await step.response.text();
        const form = readForm(html);
        const fields = /name="password"/.test(html)
          ? { ...form.fields, email: 'ann@acme.test', password: PASSWORD }
          : form.fields;
        consentShown ||= /Allow/.test(html);
        step = await browser.follow(
          await browser.post(new URL(form.action, base).href, fields),
          base,
          `${base}/callback`,
        );
      }
      const tokens = await oidc.authorizationCodeGrant(config, new URL(step.url), {
        pkceCodeVerifier: verifier,
      });
      return { tokens, consentShown, browser, config };
    }

    test('discovery lists exactly the response types, auth methods and algorithms a client can use', async () => {
      const meta = (await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()) as Record<
        string,
        string[]
      >;
      assert.deepEqual([...meta.response_types_supported!].sort(), ['code', 'code id_token', 'id_token']);
      assert.deepEqual(
        [...meta.token_endpoint_auth_methods_supported!].sort(),
        ['client_secret_basic', 'client_secret_post', 'none'],
        'client_secret_jwt needs the secret, which OrthID keeps only as a keyed hash',
      );
      assert.deepEqual([...meta.id_token_signing_alg_values_supported!].sort(), ['ES256', 'EdDSA', 'RS256']);
      const jwks = (await (await fetch(meta.jwks_uri as unknown as string)).json()) as {
        keys: { alg: string }[];
      };
      assert.deepEqual([...new Set(jwks.keys.map((k) => k.alg))].sort(), ['ES256', 'EdDSA', 'RS256']);
    });

    test('a client that names no algorithm gets RS256 ID tokens; ES256 and EdDSA on request', async () => {
      const jwks = createRemoteJWKSet(new URL(`${issuer}/jwks`));
      for (const alg of [undefined, 'ES256', 'EdDSA'] as const) {
        const client = await register(alg ? { idTokenSignedResponseAlg: alg } : {});
        assert.equal(client.idTokenSignedResponseAlg, alg ?? 'RS256');
        const { tokens } = await authorize(
          { ...client, clientSecret: client.clientSecret! },
          { scope: 'openid', prompt: 'consent' },
        );
        assert.equal(decodeProtectedHeader(tokens.id_token!).alg, alg ?? 'RS256');
        await jwtVerify(tokens.id_token!, jwks, { issuer, audience: client.clientId });
      }
    });

    test('the ID token carries the claims of the granted scopes; a tenant can keep them to userinfo', async () => {
      const client = await register();
      const signedIn = await authorize(
        { ...client, clientSecret: client.clientSecret! },
        { scope: 'openid profile email' },
      );
      const claims = signedIn.tokens.claims()!;
      assert.equal(claims.name, 'Ann Acme');
      assert.equal(claims.email, 'ann@acme.test');
      assert.equal(claims.email_verified, false);

      await runOperation(app, 'tenant.configure', { slug: 'acme', idTokenClaims: 'off' });
      app.oidc.invalidate(tenantId);
      try {
        const kept = await authorize(
          { ...client, clientSecret: client.clientSecret! },
          { scope: 'openid profile email', browser: signedIn.browser },
        );
        const idToken = decodeJwt(kept.tokens.id_token!);
        assert.equal(idToken.email, undefined);
        assert.equal(idToken.name, undefined);
        const info = await oidc.fetchUserInfo(kept.config, kept.tokens.access_token, idToken.sub!);
        assert.equal(info.email, 'ann@acme.test');
      } finally {
        await runOperation(app, 'tenant.configure', { slug: 'acme', idTokenClaims: 'on' });
        app.oidc.invalidate(tenantId);
      }
    });

    test('offline_access without prompt=consent: asked once on the consent page, then granted by it', async () => {
      const client = await register();
      const first = await authorize(
        { ...client, clientSecret: client.clientSecret! },
        { scope: 'openid offline_access' },
      );
      assert.equal(first.consentShown, true, 'the user is asked before an app may act while they are away');
      assert.ok(first.tokens.refresh_token, 'consent to offline_access gives a refresh token');
      const again = await authorize(
        { ...client, clientSecret: client.clientSecret! },
        { scope: 'openid offline_access', browser: first.browser },
      );
      assert.equal(again.consentShown, false, 'consented before: no page');
      assert.ok(again.tokens.refresh_token);
      const refreshed = await oidc.refreshTokenGrant(again.config, again.tokens.refresh_token!);
      assert.ok(refreshed.access_token);
    });

    test('a first-party client is never shown the consent page and gets its refresh token', async () => {
      const client = await register({ firstParty: true });
      const signedIn = await authorize(
        { ...client, clientSecret: client.clientSecret! },
        { scope: 'openid email offline_access' },
      );
      assert.equal(signedIn.consentShown, false);
      assert.ok(signedIn.tokens.refresh_token);
      assert.equal(signedIn.tokens.claims()!.email, 'ann@acme.test');
    });

    test('no refresh token without offline_access, nor for a client not allowed refresh_token', async () => {
      const withoutScope = await register();
      const a = await authorize(
        { ...withoutScope, clientSecret: withoutScope.clientSecret! },
        { scope: 'openid', prompt: 'consent' },
      );
      assert.equal(a.tokens.refresh_token, undefined);
      const codeOnly = await register({ grantTypes: ['authorization_code'], scope: 'openid offline_access' });
      const b = await authorize(
        { ...codeOnly, clientSecret: codeOnly.clientSecret! },
        { scope: 'openid offline_access', prompt: 'consent' },
      );
      assert.equal(b.tokens.refresh_token, undefined);
    });

    test("an API's access tokens use its algorithm; rotation without --alg renews every algorithm's key", async () => {
      const resource = await withTenant(app.db, tenantId, async (tx) => {
        const created = await app.rbac.resources.create(
          tx,
          tenantId,
          { indicator: API, name: 'Orders', accessTokenAlg: 'RS256' },
          'test',
        );
        const read = await app.rbac.permissions.create(
          tx,
          tenantId,
          created.id,
          { name: 'orders:read' },
          'test',
        );
        await app.rbac.permissions.create(tx, tenantId, created.id, { name: 'orders:write' }, 'test');
        const role = await app.rbac.roles.create(tx, tenantId, { name: 'reader' }, 'test');
        await app.rbac.roles.addPermission(tx, tenantId, role.id, read.id, 'test');
        return { created, role };
      });
      assert.equal(resource.created.accessTokenAlg, 'RS256');
      const machine = await register({ grantTypes: ['client_credentials'], resources: [API] });
      await withTenant(app.db, tenantId, (tx) =>
        app.rbac.clientRoles.grant(tx, tenantId, machine.clientId, resource.role.id, 'test'),
      );
      app.oidc.invalidate(tenantId);
      const config = await oidc.discovery(
        new URL(issuer),
        machine.clientId,
        machine.clientSecret!,
        undefined,
        {
          execute: [oidc.allowInsecureRequests],
        },
      );
      const before = await oidc.clientCredentialsGrant(config, { resource: API, scope: 'orders:read' });
      assert.equal(decodeProtectedHeader(before.access_token).alg, 'RS256');
      const partly = await oidc.clientCredentialsGrant(config, {
        resource: API,
        scope: 'orders:read orders:write',
      });
      assert.equal(partly.scope, 'orders:read', 'a narrower grant than asked is said in the response');
      await assert.rejects(
        oidc.clientCredentialsGrant(config, { resource: API, scope: 'orders:write' }),
        (e: oidc.ResponseBodyError) =>
          e.error === 'invalid_scope' && /none of the requested/.test(e.error_description!),
      );

      const rotated = (await runOperation(app, 'keystore.rotateSigning', { tenant: 'acme' })) as {
        keys: { alg: string; kid: string }[];
      };
      assert.deepEqual(rotated.keys.map((k) => k.alg).sort(), ['ES256', 'EdDSA', 'RS256']);
      app.oidc.invalidate(tenantId);
      const after = await oidc.clientCredentialsGrant(config, { resource: API, scope: 'orders:read' });
      assert.equal(
        decodeProtectedHeader(after.access_token).kid,
        rotated.keys.find((k) => k.alg === 'RS256')!.kid,
      );
      const jwks = createRemoteJWKSet(new URL(`${issuer}/jwks`));
      await jwtVerify(before.access_token, jwks, { issuer, audience: API });
    });

    test('a client registered before clients chose an algorithm keeps its tenant’s', async () => {
      const client = await register();
      await app.db.ownerQuery(
        `UPDATE oidc_clients SET metadata = metadata - 'id_token_signed_response_alg' WHERE client_id = $1`,
        [client.clientId],
      );
      await app.db.ownerQuery('DELETE FROM orthid_migrations WHERE version = 8');
      assert.deepEqual(await migrate(app.db), [8]);
      app.oidc.invalidate(tenantId);
      const listed = await withTenant(app.db, tenantId, (tx) => app.clients.get(tx, client.clientId));
      assert.equal(listed.idTokenSignedResponseAlg, 'EdDSA');
    });
  });
}
