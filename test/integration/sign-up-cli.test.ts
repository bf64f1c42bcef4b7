// The sign-up settings and invitations from the command line, on real PostgreSQL: `orthid tenant
// configure --sign-up/--sign-up-domains` checks and prints them, and `orthid user invite` queues
// the invitation mail (held in the queue: no relay is configured) and refuses what it cannot invite.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { exitCodes } from '../../src/core/errors.js';
import { runCli } from '../helpers/cli.js';
import { createTestDatabase } from '../helpers/postgres.js';

const MASTER = 'sign-up-cli-master-secret-0123456789-abcdefgh';

describe('orthid tenant configure --sign-up and orthid user invite on real PostgreSQL', () => {
  let dir: string;
  let env: Record<string, string>;
  let url: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'orthid-sign-up-cli-'));
    url = await createTestDatabase();
    env = { ORTHID_DATA_DIR: dir, ORTHID_DATABASE_URL: url, ORTHID_MASTER_KEY: MASTER };
    assert.equal((await runCli(['keystore', 'init'], env)).code, 0);
    assert.equal((await runCli(['migrate'], env)).code, 0);
    assert.equal((await runCli(['tenant', 'create', 'archive'], env)).code, 0);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('sign-up is off by default; the flags turn it on for the domains named, and bad values exit 2', async () => {
    const shown = await runCli(['tenant', 'configure', 'archive', '--json'], env);
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal(JSON.parse(shown.stdout).signUp, 'off');
    const set = await runCli(
      ['tenant', 'configure', 'archive', '--sign-up', 'on', '--sign-up-domains', 'Archive.test, example.org'],
      env,
    );
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /sign-up on for archive\.test, example\.org\./);
    for (const bad of [
      ['--sign-up', 'maybe'],
      ['--sign-up-domains', 'not a domain'],
    ]) {
      const refused = await runCli(['tenant', 'configure', 'archive', ...bad], env);
      assert.equal(refused.code, exitCodes.invalid, refused.stderr);
    }
    const cleared = await runCli(['tenant', 'configure', 'archive', '--sign-up-domains', '', '--json'], env);
    assert.deepEqual(JSON.parse(cleared.stdout).signUpDomains, []);
  });

  test('user invite queues one invitation mail and prints no link; an unknown organisation exits 4', async () => {
    const invited = await runCli(
      ['user', 'invite', '--tenant', 'archive', '--email', 'iris@archive.test', '--json'],
      env,
    );
    assert.equal(invited.code, 0, invited.stderr);
    const out = JSON.parse(invited.stdout);
    assert.match(out.id, /^[0-9a-f-]{36}$/);
    assert.equal(out.organisationId, null);
    assert.doesNotMatch(invited.stdout + invited.stderr, /token=|iris@archive\.test/);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const { rows } = await client.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM mail_queue WHERE template = 'invitation'",
      );
      assert.equal(rows[0]!.n, 1);
    } finally {
      await client.end();
    }
    const unknown = await runCli(
      ['user', 'invite', '--tenant', 'archive', '--email', 'jo@archive.test', '--organisation', 'Nowhere'],
      env,
    );
    assert.equal(unknown.code, exitCodes.not_found, unknown.stderr);
  });
  test('user invitations lists what was invited; user uninvite revokes it once, and refuses what is no invitation', async () => {
    const invited = await runCli(
      ['user', 'invite', '--tenant', 'archive', '--email', 'kim@archive.test', '--json'],
      env,
    );
    assert.equal(invited.code, 0, invited.stderr);
    const id = JSON.parse(invited.stdout).id as string;
    const listed = await runCli(['user', 'invitations', '--tenant', 'archive', '--json'], env);
    assert.equal(listed.code, 0, listed.stderr);
    const entry = (
      JSON.parse(listed.stdout).items as { id: string; email: string; status: string; createdBy: string }[]
    ).find((i) => i.id === id);
    assert.equal(entry?.email, 'kim@archive.test');
    assert.equal(entry?.status, 'pending');
    assert.equal(entry?.createdBy, 'cli');
    const text = await runCli(['user', 'invitations', '--tenant', 'archive'], env);
    assert.match(text.stdout, new RegExp(`${id}\\s+pending\\s+kim@archive\\.test`));

    const revoked = await runCli(['user', 'uninvite', '--tenant', 'archive', '--id', id], env);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.match(revoked.stdout, /revoked; its link no longer works/);
    const after = await runCli(['user', 'invitations', '--tenant', 'archive', '--json'], env);
    assert.equal(
      (JSON.parse(after.stdout).items as { id: string; status: string }[]).find((i) => i.id === id)?.status,
      'revoked',
    );
    for (const [args, code] of [
      [
        ['user', 'uninvite', '--tenant', 'archive', '--id', '0190aaaa-0000-7000-8000-000000000000'],
        exitCodes.not_found,
      ],
      [['user', 'uninvite', '--tenant', 'archive', '--id', 'nothing'], exitCodes.not_found],
      [['user', 'invitations', '--tenant', 'archive', '--limit', 'many'], exitCodes.invalid],
      [['user', 'invitations', '--tenant', 'archive', '--after', 'nowhere'], exitCodes.invalid],
    ] as const) {
      const refused = await runCli([...args], env);
      assert.equal(refused.code, code, `${args.join(' ')}: ${refused.stderr}`);
    }
  });
});
