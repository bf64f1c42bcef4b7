// The keystore and the database belong together on the embedded default (PGlite in the data
// directory), through the real CLI: a start or dump with another deployment's keystore is refused
// before anything is served or written, and a data directory from before the binding is bound by
// its first start.
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { loadConfig } from '../../src/config/config.js';
import { exitCodes } from '../../src/core/errors.js';
import { ManagedKeystore } from '../../src/crypto/managed-keystore.js';
import { resolveMasterSecret } from '../../src/crypto/master-secret.js';
import { openPglite } from '../../src/storage/db/pglite-driver.js';
import { ageKeygen, requireAgeCli } from '../helpers/age-cli.js';
import { type CliResult, runCli } from '../helpers/cli.js';
import { freePort } from '../helpers/postgres.js';
import { preBindingDeployment } from '../helpers/pre-binding.js';
import { startServer } from '../helpers/server-process.js';

const MASTER = 'embedded-binding-test-master-secret-0123456789';
/** A first embedded start creates and migrates PGlite: on a loaded shared machine it can take a minute. */
const START_TIMEOUT_MS = 180_000;

async function recordedIds(dataDir: string): Promise<string[]> {
  const db = await openPglite(join(dataDir, 'pgdata'));
  try {
    const { rows } = await db.ownerTransaction((tx) =>
      tx.query<{ id: string }>('SELECT id::text AS id FROM deployment'),
    );
    return rows.map((r) => r.id);
  } finally {
    await db.close();
  }
}

async function keystoreId(dataDir: string): Promise<string> {
  const config = loadConfig({ ORTHID_DATA_DIR: dataDir });
  const master = await resolveMasterSecret(config.masterKey);
  return (await ManagedKeystore.open(config.keystorePath, master.value)).deploymentId;
}

describe('the embedded default binds its database to its keystore', { timeout: 600_000 }, () => {
  let dir: string;
  let x: string;
  let y: string;
  let key: ReturnType<typeof ageKeygen>;
  /** X's data directory (its PGlite database), Y's keystore and master secret. */
  let mixed: Record<string, string>;

  before(async () => {
    requireAgeCli();
    dir = await mkdtemp(join(tmpdir(), 'orthid-binding-embedded-'));
    key = ageKeygen(dir);
    x = join(dir, 'x');
    y = join(dir, 'y');
    for (const dataDir of [x, y]) {
      const server = await startServer({ ORTHID_DATA_DIR: dataDir }, START_TIMEOUT_MS);
      await server.stop();
    }
    mixed = {
      ORTHID_DATA_DIR: x,
      ORTHID_KEYSTORE: pathToFileURL(join(y, 'keystore')).href,
      ORTHID_MASTER_KEY_FILE: join(y, 'master.key'),
      ORTHID_BACKUP_AGE_RECIPIENTS: key.recipient,
    };
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("the first start recorded each keystore's deployment id in its database", async () => {
    assert.deepEqual(await recordedIds(x), [await keystoreId(x)]);
    assert.deepEqual(await recordedIds(y), [await keystoreId(y)]);
    assert.notEqual(await keystoreId(x), await keystoreId(y));
  });

  test("orthid start with another deployment's keystore exits with keystore.deployment_mismatch and never answers", async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const answers: number[] = [];
    let done = false;
    const run = runCli(['start'], { ...mixed, ORTHID_PORT: String(port), ORTHID_PUBLIC_URL: url }).finally(
      () => {
        done = true;
      },
    );
    while (!done) {
      try {
        answers.push((await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2_000) })).status);
      } catch {
        // nothing listening: what a refused start must leave
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    const result: CliResult = await run;
    assert.equal(result.code, exitCodes.conflict, result.stderr);
    assert.match(result.stderr, /error\[keystore\.deployment_mismatch\]/);
    assert.deepEqual(answers, []);
    assert.deepEqual(await recordedIds(x), [await keystoreId(x)]);
  });

  test("backup dump with another deployment's keystore is refused and writes no set", async () => {
    const dumped = await runCli(['backup', 'dump', '--encrypt'], mixed);
    assert.equal(dumped.code, exitCodes.conflict, dumped.stderr);
    assert.match(dumped.stderr, /error\[keystore\.deployment_mismatch\][^\n]*Nothing was written\./);
    const sets = join(x, 'backups');
    assert.deepEqual(existsSync(sets) ? readdirSync(sets) : [], []);
  });

  test('a data directory from before the binding is bound by its first start, which serves its tenants', async () => {
    const old = join(dir, 'old');
    const env = { ORTHID_DATA_DIR: old, ORTHID_MASTER_KEY: MASTER };
    const id = await preBindingDeployment(await openPglite(join(old, 'pgdata')), loadConfig(env), MASTER);
    assert.deepEqual(await recordedIds(old), []);
    const server = await startServer(env, START_TIMEOUT_MS);
    try {
      const discovery = await fetch(`${server.url}/t/acme/.well-known/openid-configuration`);
      assert.equal(discovery.status, 200);
    } finally {
      await server.stop();
    }
    assert.deepEqual(await recordedIds(old), [id]);
    const tail = await runCli(['audit', 'tail', '--tenant', 'system', '--json'], env);
    assert.equal(tail.code, 0, tail.stderr);
    assert.ok(
      (JSON.parse(tail.stdout) as { action: string; target: string }[]).some(
        (e) => e.action === 'deployment.bound' && e.target === `deployment:${id}`,
      ),
      tail.stdout,
    );
  });
});
