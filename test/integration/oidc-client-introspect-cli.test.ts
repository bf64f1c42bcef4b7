import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { exitCodes } from '../../src/core/errors.js';
import { runCli } from '../helpers/cli.js';
import { createTestDatabase } from '../helpers/postgres.js';

const MASTER = 'client-introspect-cli-master-secret-0123456789';
const API = 'https://orders.shop.test';

describe('orthid client create --introspect on real PostgreSQL', { timeout: 120_000 }, () => {
  let dir: string;
  let env: Record<string, string>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'orthid-client-introspect-cli-'));
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

  const create = (...extra: string[]) =>
    runCli(['client', 'create', '--tenant', 'shop', '--name', 'Orders API', '--json', ...extra], env);

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
    const listed = await runCli(['client', 'list', '--tenant', 'shop', '--json'], env);
    const clients = JSON.parse(listed.stdout) as { public: boolean }[];
    assert.ok(!clients.some((c) => c.public), 'no public client was registered');
  });

  test('a confidential client registered with --introspect names the API it serves', async () => {
    const created = await create('--grant', 'client_credentials', '--introspect', API);
    assert.equal(created.code, 0, created.stderr);
    assert.deepEqual(JSON.parse(created.stdout).introspects, [API]);
    const refused = await create('--grant', 'client_credentials', '--introspect', 'orders');
    assert.equal(refused.code, exitCodes.invalid, refused.stderr);
    assert.match(refused.stderr, /not an absolute URI/);
  });
});
