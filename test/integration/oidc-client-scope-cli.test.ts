import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { exitCodes } from '../../src/core/errors.js';
import { runCli } from '../helpers/cli.js';
import { createTestDatabase } from '../helpers/postgres.js';

const MASTER = 'client-scope-cli-master-secret-0123456789-abcd';

describe('orthid client create --scope on real PostgreSQL', { timeout: 120_000 }, () => {
  let dir: string;
  let env: Record<string, string>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'orthid-client-scope-cli-'));
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

  test('an API permission given as a client scope is refused with request.invalid, and no client is registered', async () => {
    const create = (scope: string) =>
      runCli(
        [
          'client',
          'create',
          '--tenant',
          'shop',
          '--name',
          'ops',
          '--grant',
          'client_credentials',
          '--scope',
          scope,
          '--json',
        ],
        env,
      );
    const refused = await create('orthid:admin');
    assert.equal(refused.code, exitCodes.invalid, refused.stderr);
    assert.match(refused.stderr, /^error\[request\.invalid\]: scope may hold only openid, /m);
    assert.match(refused.stderr, /--resource/);
    const listed = await runCli(['client', 'list', '--tenant', 'shop', '--json'], env);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(JSON.parse(listed.stdout), []);
    // OpenID scopes alone are still accepted.
    const accepted = await create('openid');
    assert.equal(accepted.code, 0, accepted.stderr);
    assert.equal(JSON.parse(accepted.stdout).scope, 'openid');
  });
});
