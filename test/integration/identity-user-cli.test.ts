import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { verify } from '@node-rs/argon2';
import pg from 'pg';
import { exitCodes } from '../../src/core/errors.js';
import { runCli } from '../helpers/cli.js';
import { createTestDatabase } from '../helpers/postgres.js';

const MASTER = 'identity-cli-master-secret-0123456789-abcdefgh';
// A passphrase that ends in a space: only the newline after it may be removed.
const PASSWORD = 'marble owls guard the quiet archive ';

describe('orthid user create --password-stdin on real PostgreSQL', () => {
  let dir: string;
  let env: Record<string, string>;
  let url: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'orthid-identity-cli-'));
    url = await createTestDatabase();
    env = { ORTHID_DATA_DIR: dir, ORTHID_DATABASE_URL: url, ORTHID_MASTER_KEY: MASTER };
    assert.equal((await runCli(['keystore', 'init'], env)).code, 0);
    assert.equal((await runCli(['migrate'], env)).code, 0);
    assert.equal((await runCli(['tenant', 'create', 'archive'], env)).code, 0);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('reads the password from stdin, prints the id as JSON, and stores an OWASP argon2id hash of it', async () => {
    const result = await runCli(
      ['user', 'create', '--tenant', 'archive', '--email', 'iris@archive.test', '--password-stdin', '--json'],
      env,
      `${PASSWORD}\n`,
    );
    assert.equal(result.code, 0, result.stderr);
    const user = JSON.parse(result.stdout);
    assert.match(user.id, /^[0-9a-f-]{36}$/);
    assert.equal(user.hasPassword, true);
    for (const output of [result.stdout, result.stderr])
      assert.equal(output.includes(PASSWORD.trim()), false);

    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const { rows } = await client.query<{ password_hash: string }>(
        'SELECT password_hash FROM users WHERE id = $1',
        [user.id],
      );
      const stored = rows[0]!.password_hash;
      assert.match(stored, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
      assert.equal(await verify(stored, PASSWORD), true, 'the trailing space is part of the password');
      assert.equal(await verify(stored, PASSWORD.trimEnd()), false);
    } finally {
      await client.end();
    }
  });

  test('a password the policy refuses exits 2 with its code and creates no user', async () => {
    const result = await runCli(
      ['user', 'create', '--tenant', 'archive', '--email', 'jo@archive.test', '--password-stdin'],
      env,
      'qwerty123456789\n',
    );
    assert.equal(result.code, exitCodes.invalid, result.stderr);
    assert.match(result.stderr, /^error\[password\.common\]: /m);
    assert.equal(result.stderr.includes('qwerty123456789'), false, 'the refused password is not echoed');
    const again = await runCli(['user', 'create', '--tenant', 'archive', '--email', 'jo@archive.test'], env);
    assert.equal(again.code, 0, `the email was not taken by the refused attempt: ${again.stderr}`);
  });

  test('--password-stdin with nothing on stdin is refused with request.invalid', async () => {
    const result = await runCli(
      ['user', 'create', '--tenant', 'archive', '--email', 'kim@archive.test', '--password-stdin'],
      env,
      '',
    );
    assert.equal(result.code, exitCodes.invalid, result.stderr);
    assert.match(result.stderr, /error\[request\.invalid\]: No password on standard input/);
  });
});
