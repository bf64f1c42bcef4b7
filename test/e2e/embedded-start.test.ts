import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { callControlSocket } from '../../src/cli/control-client.js';
import { ERROR_CODES, exitCodes, isOrthIdError } from '../../src/core/errors.js';
import { adminTokenFrom, readBootstrapCredentials } from '../helpers/bootstrap-credentials.js';
import { runCli } from '../helpers/cli.js';
import { type ServerProcess, startServer } from '../helpers/server-process.js';

describe('orthid start on the embedded defaults', () => {
  let dir: string;
  let server: ServerProcess;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'orthid-embedded-'));
    server = await startServer({ ORTHID_DATA_DIR: dir });
  });
  after(async () => {
    if (server.child.exitCode === null) await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('creates its data directory with a generated master secret only its owner can read', async () => {
    assert.equal((await stat(join(dir, 'master.key'))).mode & 0o777, 0o600);
    assert.equal((await stat(join(dir, 'keystore'))).mode & 0o777, 0o600);
    assert.match(server.output(), /Generated a master secret/);
    assert.match(server.output(), new RegExp(`OrthID is running at ${server.url}`));
  });

  test('reports ready with every check passing', async () => {
    const response = await fetch(`${server.url}/readyz`);
    assert.equal(response.status, 200);
    const body = (await response.json()) as { checks: unknown };
    assert.deepEqual(body.checks, {
      database: { ok: true },
      migrations: { ok: true },
      keystore: { ok: true },
    });
  });

  test('answers unknown routes with problem+json', async () => {
    const response = await fetch(`${server.url}/nope`);
    assert.equal(response.status, 404);
    assert.equal(response.headers.get('content-type'), 'application/problem+json; charset=utf-8');
    assert.equal(((await response.json()) as { code: string }).code, 'request.not_found');
  });

  test('the CLI creates a tenant through the running server while it holds the database', async () => {
    const created = await runCli(['tenant', 'create', 'acme', '--json'], {
      ORTHID_DATA_DIR: dir,
      ORTHID_PUBLIC_URL: server.url,
    });
    assert.equal(created.code, 0, created.stderr);
    const tenant = JSON.parse(created.stdout);
    assert.equal(tenant.issuer, `${server.url}/t/acme`);
    const verified = await runCli(['audit', 'verify', '--tenant', 'acme', '--json'], {
      ORTHID_DATA_DIR: dir,
    });
    // tenant.created, and client.created for each client that comes with it: the account pages'
    // and the admin console's.
    assert.equal(JSON.parse(verified.stdout).events, 3);
  });

  test('a refusal through the running server keeps its code and exit code, as when the CLI runs alone', async () => {
    // Refusals only: the tenants the shutdown test lists stay as they are.
    const env = { ORTHID_DATA_DIR: dir, ORTHID_PUBLIC_URL: server.url };
    const taken = await runCli(['tenant', 'create', 'system'], env);
    assert.match(taken.stderr, /^error\[tenant\.slug_taken\]/);
    assert.equal(taken.code, exitCodes[ERROR_CODES['tenant.slug_taken']]);
    const invalid = await runCli(['audit', 'tail', '--tenant', 'system', '--limit', '0'], env);
    assert.match(
      invalid.stderr,
      /^error\[request\.invalid\]: --limit must be a whole number from 1 to 1000\./,
    );
    assert.equal(invalid.code, exitCodes.invalid);
    // The socket itself answers problem details, which the client turns back into the same error.
    await assert.rejects(callControlSocket(join(dir, 'control.sock'), 'tenant.nope', {}), (e: unknown) =>
      isOrthIdError(e, 'control.unknown_operation'),
    );
    await assert.rejects(
      callControlSocket(join(dir, 'control.sock'), 'tenant.create', { slug: 5 }),
      (e: unknown) => isOrthIdError(e, 'request.invalid') && e.details?.field === 'slug',
    );
  });

  test('bootstraps an admin client whose token manages tenants through the admin API', async () => {
    const file = join(dir, 'admin-credentials.json');
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const credentials = await readBootstrapCredentials(file);
    assert.equal(
      server.output().includes(credentials.client_secret),
      false,
      'the secret must not be printed',
    );
    const access_token = await adminTokenFrom(credentials);
    const users = await fetch(`${server.url}/api/v1/tenants/acme/users`, {
      headers: { authorization: `Bearer ${access_token}` },
    });
    assert.equal(users.status, 200, await users.clone().text());
    assert.deepEqual(((await users.json()) as { items: unknown[] }).items, []);
  });

  test('SIGTERM shuts down cleanly and releases the data directory', async () => {
    assert.equal(await server.stop(), 0);
    assert.equal(existsSync(join(dir, 'pgdata.lock')), false);
    assert.equal(existsSync(join(dir, 'control.sock')), false);
    const list = await runCli(['tenant', 'list', '--json'], { ORTHID_DATA_DIR: dir });
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(
      JSON.parse(list.stdout).map((t: { slug: string }) => t.slug),
      ['acme', 'system'],
    );
  });
});
