import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { readAudit } from '../../src/audit/audit-log.js';
import type { Clock } from '../../src/core/clock.js';
import { DEFAULT_LIFETIMES } from '../../src/oidc/provider-configuration.js';
import { buildServer } from '../../src/server/app.js';
import { withTenant } from '../../src/storage/db/database.js';
import { consentToCallback, submitHostedSignIn } from '../helpers/hosted-sign-in.js';
import { createTestOrthId, DRIVERS, type TestOrthId } from '../helpers/orthid.js';
import { freePort } from '../helpers/postgres.js';

const PASSWORD = 'correct horse battery staple 42';
const API = 'https://orders.acme.test';
const execute = [oidc.allowInsecureRequests];

type Registered = { clientId: string; clientSecret?: string };

for (const driver of DRIVERS) {
  describe(`introspection and revocation of every token (${driver})`, { timeout: 240_000 }, () => {
    let app: TestOrthId;
    let server: FastifyInstance;
    let base: string;
    let issuer: string;
    let tenantId: string;
    let userId: string;
    let redirectUri: string;
    const clients: Record<'web' | 'mobile' | 'other' | 'api' | 'spa' | 'worker', Registered> = {} as never;
    const configs: Record<keyof typeof clients, oidc.Configuration> = {} as never;
    // The deployment's clock runs with real time, moved forward only to look past an expiry.
    let ahead = 0;
    const clock: Clock = { now: () => new Date(Date.now() + ahead) };

    before(async () => {
      const port = await freePort();
      base = `http://127.0.0.1:${port}`;
      redirectUri = `${base}/callback`;
      app = await createTestOrthId(driver, { env: { ORTHID_PUBLIC_URL: base }, clock });
      server = await buildServer(app);
      await server.listen({ host: '127.0.0.1', port });
      const tenant = await app.tenants.create({ slug: 'acme', actor: 'test' });
      tenantId = tenant.id;
      issuer = `${base}/t/acme`;
      await withTenant(app.db, tenant.id, async (tx) => {
        userId = (
          await app.users.create(tx, tenant.id, { email: 'ann@acme.test', password: PASSWORD }, 'test')
        ).id;
        await app.rbac.resources.create(tx, tenant.id, { indicator: API, name: 'Orders API' }, 'test');
        const create = (input: Parameters<typeof app.clients.create>[2]) =>
          app.clients.create(tx, tenant.id, input, 'test');
        clients.web = await create({
          name: 'Acme Web',
          grantTypes: ['authorization_code', 'refresh_token'],
          redirectUris: [redirectUri],
          resources: [API],
        });
        clients.mobile = await create({
          name: 'Acme Mobile',
          grantTypes: ['authorization_code'],
          redirectUris: [redirectUri],
          resources: [API],
        });
        clients.other = await create({ name: 'Other app', grantTypes: ['client_credentials'] });
        clients.api = await create({
          name: 'Orders API',
          grantTypes: ['client_credentials'],
          introspects: [API],
        });
        clients.spa = await create({
          name: 'Acme SPA',
          grantTypes: ['authorization_code'],
          redirectUris: [redirectUri],
          public: true,
        });
        clients.worker = await create({
          name: 'Worker',
          grantTypes: ['client_credentials'],
          resources: [API],
        });
      });
      for (const [name, client] of Object.entries(clients) as [keyof typeof clients, Registered][]) {
        configs[name] = await oidc.discovery(
          new URL(issuer),
          client.clientId,
          client.clientSecret,
          client.clientSecret ? undefined : oidc.None(),
          { execute },
        );
      }
    });

    after(async () => {
      await server?.close();
      await app?.close();
    });

    /** Signs Ann in with Acme Web for the API: a JWT access token and a refresh token. */
    async function tokensForApi(as: 'web' | 'mobile' = 'web') {
      const signIn = await submitHostedSignIn({
        issuer,
        client: { client_id: clients[as].clientId, client_secret: clients[as].clientSecret! },
        redirectUri,
        email: 'ann@acme.test',
        password: PASSWORD,
        resource: API,
      });
      assert.equal(signIn.posted.status, 303);
      const callback = await consentToCallback(signIn, redirectUri);
      const tokens = await oidc.authorizationCodeGrant(configs[as], callback, {
        pkceCodeVerifier: signIn.verifier,
        expectedState: signIn.state,
      });
      assert.equal(decodeJwt(tokens.access_token).aud, API, 'the access token is a JWT for the API');
      return { tokens, callback, signIn };
    }

    const introspect = (as: keyof typeof clients, token: string) =>
      oidc.tokenIntrospection(configs[as], token);

    async function refusal(promise: Promise<unknown>): Promise<oidc.ResponseBodyError> {
      const error = await promise.then(
        () => assert.fail('the request should have been refused'),
        (e: unknown) => e,
      );
      assert.ok(error instanceof oidc.ResponseBodyError, `an OAuth error response, got ${String(error)}`);
      return error;
    }

    async function auditEvents(action: string, since: string) {
      const read = () =>
        withTenant(app.db, tenantId, async (tx) =>
          readAudit(tx, await app.tenantKeys.forTenant(tx, tenantId), { limit: 100 }),
        ).then((events) => events.filter((e) => e.action === action && e.occurredAt >= since));
      // Provider events are audited after the response is sent.
      for (let waited = 0; (await read()).length === 0 && waited < 5000; waited += 100) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      return read();
    }

    test('a JWT access token introspects as active for its client, and inactive once its grant is revoked', async () => {
      const { tokens } = await tokensForApi();
      const active = await introspect('web', tokens.access_token);
      assert.equal(active.active, true);
      assert.equal(active.sub, userId);
      assert.equal(active.client_id, clients.web.clientId);
      assert.equal(active.aud, API);
      assert.equal(active.iss, issuer);
      assert.equal(active.token_type, 'Bearer');
      assert.equal(active.exp, decodeJwt(tokens.access_token).exp);
      // Revoking the refresh token revokes the grant: the JWT, still unexpired and validly
      // signed, is no longer active for an API that introspects.
      await oidc.tokenRevocation(configs.web, tokens.refresh_token!);
      assert.equal((await introspect('web', tokens.access_token)).active, false);
      assert.equal((await introspect('api', tokens.access_token)).active, false);
    });

    test('signing a user out everywhere makes their JWT access tokens inactive', async () => {
      const { tokens } = await tokensForApi();
      assert.equal((await introspect('api', tokens.access_token)).active, true);
      await withTenant(app.db, tenantId, (tx) => app.rbac.sessions.revokeAll(tx, tenantId, userId, 'test'));
      assert.equal((await introspect('api', tokens.access_token)).active, false);
    });

    test('revoking a JWT access token revokes its grant, audited with the client as actor', async () => {
      const since = new Date().toISOString();
      const { tokens } = await tokensForApi();
      const grant = decodeJwt(tokens.access_token).orthid_grant;
      assert.equal(typeof grant, 'string', 'the JWT names its grant');
      await oidc.tokenRevocation(configs.web, tokens.access_token);
      assert.equal((await introspect('web', tokens.access_token)).active, false);
      assert.equal((await introspect('web', tokens.refresh_token!)).active, false);
      const refused = await refusal(oidc.refreshTokenGrant(configs.web, tokens.refresh_token!));
      assert.equal(refused.error, 'invalid_grant');
      const [event, ...more] = await auditEvents('grant.revoked', since);
      assert.equal(more.length, 0);
      assert.equal(event?.actor, `client:${clients.web.clientId}`);
      assert.equal(event?.target, `grant:${grant}`);
      assert.deepEqual(event?.details, { reason: 'revocation', client: clients.web.clientId, grant });
    });

    test('a resource server of the audience may introspect; any other client learns nothing', async () => {
      const { tokens } = await tokensForApi();
      const served = await introspect('api', tokens.access_token);
      assert.equal(served.active, true);
      assert.equal(served.sub, userId);
      assert.equal(served.client_id, clients.web.clientId);
      // Another confidential client of the tenant: as for an unknown token, not an error.
      assert.deepEqual(await introspect('other', tokens.access_token), { active: false });
      assert.deepEqual(await introspect('other', tokens.refresh_token!), { active: false });
      // The refresh token has no audience: only its own client introspects it.
      assert.deepEqual(await introspect('api', tokens.refresh_token!), { active: false });
      assert.equal((await introspect('web', tokens.refresh_token!)).active, true);
      // A token that was tampered with is not active for anyone.
      const [header, payload] = tokens.access_token.split('.');
      const forged = `${header}.${payload}.${'A'.repeat(86)}`;
      assert.deepEqual(await introspect('web', forged), { active: false });
    });

    test("a deleted client's tokens are inactive for the API that serves them", async () => {
      const { tokens } = await tokensForApi('mobile');
      assert.equal((await introspect('api', tokens.access_token)).active, true);
      await withTenant(app.db, tenantId, (tx) =>
        app.clients.delete(tx, tenantId, clients.mobile.clientId, 'test'),
      );
      assert.deepEqual(await introspect('api', tokens.access_token), { active: false });
    });

    test('another client revoking a token is refused and changes nothing', async () => {
      const { tokens } = await tokensForApi();
      for (const token of [tokens.refresh_token!, tokens.access_token]) {
        const refused = await refusal(oidc.tokenRevocation(configs.other, token));
        assert.equal(refused.error, 'invalid_request');
        assert.match(refused.error_description ?? '', /only its own tokens/);
      }
      // Not even the resource server of the audience revokes a token it did not get.
      assert.equal(
        (await refusal(oidc.tokenRevocation(configs.api, tokens.access_token))).error,
        'invalid_request',
      );
      assert.equal((await introspect('web', tokens.access_token)).active, true);
      const refreshed = await oidc.refreshTokenGrant(configs.web, tokens.refresh_token!, { resource: API });
      assert.ok(refreshed.access_token, 'the refresh token still works');
    });

    test('a public client cannot introspect, whatever token it presents', async () => {
      const { tokens } = await tokensForApi();
      for (const token of [tokens.access_token, tokens.refresh_token!, 'not-a-token']) {
        const refused = await refusal(introspect('spa', token));
        assert.equal(refused.error, 'invalid_client');
        assert.equal(refused.status, 400);
        assert.match(refused.error_description ?? '', /public clients/);
      }
      assert.equal((await introspect('web', tokens.access_token)).active, true, 'nothing changed');
    });

    test("a machine client's JWT introspects until it expires and cannot be revoked", async () => {
      const { access_token } = await oidc.clientCredentialsGrant(configs.worker, { resource: API });
      const active = await introspect('worker', access_token);
      assert.equal(active.active, true);
      assert.equal(active.client_id, clients.worker.clientId);
      assert.equal(active.sub, undefined);
      assert.equal((await introspect('api', access_token)).active, true);
      const refused = await refusal(oidc.tokenRevocation(configs.worker, access_token));
      assert.equal(refused.error, 'unsupported_token_type');
      assert.match(refused.error_description ?? '', /no grant to revoke/);
      assert.equal((await introspect('worker', access_token)).active, true);
      try {
        ahead = (DEFAULT_LIFETIMES.accessTokenSeconds + 1) * 1000;
        assert.deepEqual(await introspect('api', access_token), { active: false });
      } finally {
        ahead = 0;
      }
    });

    test('a user JWT past its expiry is inactive though its grant stands', async () => {
      const { tokens } = await tokensForApi();
      try {
        ahead = (DEFAULT_LIFETIMES.accessTokenSeconds + 1) * 1000;
        assert.deepEqual(await introspect('web', tokens.access_token), { active: false });
      } finally {
        ahead = 0;
      }
      assert.equal((await introspect('web', tokens.refresh_token!)).active, true, 'the grant stands');
    });

    test('a replayed refresh token or code revokes the grant as its own audit event', async () => {
      const since = new Date().toISOString();
      const { tokens } = await tokensForApi();
      const grant = decodeJwt(tokens.access_token).orthid_grant;
      await oidc.refreshTokenGrant(configs.web, tokens.refresh_token!, { resource: API });
      assert.equal(
        (await refusal(oidc.refreshTokenGrant(configs.web, tokens.refresh_token!))).error,
        'invalid_grant',
      );
      const [replay, ...more] = await auditEvents('grant.revoked_replay', since);
      assert.equal(more.length, 0);
      assert.equal(replay?.actor, `client:${clients.web.clientId}`);
      assert.equal(replay?.target, `grant:${grant}`);
      assert.equal(replay?.outcome, 'failure');
      assert.equal(replay?.ip, '127.0.0.1');
      assert.deepEqual(replay?.details, {
        reason: 'replay',
        client: clients.web.clientId,
        grant,
        grantType: 'refresh_token',
      });
      assert.deepEqual(await auditEvents('grant.revoked', since), [], 'not audited as a revocation');
      const logged = JSON.stringify(replay);
      assert.ok(!logged.includes(tokens.refresh_token!) && !logged.includes(tokens.access_token));

      // The code of another sign-in, presented again.
      const codeSince = new Date().toISOString();
      const { tokens: second, callback, signIn } = await tokensForApi();
      const code = callback.searchParams.get('code')!;
      const again = await refusal(
        oidc.authorizationCodeGrant(configs.web, callback, {
          pkceCodeVerifier: signIn.verifier,
          expectedState: signIn.state,
        }),
      );
      assert.equal(again.error, 'invalid_grant');
      const [codeReplay] = await auditEvents('grant.revoked_replay', codeSince);
      assert.equal(codeReplay?.actor, `client:${clients.web.clientId}`);
      assert.equal(codeReplay?.target, `grant:${decodeJwt(second.access_token).orthid_grant}`);
      assert.equal(codeReplay?.details?.grantType, 'authorization_code');
      assert.ok(!JSON.stringify(codeReplay).includes(code));
    });
  });
}
