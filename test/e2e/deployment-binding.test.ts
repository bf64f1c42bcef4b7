// The keystore and the database belong together, on real PostgreSQL through the real CLI: another
// deployment's keystore (or an older copy of this one's) is refused at start, by tenant create, by
// migrate, by backup dump and by restore, before anything is served or written; and a database
// migrated before the binding existed is bound by its first migrate, audited at the next start.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import type { Manifest } from '../../src/backup/manifest.js';
import { listBackupSets } from '../../src/backup/sets.js';
import { loadConfig } from '../../src/config/config.js';
import { exitCodes } from '../../src/core/errors.js';
import { ManagedKeystore } from '../../src/crypto/managed-keystore.js';
import { openPostgres } from '../../src/storage/db/postgres-driver.js';
import { openObjectStore } from '../../src/storage/objects/open-object-store.js';
import { ageKeygen, requireAgeCli } from '../helpers/age-cli.js';
import { type CliResult, runCli } from '../helpers/cli.js';
import { backupDeploymentEnv, initDeployment } from '../helpers/deployment.js';
import { createTestDatabase, freePort, query, rowCounts } from '../helpers/postgres.js';
import { preBindingDeployment } from '../helpers/pre-binding.js';
import { startServer } from '../helpers/server-process.js';

const MASTER_A = 'binding-test-master-secret-of-deployment-a-0123';
const MASTER_B = 'binding-test-master-secret-of-deployment-b-4567';

function assertRefused(result: CliResult, code: string, exit: number): void {
  assert.equal(result.code, exit, `${result.stderr}${result.stdout}`);
  assert.match(result.stderr, new RegExp(`error\\[${code.replaceAll('.', '\\.')}\\]`), result.stderr);
}

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * `orthid start` run to its end while /readyz is asked every 50 ms: every answer it gave (there
 * must be none for a refused start) and how the process ended.
 */
async function startUntilExit(
  env: Record<string, string>,
): Promise<{ result: CliResult; answers: number[] }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const answers: number[] = [];
  let done = false;
  const run = runCli(['start'], { ...env, ORTHID_PORT: String(port), ORTHID_PUBLIC_URL: url }).finally(() => {
    done = true;
  });
  while (!done) {
    try {
      answers.push((await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2_000) })).status);
    } catch {
      // nothing listening: what a refused start must leave
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { result: await run, answers };
}

