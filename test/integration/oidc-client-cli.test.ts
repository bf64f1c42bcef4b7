// `orthid client create`, `update` and `rotate-secret` as an operator runs them against real
// PostgreSQL: the options they take (scope, opt-in flows, introspection, redirect URIs, a grace
// period) and the refusals that change nothing.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { exportJWK, generateKeyPair } from 'jose';
import { exitCodes } from '../../src/core/errors.js';
import { runCli } from '../helpers/cli.js';
import { createTestDatabase } from '../helpers/postgres.js';

const MASTER = 'client-cli-master-secret-0123456789-abcdefgh';
const API = 'https://orders.shop.test';

describe('orthid client create, update and rotate-secret on real PostgreSQL', { timeout: 420_000 }, () => {
  let dir: string;
  let env: Record<string, string>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'orthid-client-cli-'));
    env = {
      ORTHID_DATA_DIR: dir,
      ORTHID_DATABASE_URL: await createTestDatabase(),
      ORTHID_MASTER_KEY: MASTER,
    };
    assert.equal((await runCli(['keystore', 'init'], env)).code, 0);
    assert.equal((await runCli(['migrate'], env)).code, 0);
    assert.equal((await runCli(['tenant', 'create', 'shop'], env)).code, 0);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const create = (...options: string[]) =>
    runCli(['client', 'create', '--tenant', 'shop', '--name', 'app', '--json', ...options], env);
  const listed = async (): Promise<unknown[]> => {
    const result = await runCli(['client', 'list', '--tenant', 'shop', '--json'], env);
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout);
  };

  test('an API permission given as a client scope is refused with request.invalid, and no client is registered', async () => {
    const withScope = (scope: string) => create('--grant', 'client_credentials', '--scope', scope);
    const before = await listed();
    const refused = await withScope('orthid:admin');
    assert.equal(refused.code, exitCodes.invalid, refused.stderr);
    assert.match(refused.stderr, /^error\[request\.invalid\]: scope may hold only openid, /m);
    assert.match(refused.stderr, /--resource/);
    assert.deepEqual(await listed(), before);
    // OpenID scopes alone are still accepted.
    const accepted = await withScope('openid');
    assert.equal(accepted.code, 0, accepted.stderr);
    assert.equal(JSON.parse(accepted.stdout).scope, 'openid');
  });

  test('a device client and a web client with every flow option are registered as asked', async () => {
    const device = await create('--grant', 'urn:ietf:params:oauth:grant-type:device_code', '--public');
    assert.equal(device.code, 0, device.stderr);
    assert.deepEqual(JSON.parse(device.stdout).grantTypes, ['urn:ietf:params:oauth:grant-type:device_code']);
    const { publicKey } = await generateKeyPair('ES256');
    const web = await create(
      '--grant',
      'authorization_code',
      '--redirect-uri',
      'https://rp.example.com/cb',
      '--require-par',
      '--dpop-bound',
      '--backchannel-logout-uri',
      'https://rp.example.com/backchannel',
      '--request-object-jwks',
      JSON.stringify({ keys: [await exportJWK(publicKey)] }),
      '--request-object-alg',
      'ES256',
    );
    assert.equal(web.code, 0, web.stderr);
    const out = JSON.parse(web.stdout);
    assert.equal(out.requirePushedAuthorizationRequests, true);
    assert.equal(out.dpopBoundAccessTokens, true);
    assert.equal(out.backchannelLogoutUri, 'https://rp.example.com/backchannel');
    assert.equal(out.requestObjectSigningAlg, 'ES256');
  });

  test('flow options that cannot work are refused with request.invalid, and nothing is registered', async () => {
    const before = await listed();
    const web = ['--grant', 'authorization_code', '--redirect-uri', 'https://rp.example.com/cb'];
    for (const [options, message] of [
      [['--backchannel-logout-uri', 'http://rp.example.com/l'], /must use https/],
      [['--request-object-jwks', '{not json', '--request-object-alg', 'ES256'], /must be JSON/],
      [
        ['--request-object-jwks', '{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}', '--request-object-alg', 'ES256'],
        /RSA, EC or OKP public JWK/,
      ],
    ] as [string[], RegExp][]) {
      const refused = await create(...web, ...options);
      assert.equal(refused.code, exitCodes.invalid, refused.stderr);
      assert.match(refused.stderr, /^error\[request\.invalid\]: /m);
      assert.match(refused.stderr, message);
    }
    assert.equal((await listed()).length, before.length);
  });

  test('a public client cannot be a resource server that introspects; nothing is registered', async () => {
    const refused = await create(
      '--grant',
      'authorization_code',
      '--redirect-uri',
      'https://shop.test/cb',
      '--public',
      '--introspect',
      API,
    );
    assert.equal(refused.code, exitCodes.invalid, refused.stderr);
    assert.match(refused.stderr, /^error\[request\.invalid\]: A public client cannot introspect/m);
    const clients = (await listed()) as { public: boolean; introspects: string[] }[];
    assert.ok(!clients.some((c) => c.public && c.introspects.length > 0), 'no public client was registered');
  });

  test('a confidential client registered with --introspect names the API it serves', async () => {
    const created = await create('--grant', 'client_credentials', '--introspect', API);
    assert.equal(created.code, 0, created.stderr);
    assert.deepEqual(JSON.parse(created.stdout).introspects, [API]);
    const refused = await create('--grant', 'client_credentials', '--introspect', 'orders');
    assert.equal(refused.code, exitCodes.invalid, refused.stderr);
    assert.match(refused.stderr, /not an absolute URI/);
  });

  test('a client that gets its ID token through the browser must name https URIs on a real host', async () => {
    const before = await listed();
    for (const uri of ['http://localhost:3000/callback', 'https://localhost/callback']) {
      const refused = await create(
        '--grant',
        'authorization_code',
        '--response-type',
        'id_token',
        '--redirect-uri',
        uri,
      );
      assert.equal(refused.code, exitCodes.invalid, refused.stderr);
      assert.match(
        refused.stderr,
        /^error\[request\.invalid\]: .* must be an https URL on a host other than localhost/m,
      );
    }
    assert.equal((await listed()).length, before.length);
    const accepted = await create(
      '--grant',
      'authorization_code',
      '--response-type',
      'id_token',
      '--redirect-uri',
      'https://app.shop.test/callback',
    );
    assert.equal(accepted.code, 0, accepted.stderr);
    assert.deepEqual(JSON.parse(accepted.stdout).responseTypes, ['id_token']);
  });

  test('orthid client update replaces the redirect URIs it is given, checked as at registration', async () => {
    const web = JSON.parse(
      (await create('--grant', 'authorization_code', '--redirect-uri', 'https://edit.shop.test/cb')).stdout,
    ) as { clientId: string };
    const update = (...options: string[]) =>
      runCli(['client', 'update', web.clientId, '--tenant', 'shop', '--json', ...options], env);
    const changed = await update(
      '--redirect-uri',
      'https://edit.shop.test/cb2',
      '--redirect-uri',
      'http://127.0.0.1:9000/cb',
      '--post-logout-redirect-uri',
      'https://edit.shop.test/bye',
    );
    assert.equal(changed.code, 0, changed.stderr);
    const out = JSON.parse(changed.stdout);
    assert.deepEqual(out.redirectUris, ['https://edit.shop.test/cb2', 'http://127.0.0.1:9000/cb']);
    assert.deepEqual(out.postLogoutRedirectUris, ['https://edit.shop.test/bye']);
    const cleared = await update('--no-post-logout-redirect-uris', '--name', 'Shop web');
    assert.equal(cleared.code, 0, cleared.stderr);
    assert.deepEqual(JSON.parse(cleared.stdout).postLogoutRedirectUris, []);
    assert.equal(JSON.parse(cleared.stdout).name, 'Shop web');

    for (const [options, message] of [
      [['--redirect-uri', 'http://edit.shop.test/cb'], /must use https/],
      [['--redirect-uri', 'https://edit.shop.test/cb#x'], /must not contain a fragment/],
      [['--grant', 'password'], /Unknown grant type/],
      [[], /Name what to change/],
    ] as [string[], RegExp][]) {
      const refused = await update(...options);
      assert.equal(refused.code, exitCodes.invalid, refused.stderr);
      assert.match(refused.stderr, /^error\[request\.invalid\]: /m);
      assert.match(refused.stderr, message);
    }
    const now = (await listed()).find((c) => (c as { clientId: string }).clientId === web.clientId) as {
      redirectUris: string[];
    };
    assert.deepEqual(now.redirectUris, ['https://edit.shop.test/cb2', 'http://127.0.0.1:9000/cb']);
  });

  test('orthid client rotate-secret prints a new secret once; a public client has none to rotate', async () => {
    const worker = JSON.parse((await create('--grant', 'client_credentials')).stdout) as {
      clientId: string;
      clientSecret: string;
    };
    const rotate = (clientId: string, ...options: string[]) =>
      runCli(['client', 'rotate-secret', clientId, '--tenant', 'shop', ...options], env);
    const rotated = await rotate(worker.clientId, '--json', '--grace-period', '3600');
    assert.equal(rotated.code, 0, rotated.stderr);
    const out = JSON.parse(rotated.stdout);
    assert.ok(out.clientSecret.length >= 40);
    assert.notEqual(out.clientSecret, worker.clientSecret);
    assert.ok(Date.parse(out.previousSecretExpiresAt) > Date.now());
    const human = await rotate(worker.clientId);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /Client secret \(shown once, store it now\): \S{40,}/);
    assert.match(human.stdout, /The old secret no longer works\./);

    const tooLong = await rotate(worker.clientId, '--grace-period', '999999');
    assert.equal(tooLong.code, exitCodes.invalid, tooLong.stderr);
    assert.match(tooLong.stderr, /^error\[request\.invalid\]: gracePeriodSeconds/m);
    const spa = JSON.parse(
      (
        await create(
          '--grant',
          'authorization_code',
          '--redirect-uri',
          'https://spa.shop.test/cb',
          '--public',
        )
      ).stdout,
    ) as { clientId: string };
    const refused = await rotate(spa.clientId);
    assert.equal(refused.code, exitCodes.invalid, refused.stderr);
    assert.match(refused.stderr, /^error\[client\.public_no_secret\]: /m);
    const missing = await rotate('no-such-client');
    assert.equal(missing.code, exitCodes.not_found, missing.stderr);
  });
});
