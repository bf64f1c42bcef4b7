import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { loadConfig } from '../../src/config/config.js';
import { exitCodes } from '../../src/core/errors.js';
import { createLogger } from '../../src/core/logger.js';
import { openOrthId } from '../../src/main.js';
import { withTenant } from '../../src/storage/db/database.js';
import { BACKUP_LOCK } from '../../src/storage/db/postgres-dump.js';
import { openObjectStore } from '../../src/storage/objects/open-object-store.js';
import { ageKeygen, requireAgeCli } from '../helpers/age-cli.js';
import { CLI_TIMEOUT_MS, cliArgs, cliEnv, runCli } from '../helpers/cli.js';
import { createTestDatabase } from '../helpers/postgres.js';
import { type S3TestServer, startS3Server, TEST_CREDENTIALS } from '../helpers/s3-server.js';

const MASTER = 'backup-cli-test-master-secret-0123456789-abcdef';

/** Runs `orthid ARGS` and SIGKILLs it the moment a step line matching `when` appears on stderr. */
function killWhen(
  args: string[],
  env: Record<string, string>,
  when: RegExp,
): Promise<{ killed: boolean; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, cliArgs(args), {
      env: cliEnv(env),
      stdio: ['ignore', 'ignore', 'pipe'],
      // A step that never comes must not hang the test: killed then, it reports killed: false.
      timeout: CLI_TIMEOUT_MS,
      killSignal: 'SIGKILL',
    });
    let stderr = '';
    let killed = false;
    child.stderr.on('data', (d) => {
      stderr += d;
      if (!killed && when.test(stderr)) {
        killed = child.kill('SIGKILL');
      }
    });
    child.once('error', reject);
    child.once('close', () => resolve({ killed, stderr }));
  });
}

function json<T = Record<string, unknown>>(text: string): T {
  return JSON.parse(text) as T;
}

interface ListOutput {
  sets: { id: string; status: string; time: string }[];
  warnings: string[];
}