describe("another deployment's keystore is refused before anything is served or written", {
  timeout: 600_000,
}, () => {
  let dir: string;
  let urlA: string;
  let envA: Record<string, string>;
  /** Deployment A's database and data directory, deployment B's keystore and master secret. */
  let mixed: Record<string, string>;
  let keystoreB: string;
  let idA: string;
  let idB: string;
  /** A copy of A's keystore taken before the tenant beta (and its root key) existed. */
  let staleKeystoreA: string;
  let key: ReturnType<typeof ageKeygen>;

  before(async () => {
    requireAgeCli();
    dir = await mkdtemp(join(tmpdir(), 'orthid-binding-'));
    key = ageKeygen(dir);
    urlA = await createTestDatabase('orthid_bound_a');
    const urlB = await createTestDatabase('orthid_bound_b');
    envA = backupDeploymentEnv(join(dir, 'a'), urlA, MASTER_A, key);
    const envB = backupDeploymentEnv(join(dir, 'b'), urlB, MASTER_B, key);
    await initDeployment(envA);
    await initDeployment(envB);
    keystoreB = join(envB.ORTHID_DATA_DIR!, 'keystore');
    idA = (await ManagedKeystore.open(join(envA.ORTHID_DATA_DIR!, 'keystore'), MASTER_A)).deploymentId;
    idB = (await ManagedKeystore.open(keystoreB, MASTER_B)).deploymentId;
    assert.notEqual(idA, idB);
    mixed = { ...envA, ORTHID_KEYSTORE: pathToFileURL(keystoreB).href, ORTHID_MASTER_KEY: MASTER_B };
    // The system tenant and the canary, then a tenant, then an older keystore copy and a second tenant.
    const server = await startServer(envA);
    await server.stop();
    for (const slug of ['alpha']) assert.equal((await runCli(['tenant', 'create', slug], envA)).code, 0);
    staleKeystoreA = join(dir, 'keystore-before-beta');
    copyFileSync(join(envA.ORTHID_DATA_DIR!, 'keystore'), staleKeystoreA);
    const beta = await runCli(['tenant', 'create', 'beta'], envA);
    assert.equal(beta.code, 0, beta.stderr);
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('migrate recorded the keystore’s deployment id in each database, and the first start audited it', async () => {
    assert.deepEqual(await query(urlA, 'SELECT id::text AS id FROM deployment'), [{ id: idA }]);
    const tail = await runCli(['audit', 'tail', '--tenant', 'system', '--limit', '200', '--json'], envA);
    assert.equal(tail.code, 0, tail.stderr);
    const bound = (JSON.parse(tail.stdout) as { action: string; target: string }[]).filter(
      (e) => e.action === 'deployment.bound',
    );
    assert.deepEqual(
      bound.map((e) => e.target),
      [`deployment:${idA}`],
    );
  });

  test('orthid start with it exits with keystore.deployment_mismatch naming both ids, and /readyz never answers', async () => {
    const { result, answers } = await startUntilExit(mixed);
    assertRefused(result, 'keystore.deployment_mismatch', exitCodes.conflict);
    assert.ok(result.stderr.includes(idA) && result.stderr.includes(idB), result.stderr);
    assert.match(result.stderr, /Nothing was served or changed\./);
    assert.deepEqual(answers, []);
  });

  test('tenant create with it is refused: no tenant, and no root key added to that keystore', async () => {
    const before = readFileSync(keystoreB);
    const created = await runCli(['tenant', 'create', 'globex', '--json'], mixed);
    assertRefused(created, 'keystore.deployment_mismatch', exitCodes.conflict);
    assert.deepEqual(await query(urlA, `SELECT slug FROM tenants WHERE slug = 'globex'`), []);
    assert.deepEqual(readFileSync(keystoreB), before);
  });

  test('migrate with it is refused before anything is applied or bound', async () => {
    const migrations = await query(urlA, 'SELECT version FROM orthid_migrations ORDER BY 1');
    const migrated = await runCli(['migrate', '--json'], mixed);
    assertRefused(migrated, 'keystore.deployment_mismatch', exitCodes.conflict);
    assert.deepEqual(await query(urlA, 'SELECT version FROM orthid_migrations ORDER BY 1'), migrations);
    assert.deepEqual(await query(urlA, 'SELECT id::text AS id FROM deployment'), [{ id: idA }]);
  });

  test('backup dump with it is refused before a byte is written: no set, complete or not', async () => {
    const dumped = await runCli(['backup', 'dump', '--encrypt', '--json'], mixed);
    assertRefused(dumped, 'keystore.deployment_mismatch', exitCodes.conflict);
    assert.match(dumped.stderr, /Nothing was written\./);
    const listed = await runCli(['backup', 'list', '--json'], envA);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(JSON.parse(listed.stdout).sets, []);
    for (const d of ['sets', 'keys']) {
      const path = join(dir, 'a', d);
      assert.deepEqual(existsSync(path) ? readdirSync(path) : [], [], `${d} holds nothing`);
    }
  });

  test('backup dump with an older copy of the keystore, lacking a root key the database names, is refused before a byte is written: no set, complete or not', async () => {
    const dumped = await runCli(['backup', 'dump', '--encrypt', '--json'], {
      ...envA,
      ORTHID_KEYSTORE: pathToFileURL(staleKeystoreA).href,
    });
    assertRefused(dumped, 'backup.keystore_mismatch', exitCodes.conflict);
    assert.match(
      dumped.stderr,
      /lacks root key\(s\) [^:]+ that wrap the database's tenant keys[^\n]*Nothing was written\./,
    );
    const listed = await runCli(['backup', 'list', '--json'], envA);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(JSON.parse(listed.stdout).sets, []);
  });

  describe('restore refuses a set whose keystore part does not belong with its database part', () => {
    let setId: string;
    let manifest: Manifest;

    before(async () => {
      const dumped = await runCli(['backup', 'dump', '--encrypt', '--json'], envA);
      assert.equal(dumped.code, 0, dumped.stderr);
      manifest = JSON.parse(dumped.stdout) as Manifest;
      setId = manifest.setId;
    });

    test("a complete set records the database's deployment, and verify passes", async () => {
      assert.equal(manifest.database.deploymentId, idA);
      const verified = await runCli(['backup', 'verify', setId, '--json'], envA);
      assert.equal(verified.code, 0, verified.stderr + verified.stdout);
    });

    /**
     * Replaces the set's keystore part with an export of `keystore` and rewrites the manifest to
     * match it, as a set written before these checks could be; restores the originals afterwards.
     */
    const withKeystorePart = async (
      keystore: { url: string; master: string },
      fn: () => Promise<void>,
    ): Promise<void> => {
      const exportFile = join(dir, `export-${Date.now()}.age`);
      const exported = await runCli(['keystore', 'export', '-r', key.recipient, '-o', exportFile], {
        ...envA,
        ORTHID_KEYSTORE: keystore.url,
        ORTHID_MASTER_KEY: keystore.master,
      });
      assert.equal(exported.code, 0, exported.stderr);
      const sets = await openObjectStore(envA.ORTHID_BACKUP_DEST!);
      const keys = await openObjectStore(envA.ORTHID_BACKUP_KEYSTORE_DEST!);
      const set = (await listBackupSets(sets, keys)).find((s) => s.id === setId);
      assert.ok(set?.manifest);
      const part = set.manifest.parts.find((p) => p.kind === 'keystore')!;
      const manifestKey = `${set.path}/manifest.json`;
      const [originalPart, originalManifest] = [
        await readAll((await keys.get(part.key)).body),
        await readAll((await sets.get(manifestKey)).body),
      ];
      const replacement = readFileSync(exportFile);
      const forged: Manifest = {
        ...set.manifest,
        parts: set.manifest.parts.map((p) =>
          p === part
            ? {
                ...p,
                size: replacement.length,
                sha256: createHash('sha256').update(replacement).digest('hex'),
              }
            : p,
        ),
      };
      await keys.put(part.key, Readable.from([replacement]));
      await sets.put(manifestKey, Readable.from([Buffer.from(JSON.stringify(forged))]));
      try {
        await fn();
      } finally {
        await keys.put(part.key, Readable.from([originalPart]));
        await sets.put(manifestKey, Readable.from([originalManifest]));
      }
    };

    const restoreInto = async (
      name: string,
    ): Promise<{ result: CliResult; url: string; dataDir: string }> => {
      const url = await createTestDatabase(name);
      const dataDir = join(dir, name);
      // A host provisioned for the restore: its own data directory, database and object store.
      const result = await runCli(['backup', 'restore', setId, '--into-live-stores', '--json'], {
        ...envA,
        ORTHID_DATA_DIR: dataDir,
        ORTHID_DATABASE_URL: url,
        ORTHID_MASTER_KEY: `${MASTER_A}-${name}`,
      });
      return { result, url, dataDir };
    };

    test('a keystore part lacking a root key its database names is refused with backup.keystore_mismatch, the target untouched', async () => {
      await withKeystorePart({ url: pathToFileURL(staleKeystoreA).href, master: MASTER_A }, async () => {
        const { result, url, dataDir } = await restoreInto('orthid_bound_stale');
        assertRefused(result, 'backup.keystore_mismatch', exitCodes.conflict);
        assert.match(result.stderr, /The keystore lacks root key\(s\) \S+/);
        assert.deepEqual(await rowCounts(url), {});
        assert.equal(existsSync(join(dataDir, 'keystore')), false);
      });
    });

    test('a keystore part of another deployment is refused with keystore.deployment_mismatch, the target untouched', async () => {
      await withKeystorePart({ url: pathToFileURL(keystoreB).href, master: MASTER_B }, async () => {
        const { result, url, dataDir } = await restoreInto('orthid_bound_other');
        assertRefused(result, 'keystore.deployment_mismatch', exitCodes.conflict);
        assert.match(result.stderr, /Nothing was restored\./);
        assert.deepEqual(await rowCounts(url), {});
        assert.equal(existsSync(join(dataDir, 'keystore')), false);
        const verified = await runCli(['backup', 'verify', setId, '--json'], envA);
        assert.equal(verified.code, exitCodes.checkFailed, verified.stderr + verified.stdout);
        assert.ok(
          (JSON.parse(verified.stdout).parts as { error?: { code: string } }[]).some(
            (p) => p.error?.code === 'keystore.deployment_mismatch',
          ),
          verified.stdout,
        );
      });
    });
  });
});

describe('a deployment migrated before the binding existed upgrades cleanly', { timeout: 400_000 }, () => {
  let dir: string;
  let url: string;
  let env: Record<string, string>;
  let deploymentId: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'orthid-binding-upgrade-'));
    url = await createTestDatabase('orthid_pre_binding');
    env = {
      ORTHID_DATA_DIR: join(dir, 'data'),
      ORTHID_DATABASE_URL: url,
      ORTHID_MASTER_KEY: MASTER_A,
      ORTHID_LOG_LEVEL: 'silent',
    };
    // The database as the previous release left it: no deployment id recorded.
    deploymentId = await preBindingDeployment(await openPostgres(url), loadConfig(env), MASTER_A);
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('start refuses the old schema; migrate refuses a keystore that is not its own, then applies 0009 and records its keystore’s id; start then serves and audits the binding once', async () => {
    const early = await runCli(['start'], env);
    assertRefused(early, 'db.migrations_pending', exitCodes.unavailable);
    assert.deepEqual(await query(url, 'SELECT id FROM deployment'), []);

    // A keystore that is not this deployment's (here a new one) is not bound to it, nor anything applied.
    const other = join(dir, 'other-keystore');
    await ManagedKeystore.init(other, MASTER_B);
    const wrong = await runCli(['migrate', '--json'], {
      ...env,
      ORTHID_KEYSTORE: pathToFileURL(other).href,
      ORTHID_MASTER_KEY: MASTER_B,
    });
    assertRefused(wrong, 'keystore.deployment_mismatch', exitCodes.conflict);
    assert.match(wrong.stderr, /records no deployment yet[^\n]*Nothing was changed\./);
    assert.deepEqual(await query(url, 'SELECT id FROM deployment'), []);
    assert.deepEqual(await query(url, `SELECT version FROM orthid_migrations WHERE version = 9`), []);

    const migrated = await runCli(['migrate', '--json'], env);
    assert.equal(migrated.code, 0, migrated.stderr);
    const report = JSON.parse(migrated.stdout) as { applied: number[]; deploymentRecorded?: string };
    assert.ok(report.applied.includes(9), migrated.stdout);
    assert.equal(report.deploymentRecorded, deploymentId);
    assert.deepEqual(await query(url, 'SELECT id::text AS id FROM deployment'), [{ id: deploymentId }]);
    const again = await runCli(['migrate', '--json'], env);
    assert.deepEqual(JSON.parse(again.stdout), { applied: [], repaired: [] });

    for (let run = 0; run < 2; run++) {
      const server = await startServer(env);
      const discovery = await fetch(`${server.url}/t/acme/.well-known/openid-configuration`);
      assert.equal(discovery.status, 200);
      await server.stop();
    }
    const tail = await runCli(['audit', 'tail', '--tenant', 'system', '--limit', '200', '--json'], env);
    assert.equal(tail.code, 0, tail.stderr);
    const bound = (JSON.parse(tail.stdout) as { action: string; target: string; details: unknown }[]).filter(
      (e) => e.action === 'deployment.bound',
    );
    assert.equal(bound.length, 1, tail.stdout);
    assert.equal(bound[0]!.target, `deployment:${deploymentId}`);
  });

  test('the application role reads the deployment id and cannot write it; nobody rewrites it', async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query('BEGIN');
      await client.query('SET LOCAL ROLE orthid_app');
      assert.deepEqual((await client.query('SELECT id::text AS id FROM deployment')).rows, [
        { id: deploymentId },
      ]);
      await assert.rejects(client.query(`UPDATE deployment SET created_at = now()`), { code: '42501' });
      await client.query('ROLLBACK');
      for (const statement of [
        `UPDATE deployment SET id = gen_random_uuid()`,
        'DELETE FROM deployment',
        'TRUNCATE deployment',
      ]) {
        await assert.rejects(client.query(statement), /recorded once and never changed/, statement);
      }
      await client.query('BEGIN');
      await client.query('SET LOCAL ROLE orthid_app');
      await assert.rejects(
        client.query(`INSERT INTO deployment (id, singleton) VALUES (gen_random_uuid(), true)`),
        { code: '42501' },
      );
      await client.query('ROLLBACK');
    } finally {
      await client.end();
    }
    assert.deepEqual(await query(url, 'SELECT id::text AS id FROM deployment'), [{ id: deploymentId }]);
  });
});
