// What OrthID refuses, against a running server over HTTP: authorization requests without PKCE or
// with `plain`, a replayed authorization code, redirect URIs that only resemble the registered
// one, refresh tokens nobody asked for, hosted pages that could be framed or cached, and
// redirect URIs no browser can follow. Each refusal carries the specification's error, never a 500.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as oidc from 'openid-client';
import { CookieBrowser, readForm } from '../helpers/cookie-browser.js';
import { consentToCallback, submitHostedSignIn } from '../helpers/hosted-sign-in.js';
import { type RunningOrthId, startRunningOrthId } from '../helpers/running-orthid.js';

const USER = {
  email: 'nina@acme.test',
  name: 'Nina Negative',
  password: 'no, not like that, and not that either',
};
const REDIRECT = 'https://app.test/cb';
const BAD_URIS = [
  'javascript:alert(document.cookie)',
  'data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==',
  `${REDIRECT}#top`,
];

describe('OpenID Connect requests OrthID refuses', { timeout: 300_000 }, () => {
  let orthid: RunningOrthId;
  let client: { client_id: string; client_secret: string };
  let config: oidc.Configuration;

  before(async () => {
    orthid = await startRunningOrthId(USER);
    const registered = await orthid.createClient([
      '--name',
      'Nina App',
      '--grant',
      'authorization_code',
      '--grant',
      'refresh_token',
      '--redirect-uri',
      REDIRECT,
    ]);
    client = { client_id: registered.client_id, client_secret: registered.client_secret! };
    config = await oidc.discovery(new URL(orthid.issuer), client.client_id, client.client_secret, undefined, {
      execute: [oidc.allowInsecureRequests],
    });
  });

  after(async () => {
    await orthid?.stop();
  });

  /** An authorization request with these parameters (PKCE S256 unless overridden; '' leaves one out). */
  async function authorizationUrl(params: Record<string, string>): Promise<string> {
    const url = new URL(config.serverMetadata().authorization_endpoint!);
    url.search = new URLSearchParams({
      client_id: client.client_id,
      response_type: 'code',
      scope: 'openid',
      redirect_uri: REDIRECT,
      state: 'kept-by-the-app',
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
      ...params,
    }).toString();
    for (const [name, value] of Object.entries(params)) if (value === '') url.searchParams.delete(name);
    return url.href;
  }

  /** GET /auth, redirects not followed. */
  async function authorize(params: Record<string, string>): Promise<Response> {
    return fetch(await authorizationUrl(params), { redirect: 'manual' });
  }

  /** The error OrthID sent back to the app's redirect URI. */
  function redirectedError(response: Response): URLSearchParams {
    assert.ok([302, 303].includes(response.status), `a redirect back to the app, not ${response.status}`);
    const location = new URL(response.headers.get('location')!);
    assert.equal(`${location.origin}${location.pathname}`, REDIRECT);
    assert.equal(location.searchParams.get('code'), null);
    assert.equal(location.searchParams.get('state'), 'kept-by-the-app');
    return location.searchParams;
  }

  async function signIn(scope: string) {
    const signedIn = await submitHostedSignIn({
      issuer: orthid.issuer,
      client,
      redirectUri: REDIRECT,
      email: USER.email,
      password: USER.password,
      scope,
    });
    assert.equal(signedIn.posted.status, 303);
    return { signedIn, callback: await consentToCallback(signedIn, REDIRECT) };
  }

  test('an authorization request without PKCE is sent back with invalid_request', async () => {
    const error = redirectedError(await authorize({ code_challenge: '', code_challenge_method: '' }));
    assert.equal(error.get('error'), 'invalid_request');
    assert.match(error.get('error_description') ?? '', /PKCE/);
  });

  test('code_challenge_method=plain is sent back with invalid_request', async () => {
    const verifier = oidc.randomPKCECodeVerifier();
    const error = redirectedError(
      await authorize({ code_challenge: verifier, code_challenge_method: 'plain' }),
    );
    assert.equal(error.get('error'), 'invalid_request');
    assert.match(error.get('error_description') ?? '', /code_challenge_method/);
  });

  test('the registered redirect URI itself is accepted: the request goes on to sign-in', async () => {
    const response = await authorize({});
    assert.ok([302, 303].includes(response.status));
    assert.match(response.headers.get('location')!, /\/interaction\//);
  });

  for (const near of [`${REDIRECT}/extra`, 'https://app.test/c', `${REDIRECT}/`, `${REDIRECT}?next=/admin`]) {
    test(`a redirect URI that only resembles the registered one (${near}) is refused on a page, never redirected to`, async () => {
      const response = await authorize({ redirect_uri: near });
      assert.equal(response.status, 400);
      assert.equal(response.headers.get('location'), null);
      assert.match(await response.text(), /redirect_uri did not match any of the client/);
    });
  }

  test('a code presented twice is refused with invalid_grant, and the replay revokes what the first use issued', async () => {
    const { signedIn, callback } = await signIn('openid email offline_access');
    const tokens = await oidc.authorizationCodeGrant(config, callback, {
      pkceCodeVerifier: signedIn.verifier,
      expectedState: signedIn.state,
    });
    assert.ok(tokens.refresh_token);
    const replay = await fetch(config.serverMetadata().token_endpoint!, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: callback.searchParams.get('code')!,
        redirect_uri: REDIRECT,
        code_verifier: signedIn.verifier,
      }),
    });
    assert.equal(replay.status, 400);
    assert.equal(((await replay.json()) as { error: string }).error, 'invalid_grant');
    assert.equal((await oidc.tokenIntrospection(config, tokens.access_token)).active, false);
    await assert.rejects(
      oidc.refreshTokenGrant(config, tokens.refresh_token),
      (e: oidc.ResponseBodyError) => {
        assert.equal(e.error, 'invalid_grant');
        return true;
      },
    );
  });

  test('a client allowed refresh tokens gets none when offline_access was not asked for', async () => {
    const { signedIn, callback } = await signIn('openid email');
    const tokens = await oidc.authorizationCodeGrant(config, callback, {
      pkceCodeVerifier: signedIn.verifier,
      expectedState: signedIn.state,
    });
    assert.ok(tokens.access_token);
    assert.equal(tokens.refresh_token, undefined);
  });

  test('every hosted page forbids framing and caching and sends no referrer', async () => {
    const pages: Array<[string, Response]> = [];
    const browser = new CookieBrowser();
    const signedIn = await submitHostedSignIn({
      issuer: orthid.issuer,
      client,
      redirectUri: REDIRECT,
      email: USER.email,
      password: 'not the password',
      scope: 'openid',
      browser,
    });
    pages.push(['sign-in failure', signedIn.posted]);
    const fresh = new CookieBrowser();
    const start = await authorizationUrl({});
    const signInPage = await fresh.follow(await fresh.get(start), start);
    pages.push(['sign-in', signInPage.response]);
    const form = readForm(await signInPage.response.clone().text());
    const posted = await fresh.post(new URL(form.action, orthid.issuer).href, { ...form.fields, ...USER });
    const consent = await fresh.follow(posted, orthid.issuer);
    assert.match(await consent.response.clone().text(), /Allow Nina App\?/);
    pages.push(['consent', consent.response]);
    pages.push(['error', await authorize({ client_id: 'no-such-client' })]);
    const endSession = config.serverMetadata().end_session_endpoint!;
    const signOut = await fresh.get(endSession);
    pages.push(['sign-out', signOut]);
    const signOutPage = await signOut.clone().text();
    assert.match(signOutPage, /Sign out\?/, signOutPage.slice(signOutPage.indexOf('<main')));
    const logoutForm = readForm(signOutPage, 'op.logoutForm');
    const out = await fresh.post(new URL(logoutForm.action, endSession).href, {
      ...logoutForm.fields,
      logout: 'yes',
    });
    pages.push(['signed out', (await fresh.follow(out, endSession)).response]);
    for (const [name, response] of pages) {
      assert.match(response.headers.get('content-type') ?? '', /^text\/html/, `${name} is a page`);
      assert.match(response.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/, name);
      assert.equal(response.headers.get('x-frame-options'), 'DENY', name);
      assert.equal(response.headers.get('referrer-policy'), 'no-referrer', name);
      assert.equal(response.headers.get('cache-control'), 'no-store', name);
    }
  });

  test('orthid client create refuses javascript:, data: and fragment redirect URIs and registers nothing', async () => {
    for (const uri of BAD_URIS) {
      const result = await orthid.cli([
        'client',
        'create',
        '--tenant',
        orthid.tenant,
        '--name',
        'Trap',
        '--grant',
        'authorization_code',
        '--redirect-uri',
        uri,
      ]);
      assert.equal(result.code, 2, `${uri}: ${result.stderr}`);
      assert.match(result.stderr, /^error\[request\.invalid\]: /, uri);
    }
    const listed = await orthid.cli(['client', 'list', '--tenant', orthid.tenant, '--json']);
    assert.deepEqual(
      (JSON.parse(listed.stdout) as Array<{ name: string }>).filter((c) => c.name === 'Trap'),
      [],
    );
  });

  test('the admin API refuses them with request.invalid naming the field', async () => {
    const token = await orthid.adminToken();
    const register = (body: Record<string, unknown>) =>
      fetch(`${orthid.server.url}/api/v1/tenants/${orthid.tenant}/clients`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'Trap', grantTypes: ['authorization_code'], ...body }),
      });
    for (const uri of BAD_URIS) {
      for (const field of ['redirectUris', 'postLogoutRedirectUris']) {
        const body =
          field === 'redirectUris' ? { redirectUris: [uri] } : { redirectUris: [REDIRECT], [field]: [uri] };
        const response = await register(body);
        assert.equal(response.status, 400, `${field} ${uri}`);
        const problem = (await response.json()) as { code: string; errors?: { field?: string } };
        assert.equal(problem.code, 'request.invalid', `${field} ${uri}`);
        assert.equal(problem.errors?.field, field, `${field} ${uri}`);
      }
    }
  });
});
