// oauth4webapi (panva's low-level OAuth 2.0 / OpenID Connect client) against a running OrthID:
// discovery, the authorization code flow with PKCE through the hosted pages, userinfo, refresh,
// revocation and introspection, on the library's defaults and told only that the issuer is http.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { decodeProtectedHeader } from 'jose';
import * as oauth from 'oauth4webapi';
import { CookieBrowser } from '../helpers/cookie-browser.js';
import { throughHostedPages } from '../helpers/hosted-sign-in.js';
import { freePort } from '../helpers/postgres.js';
import { type RunningOrthId, startRunningOrthId } from '../helpers/running-orthid.js';

const USER = { email: 'olga@acme.test', name: 'Olga Oauth', password: 'four webs of api, all of them mine' };
// Only because the test issuer is plain http on the loopback; over https nothing is needed.
const insecure = { [oauth.allowInsecureRequests]: true } as const;

describe('oauth4webapi against a running OrthID', { timeout: 300_000 }, () => {
  let orthid: RunningOrthId;
  let as: oauth.AuthorizationServer;
  let client: oauth.Client;
  let clientAuth: oauth.ClientAuth;
  let redirectUri: string;

  before(async () => {
    orthid = await startRunningOrthId(USER);
    // Nothing listens here: the test is the app and reads the code from the redirect.
    redirectUri = `http://127.0.0.1:${await freePort()}/callback`;
    const registered = await orthid.createClient([
      '--name',
      'Olga Web',
      '--grant',
      'authorization_code',
      '--grant',
      'refresh_token',
      '--redirect-uri',
      redirectUri,
      '--first-party',
    ]);
    const issuer = new URL(orthid.issuer);
    as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, insecure));
    client = { client_id: registered.client_id };
    clientAuth = oauth.ClientSecretBasic(registered.client_secret!);
  });

  after(async () => {
    await orthid?.stop();
  });

  async function signIn(scope: string) {
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const nonce = oauth.generateRandomNonce();
    const url = new URL(as.authorization_endpoint!);
    url.search = new URLSearchParams({
      client_id: client.client_id,
      redirect_uri: redirectUri,
      response_type: 'code',
      scope,
      state,
      nonce,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    }).toString();
    const browser = new CookieBrowser();
    const landed = await throughHostedPages(
      browser,
      { response: await browser.get(url.href), url: url.href },
      USER,
      new URL(redirectUri).origin,
      redirectUri,
    );
    const params = oauth.validateAuthResponse(as, client, new URL(landed.url), state);
    const response = await oauth.authorizationCodeGrantRequest(
      as,
      client,
      clientAuth,
      params,
      redirectUri,
      verifier,
      insecure,
    );
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, response, {
      expectedNonce: nonce,
      requireIdToken: true,
    });
    return { tokens, consented: landed.consented };
  }

  test('a first-party app signs the user in without a consent page; the ID token names them, signed RS256', async () => {
    const { tokens, consented } = await signIn('openid profile email');
    assert.equal(consented, false, 'a first-party client skips the consent page');
    const claims = oauth.getValidatedIdTokenClaims(tokens)!;
    assert.equal(claims.name, USER.name);
    assert.equal(claims.email, USER.email);
    assert.equal(decodeProtectedHeader(tokens.id_token!).alg, 'RS256');
    assert.equal(tokens.refresh_token, undefined, 'no refresh token without offline_access');
    const info = await oauth.processUserInfoResponse(
      as,
      client,
      claims.sub,
      await oauth.userInfoRequest(as, client, tokens.access_token, insecure),
    );
    assert.equal(info.email, USER.email);
    assert.equal(info.name, USER.name);
  });

  test('offline_access gets a refresh token that refreshes, and once revoked refreshes no more', async () => {
    const { tokens } = await signIn('openid email offline_access');
    assert.ok(tokens.refresh_token, 'a refresh token for offline_access, without prompt=consent');
    const refreshed = await oauth.processRefreshTokenResponse(
      as,
      client,
      await oauth.refreshTokenGrantRequest(as, client, clientAuth, tokens.refresh_token, insecure),
    );
    assert.ok(refreshed.access_token);
    assert.ok(refreshed.refresh_token);
    const active = await oauth.processIntrospectionResponse(
      as,
      client,
      await oauth.introspectionRequest(as, client, clientAuth, refreshed.access_token, insecure),
    );
    assert.equal(active.active, true);
    await oauth.processRevocationResponse(
      await oauth.revocationRequest(as, client, clientAuth, refreshed.refresh_token!, insecure),
    );
    await assert.rejects(
      oauth.processRefreshTokenResponse(
        as,
        client,
        await oauth.refreshTokenGrantRequest(as, client, clientAuth, refreshed.refresh_token!, insecure),
      ),
      (error: oauth.ResponseBodyError) => {
        assert.equal(error.error, 'invalid_grant');
        return true;
      },
    );
  });
});
