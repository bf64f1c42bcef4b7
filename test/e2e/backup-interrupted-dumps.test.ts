import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, readdirSync, statSync, utimesSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/core/logger.js';
import { openOrthId } from '../../src/main.js';
import { openObjectStore } from '../../src/storage/objects/open-object-store.js';
import { ageKeygen, requireAgeCli } from '../helpers/age-cli.js';
import { CLI_TIMEOUT_MS, cliArgs, cliEnv, runCli } from '../helpers/cli.js';
import { TEST_MASTER_KEY } from '../helpers/orthid.js';
import { createTestDatabase } from '../helpers/postgres.js';

/** Every temporary file under `dir`, with its size. */
function temporaryFiles(dir: string): { path: string; size: number }[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.split('/').at(-1)!.startsWith('.orthid-tmp-'))
    .map((f) => ({ path: join(dir, f), size: statSync(join(dir, f)).size }));
}

/** As if the file had last been written `minutes` ago. */
function age(path: string, minutes: number): void {
  const then = new Date(Date.now() - minutes * 60_000);
  utimesSync(path, then, then);
}

/**
 * Runs `orthid backup dump` and SIGKILLs it while its objects part is being written: once that
 * part has started and a temporary file under `sets` holds bytes.
 */
async function killDuringObjectsPart(env: Record<string, string>, sets: string): Promise<void> {
  const before = new Set(temporaryFiles(sets).map((f) => f.path));
  const child = spawn(process.execPath, cliArgs(['backup', 'dump', '--encrypt']), {
    env: cliEnv(env),
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: CLI_TIMEOUT_MS,
    killSignal: 'SIGKILL',
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const closed = once(child, 'close');
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`the dump ended before it could be killed mid-part:\n${stderr}`);
    }
    const writing =
      /"step":"backup\.part\.started","part":"objects\.tar\.age"/.test(stderr) &&
      temporaryFiles(sets).some((f) => !before.has(f.path) && f.size > 0);
    if (writing) break;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  child.kill('SIGKILL');
  await closed;
}

const STORE_MODULE = pathToFileURL(
  fileURLToPath(new URL('../../src/storage/objects/open-object-store.ts', import.meta.url)),
).href;

