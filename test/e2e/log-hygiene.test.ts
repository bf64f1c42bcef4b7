import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as oidc from 'openid-client';
import { ageKeygen, requireAgeCli } from '../helpers/age-cli.js';
import { runCli } from '../helpers/cli.js';
import { CookieBrowser, readForm } from '../helpers/cookie-browser.js';
import { type ServerProcess, startServer } from '../helpers/server-process.js';

const EMAIL = 'grace.hopper.7f3a9c@acme.test';
const PASSWORD = 'hygiene passphrase 7f3a9c of some length';
const NAME = 'Grace Hopper-7f3a9c';
const PHONE = '+61 400 739 951';
/** Client addresses, as the proxy in front of OrthID reports them. */
const CLIENT_V4 = '203.0.113.77';
const CLIENT_V6 = '2001:db8:abcd:12::77';
const REDIRECT_URI = 'http://127.0.0.1:9/callback';

function basic(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

for (const level of ['info', 'debug'] as const) {
  describe(`what orthid start and the CLI print carries no secret and no personal datum (ORTHID_LOG_LEVEL=${level})`, () => {
    let dir: string;
    let server: ServerProcess;
    let key: ReturnType<typeof ageKeygen>;
    const printed: { source: string; text: string }[] = [];
    /** Every value the run used that must not be printed, with a label for the failure message. */
    const secrets = new Map<string, string>([
      ['the e-mail address', EMAIL],
      ['the password', PASSWORD],
      ['the name', NAME],
      ['the phone number', PHONE],
      ['the IPv4 client address', CLIENT_V4],
      ['the IPv6 client address', CLIENT_V6],
    ]);
    const remember = (label: string, value: string | undefined) => {
      assert.ok(value, `${label} was issued`);
      secrets.set(label, value);
      return value;
    };

    before(async () => {
      requireAgeCli();
      dir = mkdtempSync(join(tmpdir(), 'orthid-log-hygiene-'));
      key = ageKeygen(dir);
      server = await startServer({
        ORTHID_DATA_DIR: join(dir, 'data'),
        ORTHID_LOG_LEVEL: level,
        ORTHID_TRUST_PROXY: '127.0.0.1',
      });
    });
    after(async () => {
      if (server.child.exitCode === null) await server.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    async function cli(args: string[]) {
      const result = await runCli(args, { ORTHID_DATA_DIR: join(dir, 'data'), ORTHID_LOG_LEVEL: level });
      printed.push({ source: `orthid ${args[0]} ${args[1]} (stdout)`, text: result.stdout });
      printed.push({ source: `orthid ${args[0]} ${args[1]} (stderr)`, text: result.stderr });
      assert.equal(result.code, 0, `orthid ${args.join(' ')} failed`);
      return result;
    }

    async function http(path: string, init: RequestInit & { from?: string } = {}) {
      return fetch(`${server.url}${path}`, {
        redirect: 'manual',
        ...init,
        headers: { 'x-forwarded-for': init.from ?? CLIENT_V4, ...(init.headers as Record<string, string>) },
      });
    }

    const form = (fields: Record<string, string>) => ({
      'content-type': 'application/x-www-form-urlencoded',
      body: new URLSearchParams(fields),
    });

    async function post(path: string, fields: Record<string, string>, headers: Record<string, string> = {}) {
      const { body, ...type } = form(fields);
      return http(path, { method: 'POST', headers: { ...type, ...headers }, body });
    }

    test('a sign-in, tokens, refresh, introspection, userinfo, admin calls and a backup print none of the values they used', {
      timeout: 180_000,
    }, async () => {
      await cli(['tenant', 'create', 'acme', '--json']);

      // An admin token from the bootstrapped client, as the README shows.
      const credentials = JSON.parse(readFileSync(join(dir, 'data', 'admin-credentials.json'), 'utf8'));
      remember('the admin client secret', credentials.client_secret);
      const adminTokenResponse = await post(
        '/t/system/token',
        { grant_type: 'client_credentials', scope: credentials.scope, resource: credentials.resource },
        { authorization: basic(credentials.client_id, credentials.client_secret) },
      );
      assert.equal(adminTokenResponse.status, 200);
      const adminToken = remember(
        'the admin access token',
        ((await adminTokenResponse.json()) as { access_token: string }).access_token,
      );
      const admin = (method: string, path: string, body?: unknown) =>
        http(`/api/v1/tenants/acme${path}`, {
          method,
          headers: {
            authorization: `Bearer ${adminToken}`,
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });

      const userResponse = await admin('POST', '/users', { email: EMAIL, password: PASSWORD, name: NAME });
      assert.equal(userResponse.status, 201);
      const user = (await userResponse.json()) as { id: string };
      assert.equal((await admin('PATCH', `/users/${user.id}`, { phone: PHONE })).status, 200);
      assert.equal((await admin('GET', `/users/${user.id}`)).status, 200);
      assert.equal((await admin('GET', '/users?limit=5')).status, 200);
      const clientResponse = await admin('POST', '/clients', {
        name: 'Hygiene Web',
        grantTypes: ['authorization_code', 'refresh_token'],
        redirectUris: [REDIRECT_URI],
      });
      assert.equal(clientResponse.status, 201);
      const client = (await clientResponse.json()) as { clientId: string; clientSecret: string };
      remember('the client secret', client.clientSecret);
      const clientAuth = { authorization: basic(client.clientId, client.clientSecret) };
      // A refused request that names a secret in its body and its query.
      assert.equal(
        (
          await admin('POST', `/users?password=${encodeURIComponent(PASSWORD)}`, {
            email: EMAIL,
            password: 5,
          })
        ).status,
        400,
      );

      // Sign-in through the hosted page, with a login_hint and a wrong password first.
      const verifier = remember('the PKCE verifier', oidc.randomPKCECodeVerifier());
      const state = remember('the state', oidc.randomState());
      const nonce = remember('the nonce', oidc.randomNonce());
      const authorize = new URLSearchParams({
        client_id: client.clientId,
        response_type: 'code',
        redirect_uri: REDIRECT_URI,
        scope: 'openid email profile offline_access',
        prompt: 'consent',
        login_hint: EMAIL,
        state,
        nonce,
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
      });
      const browser = new CookieBrowser({ 'x-forwarded-for': CLIENT_V4 });
      const login = await browser.follow(
        await browser.get(`${server.url}/t/acme/auth?${authorize}`),
        server.url,
      );
      const loginPage = await login.response.text();
      const loginForm = readForm(loginPage);
      const action = new URL(loginForm.action, server.url).href;
      const wrong = await browser.post(action, {
        ...loginForm.fields,
        email: EMAIL,
        password: `${PASSWORD}!`,
      });
      assert.equal(wrong.status, 401);
      const retry = readForm(await wrong.text());
      const posted = await browser.post(new URL(retry.action, server.url).href, {
        ...retry.fields,
        email: EMAIL,
        password: PASSWORD,
      });
      assert.equal(posted.status, 303);
      const consent = await browser.follow(posted, server.url);
      const consentForm = readForm(await consent.response.text());
      const done = await browser.follow(
        await browser.post(new URL(consentForm.action, server.url).href, consentForm.fields),
        server.url,
        REDIRECT_URI,
      );
      const code = remember(
        'the authorization code',
        new URL(done.url).searchParams.get('code') ?? undefined,
      );

      const tokenResponse = await post(
        '/t/acme/token',
        { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier },
        clientAuth,
      );
      assert.equal(tokenResponse.status, 200);
      const tokens = (await tokenResponse.json()) as Record<string, string>;
      const accessToken = remember('the access token', tokens.access_token);
      const idToken = remember('the ID token', tokens.id_token);
      const refreshToken = remember('the refresh token', tokens.refresh_token);

      const refreshed = await post(
        '/t/acme/token',
        { grant_type: 'refresh_token', refresh_token: refreshToken },
        clientAuth,
      );
      assert.equal(refreshed.status, 200);
      const rotated = (await refreshed.json()) as Record<string, string>;
      const accessToken2 = remember('the refreshed access token', rotated.access_token);
      remember('the rotated refresh token', rotated.refresh_token);
      remember('the refreshed ID token', rotated.id_token);

      const introspected = await post('/t/acme/token/introspection', { token: accessToken2 }, clientAuth);
      assert.equal(((await introspected.json()) as { active: boolean }).active, true);
      // Userinfo with the token in the query, in a header, and from an IPv6 client.
      await http(`/t/acme/me?access_token=${encodeURIComponent(accessToken2)}`);
      const userinfo = await http('/t/acme/me', { headers: { authorization: `Bearer ${accessToken2}` } });
      assert.equal(userinfo.status, 200);
      await http('/t/acme/account/avatar', {
        headers: { authorization: `Bearer ${accessToken2}` },
        from: CLIENT_V6,
      });
      // Secrets in query strings of endpoints that expect them in the body.
      await http(
        `/t/acme/token?client_secret=${encodeURIComponent(client.clientSecret)}&refresh_token=${encodeURIComponent(refreshToken)}&code=${encodeURIComponent(code)}`,
        { method: 'POST', from: CLIENT_V6 },
      );
      // A NUL byte next to a secret: refused as input, not logged as a failure with its value.
      await post(
        '/t/acme/token',
        { grant_type: 'refresh_token', refresh_token: `${refreshToken}\u0000` },
        clientAuth,
      );
      // The code again: a replay, refused (and the grant revoked).
      const replay = await post(
        '/t/acme/token',
        { grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier },
        clientAuth,
      );
      assert.equal(replay.status, 400);
      await post('/t/acme/token/revocation', { token: accessToken }, clientAuth);
      await browser.get(
        `${server.url}/t/acme/session/end?id_token_hint=${encodeURIComponent(idToken)}&client_id=${client.clientId}`,
      );

      assert.equal((await admin('GET', '/audit-events?limit=20')).status, 200);
      await cli(['audit', 'verify', '--tenant', 'acme', '--json']);
      await cli(['backup', 'dump', '--encrypt', '--recipient', key.recipient, '--json']);
      await cli(['backup', 'list', '--json']);

      assert.equal(await server.stop(), 0);
      printed.push({ source: 'orthid start', text: server.output() });

      const lines = printed.flatMap(({ source, text }) => text.split('\n').map((line) => ({ source, line })));
      const forms = [...secrets].flatMap(([label, value]) =>
        [
          ...new Set([
            value,
            encodeURIComponent(value),
            new URLSearchParams({ v: value }).toString().slice(2),
          ]),
        ].map((form) => ({ label, form })),
      );
      // A failure names each value by its label, so the test's own output holds no secret.
      const mask = (line: string) =>
        forms.reduce((l, { label, form }) => l.split(form).join(`<${label}>`), line);
      const leaks = forms.flatMap(({ label, form }) =>
        lines
          .filter(({ line }) => line.includes(form))
          .map(({ source, line }) => `${source} printed ${label}: ${mask(line)}`),
      );
      assert.deepEqual(leaks, []);

      // The run was logged, just not its secrets: requests with their (redacted) queries and
      // truncated addresses, and the backup's steps.
      const log = server.output();
      assert.match(
        log,
        /"url":"\/t\/acme\/auth\?client_id=[^"&]+&response_type=code&[^"]*login_hint=\[redacted\]/,
      );
      assert.match(log, /"remoteAddress":"203\.0\.113\.0\/24"/);
      assert.match(log, /"remoteAddress":"2001:db8:abcd::\/48"/);
      assert.match(log, /access_token=\[redacted\]/);
      assert.match(log, /id_token_hint=\[redacted\]/);
      assert.match(log, /backup/);
    });
  });
}