describe('orthid backup on real PostgreSQL, run as the CronJob runs it', () => {
  let dir: string;
  let env: Record<string, string>;
  let local: string;
  let localEnv: Record<string, string>;
  let key: ReturnType<typeof ageKeygen>;
  let s3: S3TestServer;
  /** The complete local set the SIGKILL test ends with. */
  let complete: ListOutput['sets'][number];

  before(async () => {
    requireAgeCli();
    dir = mkdtempSync(join(tmpdir(), 'orthid-backup-cli-'));
    key = ageKeygen(dir);
    local = join(dir, 'local-sets');
    s3 = await startS3Server({ prefix: 'sets' });
    const url = await createTestDatabase();
    env = {
      ORTHID_DATA_DIR: join(dir, 'data'),
      ORTHID_DATABASE_URL: url,
      ORTHID_MASTER_KEY: MASTER,
      ORTHID_REGION: s3.region,
      // What the CronJob's secret (orthid-backup-env) holds.
      ORTHID_BACKUP_DEST: s3.url,
      ORTHID_BACKUP_KEYSTORE_DEST: s3.url.replace('/sets?', '/keystore?'),
      ORTHID_BACKUP_AGE_RECIPIENTS: key.recipient,
      AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    };
    localEnv = { ...env, ORTHID_BACKUP_DEST: local, ORTHID_BACKUP_KEYSTORE_DEST: join(dir, 'local-keys') };
    // A deployment with data, set up in-process (faster than three CLI start-ups).
    const app = await openOrthId(loadConfig(env), {
      initKeystore: true,
      migrate: true,
      log: createLogger('silent'),
    });
    const { db, objects } = app;
    for (const slug of ['acme', 'globex']) {
      const tenant = await app.tenants.create({ slug, actor: 'test' });
      await withTenant(db, tenant.id, (tx) =>
        app.users.create(tx, tenant.id, { email: `ann@${slug}.example`, name: 'Ann' }, 'test'),
      );
    }
    await objects.put('media/logo.png', randomBytes(4096), { contentType: 'image/png' });
    await app.close();
  });
  after(async () => {
    await s3.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("the page's CronJob args `dump --encrypt --upload` work from the environment alone, one JSON line per step", async () => {
    const result = await runCli(['dump', '--encrypt', '--upload'], env);
    assert.equal(result.code, 0, result.stderr);
    const steps = result.stderr
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => json<{ step: string; part?: string }>(line))
      .map((line) => (line.part ? `${line.step} ${line.part}` : line.step));
    assert.deepEqual(steps, [
      'backup.started',
      'backup.part.started db.dump.age',
      'backup.part.finished db.dump.age',
      'backup.part.started objects.tar.age',
      'backup.part.finished objects.tar.age',
      'backup.part.started keystore.age',
      'backup.part.finished keystore.age',
      'backup.finished',
    ]);

    const listed = await runCli(['backup', 'list', '--json'], env);
    assert.equal(listed.code, 0, listed.stderr);
    const { sets, warnings } = json<ListOutput>(listed.stdout);
    assert.deepEqual(
      sets.map((s) => s.status),
      ['complete'],
    );
    assert.deepEqual(warnings, ['No restore drill has passed: run orthid backup drill.']);

    const verified = await runCli(['backup', 'verify', 'latest', '--json'], {
      ...env,
      ORTHID_BACKUP_AGE_IDENTITY_FILE: key.file,
    });
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    assert.equal(json(verified.stdout).ok, true);
  });

  test('a dump while another holds the lock exits with backup.locked (exit 5) and writes nothing', async () => {
    const holder = new pg.Client({ connectionString: env.ORTHID_DATABASE_URL });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [BACKUP_LOCK.toString()]);
      const result = await runCli(
        [
          'backup',
          'dump',
          '--encrypt',
          '--dest',
          join(dir, 'locked'),
          '--keystore-dest',
          join(dir, 'locked-keys'),
        ],
        env,
      );
      assert.equal(result.code, exitCodes.conflict);
      assert.match(result.stderr, /error\[backup\.locked\]/);
      assert.deepEqual(readdirSync(join(dir, 'locked')), []);
    } finally {
      await holder.end();
    }
  });

  test('a dump killed with SIGKILL mid-way never leaves a complete set, and the next dump succeeds', async () => {
    // Enough bytes that the objects part is still streaming when the kill lands.
    const objects = await openObjectStore(pathToFileURL(join(dir, 'data', 'objects')).href);
    await objects.put('media/big.bin', randomBytes(32 * 1024 * 1024));
    for (const part of ['db.dump.age', 'objects.tar.age']) {
      const run = await killWhen(
        ['backup', 'dump', '--encrypt'],
        localEnv,
        new RegExp(`"step":"backup.part.started","part":"${part.replace('.', '\\.')}"`),
      );
      assert.equal(run.killed, true, run.stderr);
    }
    await objects.delete('media/big.bin'); // served its purpose; keeps the rest of the file quick
    const next = await runCli(['backup', 'dump', '--encrypt', '--json'], localEnv);
    assert.equal(next.code, 0, next.stderr);
    const { setId } = json<{ setId: string }>(next.stdout);

    const listed = await runCli(['backup', 'list', '--json'], localEnv);
    const { sets } = json<ListOutput>(listed.stdout);
    assert.deepEqual(
      sets.filter((s) => s.status === 'complete').map((s) => s.id),
      [setId],
    );
    complete = sets.find((s) => s.id === setId)!;
    assert.ok(
      sets.some((s) => s.status === 'incomplete'),
      'the set killed during its objects part lists as incomplete',
    );
  });

  test('verify names the part with one flipped byte and exits 1', async () => {
    const set = readdirSync(local, { recursive: true, encoding: 'utf8' }).find(
      (f) =>
        f.endsWith('objects.tar.age') &&
        existsSync(join(local, f.replace('objects.tar.age', 'manifest.json'))),
    )!;
    const file = join(local, set);
    const original = readFileSync(file);
    const damaged = Buffer.from(original);
    damaged[damaged.length - 100]! ^= 0x80;
    writeFileSync(file, damaged);
    try {
      const result = await runCli(['backup', 'verify', 'latest', '--identity', key.file, '--json'], localEnv);
      assert.equal(result.code, exitCodes.checkFailed, result.stderr);
      const report = json<{ ok: boolean; parts: { part: string; ok: boolean; error?: { code: string } }[] }>(
        result.stdout,
      );
      assert.deepEqual(
        report.parts.map((p) => [p.part, p.ok, p.error?.code]),
        [
          ['db.dump.age', true, undefined],
          ['objects.tar.age', false, 'backup.checksum_mismatch'],
          ['keystore.age', true, undefined],
        ],
      );
    } finally {
      writeFileSync(file, original);
    }
  });

  test('prune deletes a year-old set and keeps the newest complete set and the young incomplete one', async () => {
    // A copy of the complete set, as the nightly dump of 1 January a year and a half ago.
    const deployment = complete.id.replace(/-\d{8}T\d{6}Z$/, '');
    const oldId = `${deployment}-20250101T020000Z`;
    const path = [
      complete.time.slice(0, 4),
      complete.time.slice(5, 7),
      complete.time.slice(8, 10),
      complete.id,
    ];
    const to = join(local, '2025', '01', '01', oldId);
    cpSync(join(local, ...path), to, { recursive: true, filter: (src) => !src.includes('.orthid') });
    cpSync(join(dir, 'local-keys', ...path), join(dir, 'local-keys', '2025', '01', '01', oldId), {
      recursive: true,
    });
    const manifest = json(readFileSync(join(to, 'manifest.json'), 'utf8'));
    writeFileSync(
      join(to, 'manifest.json'),
      JSON.stringify({
        ...manifest,
        setId: oldId,
        startedAt: '2025-01-01T02:00:00.000Z',
        finishedAt: '2025-01-01T02:01:00.000Z',
      }),
    );

    const dry = await runCli(['backup', 'prune', '--dry-run', '--json'], localEnv);
    assert.equal(dry.code, 0, dry.stderr);
    const plan = json<{
      deleted: { id: string; reasons: string[] }[];
      kept: { id: string; reasons: string[] }[];
    }>(dry.stdout);
    assert.deepEqual(
      plan.deleted.map((d) => [d.id, d.reasons]),
      [[oldId, ['expired']]],
    );
    assert.ok(plan.kept.some((k) => k.id === complete.id && k.reasons.includes('newest-complete')));
    assert.ok(plan.kept.some((k) => k.reasons.includes('in-progress')));
    assert.equal(existsSync(to), true, 'a dry run deletes nothing');

    const real = await runCli(['backup', 'prune', '--keep-daily', '30', '--keep-weekly', '52'], localEnv);
    assert.equal(real.code, 0, real.stderr);
    assert.match(real.stdout, new RegExp(`deleted\\s+${oldId}`));
    assert.equal(existsSync(join(local, '2025')), false);
    assert.equal(existsSync(join(dir, 'local-keys', '2025')), false);
  });
});