/** A put into `url` that writes one chunk and then waits for more forever: a live, stalled writer. */
async function startStalledWriter(url: string): Promise<ChildProcess> {
  const script = `
    import { PassThrough } from 'node:stream';
    import { openObjectStore } from ${JSON.stringify(STORE_MODULE)};
    const store = await openObjectStore(${JSON.stringify(url)});
    const body = new PassThrough();
    body.write(Buffer.alloc(256 * 1024, 7));
    // Held from a global: nothing else refers to a put whose body never ends.
    globalThis.stalledPut = { body, put: store.put('2020/01/01/live-writer/part.bin', body) };
    setTimeout(() => process.stdout.write('writing\\n'), 500);
    setInterval(() => {}, 60_000);
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  while (!out.includes('writing')) {
    if (child.exitCode !== null) throw new Error('the stalled writer exited');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return child;
}

describe('temporary files of killed dumps', () => {
  let dir: string;
  let sets: string;
  let keys: string;
  let env: Record<string, string>;
  let writer: ChildProcess | undefined;
  let liveTemp: string;

  before(async () => {
    requireAgeCli();
    dir = await mkdtemp(join(tmpdir(), 'orthid-interrupted-'));
    const key = ageKeygen(dir);
    sets = join(dir, 'sets');
    keys = join(dir, 'keys');
    env = {
      ORTHID_DATA_DIR: join(dir, 'data'),
      ORTHID_DATABASE_URL: await createTestDatabase(),
      ORTHID_MASTER_KEY: TEST_MASTER_KEY,
      ORTHID_BACKUP_DEST: pathToFileURL(sets).href,
      ORTHID_BACKUP_KEYSTORE_DEST: pathToFileURL(keys).href,
      ORTHID_BACKUP_AGE_RECIPIENTS: key.recipient,
    };
    const app = await openOrthId(loadConfig(env), {
      initKeystore: true,
      migrate: true,
      log: createLogger('silent'),
    });
    await app.tenants.create({ slug: 'acme', actor: 'test' });
    await app.close();
    // Enough bytes that the objects part is still streaming when the kill lands.
    const objects = await openObjectStore(pathToFileURL(join(dir, 'data', 'objects')).href);
    await objects.put('media/big.bin', randomBytes(32 * 1024 * 1024));
    // Another process writing into the same destination, stalled: its file must survive everything.
    const before = new Set(temporaryFiles(sets).map((f) => f.path));
    writer = await startStalledWriter(pathToFileURL(sets).href);
    liveTemp = temporaryFiles(sets).find((f) => !before.has(f.path))!.path;
    assert.ok(liveTemp, 'the stalled writer has a temporary file');
  });
  after(async () => {
    if (writer && writer.exitCode === null) {
      writer.kill('SIGKILL');
      await once(writer, 'exit');
    }
    await rm(dir, { recursive: true, force: true });
  });

  test('backup list reports them, prune reclaims them, and a live write is never touched', {
    timeout: 600_000,
  }, async () => {
    for (let i = 0; i < 3; i++) await killDuringObjectsPart(env, sets);
    const left = temporaryFiles(sets).filter((f) => f.path !== liveTemp);
    assert.ok(left.length >= 3, `each killed dump left its part: ${JSON.stringify(left)}`);
    // Fresh ones may still belong to a writer that holds no lock: only idle ones count.
    const fresh = await runCli(['backup', 'list', '--json'], env);
    assert.equal(fresh.code, 0, fresh.stderr);
    assert.deepEqual(JSON.parse(fresh.stdout).temporaryFiles, { count: 0, bytes: 0 });

    for (const file of [...left.map((f) => f.path), liveTemp]) age(file, 30);
    const bytes = left.reduce((sum, f) => sum + f.size, 0);
    const listed = await runCli(['backup', 'list', '--json'], env);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(JSON.parse(listed.stdout).temporaryFiles, { count: left.length, bytes });
    const human = await runCli(['backup', 'list'], env);
    assert.match(
      human.stdout,
      new RegExp(
        `^temporary files from interrupted dumps: ${left.length} files, ${(bytes / 1024 / 1024).toFixed(1)} MiB \\(reclaimed by the next dump or \`orthid backup prune\`\\)$`,
        'm',
      ),
    );

    const dry = await runCli(['backup', 'prune', '--dry-run'], env);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, new RegExp(`^Would reclaim ${left.length} temporary file\\(s\\)`, 'm'));
    assert.equal(temporaryFiles(sets).length, left.length + 1, 'a dry run removes nothing');

    const pruned = await runCli(['backup', 'prune'], env);
    assert.equal(pruned.code, 0, pruned.stderr);
    assert.match(pruned.stdout, new RegExp(`^Reclaimed ${left.length} temporary file\\(s\\)`, 'm'));
    assert.deepEqual(
      temporaryFiles(sets).map((f) => f.path),
      [liveTemp],
      'only the live writer keeps its file',
    );
    const after = await runCli(['backup', 'list'], env);
    assert.doesNotMatch(after.stdout, /temporary files/);
  });

  test('the next dump reclaims them too, and completes', { timeout: 600_000 }, async () => {
    await killDuringObjectsPart(env, sets);
    const left = temporaryFiles(sets).filter((f) => f.path !== liveTemp);
    assert.ok(left.length >= 1);
    for (const file of left) age(file.path, 30);
    const next = await runCli(['backup', 'dump', '--encrypt', '--json'], env);
    assert.equal(next.code, 0, next.stderr);
    assert.deepEqual(
      temporaryFiles(sets).map((f) => f.path),
      [liveTemp],
    );
    assert.equal(writer?.exitCode, null, 'the stalled writer is still running');
  });
});
