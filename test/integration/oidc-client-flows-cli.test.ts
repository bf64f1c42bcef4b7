import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { exportJWK, generateKeyPair } from 'jose';
import { exitCodes } from '../../src/core/errors.js';
import { runCli } from '../helpers/cli.js';
import { createTestDatabase } from '../helpers/postgres.js';

const MASTER = 'client-flows-cli-master-secret-0123456789-abcd';

describe('orthid client create with opt-in flows on real PostgreSQL', { timeout: 120_000 }, () => {
  let dir: string;
  let env: Record<string, string>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'orthid-client-flows-cli-'));
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
    runCli(['client', 'create', '--tenant', 'shop', '--name', 'tv', '--json', ...options], env);

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
    const before = JSON.parse((await runCli(['client', 'list', '--tenant', 'shop', '--json'], env)).stdout);
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
    const listed = JSON.parse((await runCli(['client', 'list', '--tenant', 'shop', '--json'], env)).stdout);
    assert.equal(listed.length, before.length);
  });
});
