// The flows the engine certifies, each opted in by a client and driven by a stock relying party
// (openid-client) over real HTTP: device authorization (RFC 8628) through the hosted user-code
// pages, pushed authorization requests (RFC 9126), DPoP (RFC 9449), signed request objects
// (RFC 9101) and back-channel logout to a real listener.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import {
  calculateJwkThumbprint,
  createRemoteJWKSet,
  exportJWK,
  generateKeyPair,
  type JWTPayload,
  jwtVerify,
} from 'jose';
import * as oidc from 'openid-client';
import { fixedClock } from '../../src/core/clock.js';
import { isOrthIdError } from '../../src/core/errors.js';
import { DEVICE_CODE_GRANT, type NewClient } from '../../src/oidc/clients.js';
import { buildServer } from '../../src/server/app.js';
import { withTenant } from '../../src/storage/db/database.js';
import { CookieBrowser, readForm } from '../helpers/cookie-browser.js';
import { createTestOrthId, DRIVERS, type TestOrthId } from '../helpers/orthid.js';
import { freePort } from '../helpers/postgres.js';

const PASSWORD = 'correct horse battery staple 42';
const USER_CODE = /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/;

type Registered = { clientId: string; clientSecret?: string };

for (const driver of DRIVERS) {
  describe(`flows the engine certifies, opted in per client (${driver})`, () => {
    let app: TestOrthId;
    let server: FastifyInstance;
    let listener: Server;
    let base: string;
    let issuer: string;
    let userId: string;
    let listenerBase: string;
    const logoutTokens: string[] = [];
    const clock = fixedClock(new Date());
    const clients: Record<string, Registered> = {};
    let jarKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
    const redirectUri = 'http://127.0.0.1/callback';

    async function register(tenantId: string, input: NewClient): Promise<Registered> {
      return withTenant(app.db, tenantId, (tx) => app.clients.create(tx, tenantId, input, 'test'));
    }

    before(async () => {
      const port = await freePort();
      base = `http://127.0.0.1:${port}`;
      // Each test comes from its own address (X-Forwarded-For), so throttling one leaves the rest.
      app = await createTestOrthId(driver, {
        env: { ORTHID_PUBLIC_URL: base, ORTHID_TRUST_PROXY: 'true' },
        clock,
      });
      server = await buildServer(app);
      await server.listen({ host: '127.0.0.1', port });
      const listenerPort = await freePort();
      listenerBase = `http://127.0.0.1:${listenerPort}`;
      listener = createServer((req, res) => {
        let body = '';
        req.on('data', (chunk) => {
          body += chunk;
        });
        req.on('end', () => {
          const token = new URLSearchParams(body).get('logout_token');
          if (req.url === '/backchannel' && token) logoutTokens.push(token);
          res.writeHead(200).end();
        });
      });
      await new Promise<void>((resolve) => listener.listen(listenerPort, '127.0.0.1', resolve));

      const tenant = await app.tenants.create({ slug: 'acme', actor: 'test' });
      const guess = await app.tenants.create({ slug: 'guess', actor: 'test' });
      issuer = `${base}/t/acme`;
      await withTenant(app.db, tenant.id, async (tx) => {
        userId = (
          await app.users.create(
            tx,
            tenant.id,
            { email: 'ann@acme.test', name: 'Ann Acme', password: PASSWORD },
            'test',
          )
        ).id;
      });
      const jar = await generateKeyPair('ES256', { extractable: true });
      jarKey = jar.privateKey;
      const jarPublic = { ...(await exportJWK(jar.publicKey)), kid: 'jar-1', use: 'sig' };
      const web = {
        grantTypes: ['authorization_code'] as NewClient['grantTypes'],
        redirectUris: [redirectUri],
      };
      clients.tv = await register(tenant.id, {
        name: 'Living Room TV',
        grantTypes: [DEVICE_CODE_GRANT],
        public: true,
        scope: 'openid email',
      });
      clients.plain = await register(tenant.id, { name: 'Plain Web', ...web });
      clients.par = await register(tenant.id, {
        name: 'PAR Web',
        ...web,
        requirePushedAuthorizationRequests: true,
      });
      clients.dpop = await register(tenant.id, { name: 'DPoP App', ...web, dpopBoundAccessTokens: true });
      clients.jar = await register(tenant.id, {
        name: 'JAR Web',
        ...web,
        requestObjectJwks: [jarPublic],
        requestObjectSigningAlg: 'ES256',
      });
      clients.bcl = await register(tenant.id, {
        name: 'BCL Web',
        ...web,
        postLogoutRedirectUris: ['http://127.0.0.1/bye'],
        backchannelLogoutUri: `${listenerBase}/backchannel`,
      });
      await withTenant(app.db, guess.id, async (tx) => {
        await app.users.create(tx, guess.id, { email: 'gus@guess.test', password: PASSWORD }, 'test');
      });
      clients.guessTv = await register(guess.id, {
        name: 'Guess TV',
        grantTypes: [DEVICE_CODE_GRANT],
        public: true,
        scope: 'openid',
      });
    });

    after(async () => {
      await server?.close();
      await new Promise((resolve) => listener?.close(resolve));
      await app?.close();
    });

    async function configFor(client: Registered, tenantIssuer = issuer): Promise<oidc.Configuration> {
      return oidc.discovery(
        new URL(tenantIssuer),
        client.clientId,
        client.clientSecret,
        client.clientSecret ? undefined : oidc.None(),
        { execute: [oidc.allowInsecureRequests] },
      );
    }

    /** Signs in on the hosted page a redirect chain leads to and allows consent; where it ends. */
    async function signInAndConsent(
      browser: CookieBrowser,
      start: Response,
      stopAt?: string,
      email = 'ann@acme.test',
    ) {
      const login = await browser.follow(start, base, stopAt);
      const loginPage = await login.response.text();
      assert.match(loginPage, /Sign in/, loginPage.slice(0, 400));
      const form = readForm(loginPage);
      const posted = await browser.post(new URL(form.action, base).href, {
        ...form.fields,
        email,
        password: PASSWORD,
      });
      assert.equal(posted.status, 303);
      const consent = await browser.follow(posted, base, stopAt);
      if (stopAt && consent.url.startsWith(stopAt)) return consent;
      const consentForm = readForm(await consent.response.text());
      return browser.follow(
        await browser.post(new URL(consentForm.action, base).href, consentForm.fields),
        base,
        stopAt,
      );
    }

    /** The error an authorization request ends in: on the redirect URI, or on the hosted error page. */
    async function authorizationError(url: URL): Promise<{ error: string; description: string }> {
      const response = await fetch(url, { redirect: 'manual' });
      const location = response.headers.get('location');
      if (location) {
        const params = new URL(location, url).searchParams;
        return { error: params.get('error') ?? '', description: params.get('error_description') ?? '' };
      }
      const page = await response.text();
      return { error: `page ${response.status}`, description: page };
    }

    /** Signs in through the hosted pages for `url`; `tokens` redeems the callback (with DPoP when given). */
    async function codeFlow(
      config: oidc.Configuration,
      url: URL,
      verifier: string,
      state: string,
      dpop?: oidc.DPoPHandle,
    ) {
      const browser = new CookieBrowser();
      const done = await signInAndConsent(browser, await browser.get(url.href), redirectUri);
      const callback = new URL(done.url);
      return {
        callback,
        tokens: () =>
          oidc.authorizationCodeGrant(
            config,
            callback,
            { pkceCodeVerifier: verifier, expectedState: state },
            undefined,
            dpop ? { DPoP: dpop } : undefined,
          ),
      };
    }

    async function pkce() {
      const verifier = oidc.randomPKCECodeVerifier();
      return {
        verifier,
        state: oidc.randomState(),
        challenge: await oidc.calculatePKCECodeChallenge(verifier),
      };
    }

    test('discovery lists each flow with what a client can register for it', async () => {
      const meta = (await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()) as Record<
        string,
        unknown
      >;
      assert.equal(meta.device_authorization_endpoint, `${issuer}/device/auth`);
      assert.ok((meta.grant_types_supported as string[]).includes(DEVICE_CODE_GRANT));
      assert.equal(meta.pushed_authorization_request_endpoint, `${issuer}/request`);
      // Required per client, not for the tenant.
      assert.equal(meta.require_pushed_authorization_requests, undefined);
      assert.deepEqual(meta.dpop_signing_alg_values_supported, ['ES256', 'Ed25519', 'EdDSA']);
      assert.equal(meta.request_parameter_supported, true);
      // Only what a client can sign with: no HS256 (client secrets are stored hashed), no none.
      assert.deepEqual(meta.request_object_signing_alg_values_supported, [
        'RS256',
        'PS256',
        'ES256',
        'EdDSA',
        'Ed25519',
      ]);
      assert.equal(meta.backchannel_logout_supported, true);
      assert.equal(meta.backchannel_logout_session_supported, true);
    });

    test('device flow: the hosted user-code pages sign the user in and the polling device gets tokens', {
      timeout: 60_000,
    }, async () => {
      const config = await configFor(clients.tv!);
      const device = await oidc.initiateDeviceAuthorization(config, { scope: 'openid email' });
      assert.match(device.user_code, USER_CODE);
      assert.equal(device.verification_uri, `${issuer}/device`);

      // Polled before the user acts: pending; polled again at once: slow_down.
      const poll = () =>
        fetch(`${issuer}/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({
            grant_type: DEVICE_CODE_GRANT,
            device_code: device.device_code,
            client_id: clients.tv!.clientId,
          }),
        }).then(async (r) => ({
          status: r.status,
          body: (await r.json()) as { error: string; error_description?: string },
        }));
      assert.deepEqual((await poll()).body.error, 'authorization_pending');
      const fast = await poll();
      assert.equal(fast.status, 400);
      assert.equal(fast.body.error, 'slow_down');

      // Stored like every other token: neither code is a row id, a column or in a payload.
      const { rows } = await app.db.ownerQuery<{ id: string; user_code: string | null; row: string }>(
        `SELECT id, user_code, row_to_json(p)::text AS row FROM oidc_payloads p WHERE model = 'DeviceCode'`,
      );
      const normalized = device.user_code.replace('-', '');
      assert.ok(rows.length >= 1);
      for (const r of rows) {
        for (const secret of [device.device_code, device.user_code, normalized, '"deviceInfo"', '"params"'])
          assert.ok(!r.row.includes(secret));
      }

      const browser = new CookieBrowser({ 'x-forwarded-for': '198.51.100.8' });
      const entry = await browser.get(device.verification_uri);
      assert.equal(entry.status, 200);
      assert.equal(entry.headers.get('x-frame-options'), 'DENY');
      assert.match(entry.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
      assert.equal(entry.headers.get('cache-control'), 'no-store');
      const entryPage = await entry.text();
      assert.match(entryPage, /Connect a device/);
      const entryForm = readForm(entryPage);
      // Without the form's xsrf token the code is not even looked up.
      const forged = await browser.post(entryForm.action, { user_code: device.user_code });
      const forgedPage = await forged.text();
      assert.equal(forged.status, 400);
      assert.doesNotMatch(forgedPage, /Connect Living Room TV\?/);

      // Posted from a browser without the session the form belongs to: refused, nothing stored.
      const stranger = new CookieBrowser({ 'x-forwarded-for': '198.51.100.10' });
      const unbound = await stranger.post(entryForm.action, {
        ...entryForm.fields,
        user_code: device.user_code,
      });
      assert.equal(unbound.status, 400);
      const unboundPage = await unbound.text();
      assert.match(unboundPage, /Open the code entry page again/);
      assert.doesNotMatch(unboundPage, /Living Room TV/);
      assert.equal(stranger.cookieValues().length, 0);

      // Typed in lower case without the dash: still the code.
      const retry = readForm(forgedPage);
      const confirm = await browser.post(retry.action, {
        ...retry.fields,
        user_code: normalized.toLowerCase(),
      });
      const confirmPage = await confirm.text();
      assert.match(confirmPage, /Connect Living Room TV\?/);
      assert.ok(confirmPage.includes(device.user_code));
      const confirmForm = readForm(confirmPage);
      const confirmed = await browser.post(confirmForm.action, confirmForm.fields);
      const done = await signInAndConsent(browser, confirmed);
      assert.match(await done.response.text(), /Device connected/);

      const tokens = await oidc.pollDeviceAuthorizationGrant(config, device);
      assert.equal(tokens.claims()!.sub, userId);
      assert.equal(tokens.claims()!.aud, clients.tv!.clientId);
      // The device code is single-use.
      assert.equal((await poll()).body.error, 'invalid_grant');
    });

    test('device flow: a denied confirmation is access_denied for the device, and an expired code is expired_token', {
      timeout: 30_000,
    }, async () => {
      const config = await configFor(clients.tv!);
      const denied = await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });
      const browser = new CookieBrowser({ 'x-forwarded-for': '198.51.100.9' });
      const entryForm = readForm(await (await browser.get(denied.verification_uri)).text());
      const confirmPage = await (
        await browser.post(entryForm.action, { ...entryForm.fields, user_code: denied.user_code })
      ).text();
      const cancel = readForm(confirmPage.slice(confirmPage.indexOf('</form>') + 7));
      assert.equal(cancel.fields.abort, 'yes');
      assert.match(await (await browser.post(cancel.action, cancel.fields)).text(), /cancelled/);
      await assert.rejects(oidc.pollDeviceAuthorizationGrant(config, denied), (e: oidc.ResponseBodyError) => {
        assert.equal(e.error, 'access_denied');
        return true;
      });

      const expired = await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });
      // Ten minutes and a second pass: the code's expiry and its row's, both as they were written.
      await app.db.ownerQuery(
        `UPDATE oidc_payloads
            SET payload = jsonb_set(payload, '{exp}', to_jsonb((payload->>'exp')::int - 601)),
                expires_at = expires_at - interval '601 seconds'
          WHERE model = 'DeviceCode' AND (payload->>'clientId') = $1 AND consumed_at IS NULL AND NOT payload ? 'error'`,
        [clients.tv!.clientId],
      );
      await assert.rejects(
        oidc.pollDeviceAuthorizationGrant(config, expired),
        (e: oidc.ResponseBodyError) => {
          assert.equal(e.error, 'expired_token');
          return true;
        },
      );
      const entry2 = readForm(await (await browser.get(expired.verification_uri)).text());
      assert.match(
        await (await browser.post(entry2.action, { ...entry2.fields, user_code: expired.user_code })).text(),
        /expired/,
      );
    });

    test('device flow: a client that did not register the device grant is unauthorized_client', async () => {
      const config = await configFor(clients.plain!);
      await assert.rejects(
        oidc.initiateDeviceAuthorization(config, { scope: 'openid' }),
        (e: oidc.ResponseBodyError) => {
          assert.equal(e.error, 'unauthorized_client');
          return true;
        },
      );
    });

    test('device flow: wrong user codes from one address are throttled before the next code is looked up', {
      timeout: 60_000,
    }, async () => {
      const guessIssuer = `${base}/t/guess`;
      const config = await configFor(clients.guessTv!, guessIssuer);
      const device = await oidc.initiateDeviceAuthorization(config, { scope: 'openid' });
      const browser = new CookieBrowser({ 'x-forwarded-for': '203.0.113.50' });
      let form = readForm(await (await browser.get(device.verification_uri)).text());
      // The sign-in throttle's free failures, then one that starts a block.
      for (let i = 0; i < 6; i++) {
        const wrong = await browser.post(form.action, { ...form.fields, user_code: 'BBBB-BBBB' });
        const page = await wrong.text();
        assert.equal(wrong.status, 200);
        assert.match(page, /not valid/);
        form = readForm(page);
      }
      // Now even the right code is refused, unread, with the wait; nothing about the code changes.
      const blocked = await browser.post(form.action, { ...form.fields, user_code: device.user_code });
      const blockedPage = await blocked.text();
      assert.equal(blocked.status, 429);
      assert.ok(Number(blocked.headers.get('retry-after')) >= 1);
      assert.match(blockedPage, /Too many incorrect codes/);
      assert.doesNotMatch(blockedPage, /Connect Guess TV/);
      // Another address is not blocked, and once the wait is over the right code works again.
      const other = new CookieBrowser({ 'x-forwarded-for': '203.0.113.51' });
      const otherForm = readForm(await (await other.get(device.verification_uri)).text());
      assert.match(
        await (await other.post(otherForm.action, { ...otherForm.fields, user_code: 'BBBB-BBBB' })).text(),
        /not valid/,
      );
      clock.set(new Date(clock.now().getTime() + 60_000));
      form = readForm(blockedPage);
      const after = await browser.post(form.action, { ...form.fields, user_code: device.user_code });
      assert.match(await after.text(), /Connect Guess TV\?/);
      const tenant = await app.tenants.get('guess');
      const events = await withTenant(app.db, tenant.id, async (tx) =>
        (await import('../../src/audit/audit-log.js')).readAudit(
          tx,
          await app.tenantKeys.forTenant(tx, tenant.id),
          { limit: 50 },
        ),
      );
      assert.ok(events.filter((e) => e.action === 'device.user_code' && e.outcome === 'failure').length >= 7);
    });

    test('PAR: a pushed request signs in; a client that requires PAR is refused without it, and a request_uri works once', async () => {
      const config = await configFor(clients.par!);
      const { verifier, state, challenge } = await pkce();
      const params = {
        redirect_uri: redirectUri,
        scope: 'openid email',
        code_challenge: challenge,
        code_challenge_method: 'S256',
        state,
      };
      const plain = await authorizationError(oidc.buildAuthorizationUrl(config, params));
      assert.equal(plain.error, 'invalid_request');
      assert.match(plain.description, /Pushed Authorization Request must be used/);

      const url = await oidc.buildAuthorizationUrlWithPAR(config, params);
      // Stored by a keyed hash of its id, the request it holds sealed under that id.
      const requestId = url.searchParams.get('request_uri')!.split(':').at(-1)!;
      const { rows: pushed } = await app.db.ownerQuery<{ row: string }>(
        `SELECT row_to_json(p)::text AS row FROM oidc_payloads p WHERE model = 'PushedAuthorizationRequest'`,
      );
      assert.ok(pushed.length >= 1);
      for (const { row } of pushed) {
        assert.ok(!row.includes(requestId));
        // Only the engine's bookkeeping is readable: the request itself is in `sealed`.
        const { payload } = JSON.parse(row) as { payload: Record<string, unknown> };
        assert.deepEqual(Object.keys(payload).sort(), ['exp', 'iat', 'kind', 'sealed']);
      }
      assert.ok(url.searchParams.get('request_uri')?.startsWith('urn:ietf:params:oauth:request_uri:'));
      assert.equal(url.searchParams.get('scope'), null);
      const flow = await codeFlow(config, url, verifier, state);
      const tokens = await flow.tokens();
      assert.equal(tokens.claims()!.sub, userId);
      const again = await authorizationError(url);
      assert.equal(again.error, 'invalid_request_uri');
      // Another client can still send its parameters in the front channel.
      const other = await configFor(clients.plain!);
      const allowed = await fetch(oidc.buildAuthorizationUrl(other, params), { redirect: 'manual' });
      assert.match(allowed.headers.get('location') ?? '', /\/interaction\//);
    });

    test('DPoP: a DPoP-bound client gets tokens bound to its key, unusable without a proof', async () => {
      const config = await configFor(clients.dpop!);
      const keys = await oidc.randomDPoPKeyPair('ES256');
      const dpop = oidc.getDPoPHandle(config, keys);
      const { verifier, state, challenge } = await pkce();
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri,
        scope: 'openid email',
        code_challenge: challenge,
        code_challenge_method: 'S256',
        state,
      });
      const flow = await codeFlow(config, url, verifier, state, dpop);
      // Without a proof the client is refused, and the code is still good afterwards.
      await assert.rejects(
        oidc.authorizationCodeGrant(config, flow.callback, {
          pkceCodeVerifier: verifier,
          expectedState: state,
        }),
        (e: oidc.ResponseBodyError) => {
          assert.equal(e.error, 'invalid_grant');
          assert.match(e.error_description ?? '', /send a DPoP proof/);
          return true;
        },
      );
      const form = new URLSearchParams({
        grant_type: 'authorization_code',
        code: flow.callback.searchParams.get('code')!,
        redirect_uri: redirectUri,
        code_verifier: verifier,
      });
      const badProof = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${clients.dpop!.clientId}:${clients.dpop!.clientSecret}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
          dpop: 'not.a.proof',
        },
        body: form,
      });
      assert.equal(badProof.status, 400);
      assert.equal(((await badProof.json()) as { error: string }).error, 'invalid_dpop_proof');

      const tokens = await flow.tokens();
      assert.equal(tokens.token_type, 'dpop');
      const jkt = await calculateJwkThumbprint(await exportJWK(keys.publicKey));
      const introspected = await oidc.tokenIntrospection(config, tokens.access_token);
      assert.deepEqual(introspected.cnf, { jkt });
      const info = await oidc.fetchUserInfo(config, tokens.access_token, userId, { DPoP: dpop });
      assert.equal(info.email, 'ann@acme.test');
      // As a bearer token: not a valid token for that scheme.
      const asBearer = await fetch(`${issuer}/me`, {
        headers: { authorization: `Bearer ${tokens.access_token}` },
      });
      assert.equal(asBearer.status, 401);
      assert.match(asBearer.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
      // In the DPoP scheme but without a proof: refused, saying the proof is missing.
      const noProof = await fetch(`${issuer}/me`, {
        headers: { authorization: `DPoP ${tokens.access_token}` },
      });
      const noProofBody = (await noProof.json()) as { error: string; error_description: string };
      assert.equal(noProof.status, 400);
      assert.equal(noProofBody.error, 'invalid_request');
      assert.match(noProofBody.error_description, /DPoP/);
      // Another key's proof does not carry the token.
      const stranger = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair('ES256'));
      await assert.rejects(oidc.fetchUserInfo(config, tokens.access_token, userId, { DPoP: stranger }));
    });

    test('JAR: a signed request object is accepted; a tampered or missing one is invalid_request_object / invalid_request', async () => {
      const config = await configFor(clients.jar!);
      const { verifier, state, challenge } = await pkce();
      const params = {
        redirect_uri: redirectUri,
        scope: 'openid email',
        code_challenge: challenge,
        code_challenge_method: 'S256',
        state,
      };
      const url = await oidc.buildAuthorizationUrlWithJAR(config, params, { key: jarKey, kid: 'jar-1' });
      const request = url.searchParams.get('request')!;
      const [header, payload, signature] = request.split('.');
      const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as JWTPayload;
      const tampered = new URL(url);
      tampered.searchParams.set(
        'request',
        [
          header,
          Buffer.from(JSON.stringify({ ...claims, scope: 'openid email phone' })).toString('base64url'),
          signature,
        ].join('.'),
      );
      const refused = await authorizationError(tampered);
      assert.equal(refused.error, 'invalid_request_object');
      assert.match(refused.description, /could not validate Request Object/);
      // Signed by another key: refused the same way.
      const otherKey = (await generateKeyPair('ES256')).privateKey;
      const forged = await authorizationError(
        await oidc.buildAuthorizationUrlWithJAR(config, params, { key: otherKey, kid: 'jar-1' }),
      );
      assert.equal(forged.error, 'invalid_request_object');
      const unsigned = await authorizationError(oidc.buildAuthorizationUrl(config, params));
      assert.equal(unsigned.error, 'invalid_request');
      assert.match(unsigned.description, /Request Object must be used/);

      const flow = await codeFlow(config, url, verifier, state);
      assert.equal((await flow.tokens()).claims()!.sub, userId);
    });

    test('back-channel logout: RP-initiated logout posts a logout token that verifies against JWKS', async () => {
      const config = await configFor(clients.bcl!);
      const { verifier, state, challenge } = await pkce();
      const browser = new CookieBrowser();
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: redirectUri,
        scope: 'openid',
        code_challenge: challenge,
        code_challenge_method: 'S256',
        state,
      });
      const done = await signInAndConsent(browser, await browser.get(url.href), redirectUri);
      const tokens = await oidc.authorizationCodeGrant(config, new URL(done.url), {
        pkceCodeVerifier: verifier,
        expectedState: state,
      });
      const sid = tokens.claims()!.sid;
      assert.ok(sid);
      const before = logoutTokens.length;
      const end = oidc.buildEndSessionUrl(config, {
        id_token_hint: tokens.id_token!,
        post_logout_redirect_uri: 'http://127.0.0.1/bye',
      });
      const confirm = readForm(await (await browser.get(end.href)).text(), 'op.logoutForm');
      const out = await browser.post(new URL(confirm.action, base).href, {
        ...confirm.fields,
        logout: 'yes',
      });
      assert.equal(out.status, 303);
      assert.ok(out.headers.get('location')?.startsWith('http://127.0.0.1/bye'));
      assert.equal(logoutTokens.length, before + 1, 'one logout token was delivered before the redirect');
      const { payload, protectedHeader } = await jwtVerify(
        logoutTokens.at(-1)!,
        createRemoteJWKSet(new URL(`${issuer}/jwks`)),
        {
          issuer,
          audience: clients.bcl!.clientId,
          typ: 'logout+jwt',
        },
      );
      assert.ok(protectedHeader.kid);
      assert.equal(payload.sub, userId);
      assert.equal(payload.sid, sid);
      assert.deepEqual(payload.events, { 'http://schemas.openid.net/event/backchannel-logout': {} });
      assert.ok(payload.jti);
      assert.equal(payload.nonce, undefined);
    });

    test('registration refuses flow options that cannot work, naming the field', async () => {
      const tenant = await app.tenants.get('acme');
      const web = {
        name: 'Bad',
        grantTypes: ['authorization_code'] as NewClient['grantTypes'],
        redirectUris: [redirectUri],
      };
      const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
      const cases: [Partial<NewClient>, string][] = [
        [{ backchannelLogoutUri: 'http://rp.example.com/logout' }, 'backchannelLogoutUri'],
        [{ backchannelLogoutUri: 'https://rp.example.com/logout#x' }, 'backchannelLogoutUri'],
        [{ backchannelLogoutUri: 'javascript:alert(1)' }, 'backchannelLogoutUri'],
        [{ backchannelLogoutUri: 'not a uri' }, 'backchannelLogoutUri'],
        [
          {
            grantTypes: ['client_credentials'],
            redirectUris: [],
            backchannelLogoutUri: 'https://rp.example.com/l',
          },
          'backchannelLogoutUri',
        ],
        [
          { grantTypes: ['client_credentials'], redirectUris: [], requirePushedAuthorizationRequests: true },
          'requirePushedAuthorizationRequests',
        ],
        [
          { requestObjectJwks: [await exportJWK(privateKey)], requestObjectSigningAlg: 'ES256' },
          'requestObjectJwks',
        ],
        [
          { requestObjectJwks: [{ kty: 'oct', k: 'c2VjcmV0' }], requestObjectSigningAlg: 'ES256' },
          'requestObjectJwks',
        ],
        [
          { requestObjectJwks: [await exportJWK(publicKey)], requestObjectSigningAlg: 'HS256' as 'ES256' },
          'requestObjectSigningAlg',
        ],
        [{ requestObjectJwks: [await exportJWK(publicKey)] }, 'requestObjectSigningAlg'],
        [{ requestObjectJwks: [], requestObjectSigningAlg: 'ES256' }, 'requestObjectJwks'],
        [{ dpopBoundAccessTokens: 'yes' as unknown as boolean }, 'dpopBoundAccessTokens'],
      ];
      for (const [options, field] of cases) {
        await assert.rejects(register(tenant.id, { ...web, ...options } as NewClient), (e: unknown) => {
          assert.ok(isOrthIdError(e, 'request.invalid'), String(e));
          assert.equal(e.details?.field, field, JSON.stringify(options));
          return true;
        });
      }
      const listed = await withTenant(app.db, tenant.id, (tx) => app.clients.list(tx, { limit: 200 }));
      assert.equal(listed.items.filter((c) => c.name === 'Bad').length, 0);
      const bcl = listed.items.find((c) => c.clientId === clients.bcl!.clientId)!;
      assert.equal(bcl.backchannelLogoutUri, `${listenerBase}/backchannel`);
      assert.equal(
        listed.items.find((c) => c.clientId === clients.par!.clientId)!.requirePushedAuthorizationRequests,
        true,
      );
    });
  });
}
