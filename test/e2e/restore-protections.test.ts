// The restore's own guards, each with a case that only that guard stops: a part replaced by another
// valid object (the object store's checksum agrees with it, only the manifest does not), and a
// keystore export older than the data, lacking a root key the database names. And the restore's
// client tools never get the target's password on their command line.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { listBackupSets } from '../../src/backup/sets.js';
import { exitCodes } from '../../src/core/errors.js';
import { openObjectStore } from '../../src/storage/objects/open-object-store.js';
import { ageKeygen, requireAgeCli } from '../helpers/age-cli.js';
import { runCli } from '../helpers/cli.js';
import { backupDeploymentEnv, initDeployment } from '../helpers/deployment.js';
import { createTestDatabase, postgresBinDir, query, rowCounts, startCluster } from '../helpers/postgres.js';
import { startServer } from '../helpers/server-process.js';

const MASTER = 'restore-protections-master-secret-0123456789';

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('restore protections that nothing else masks', { timeout: 240_000 }, () => {
  let dir: string;
  let env: Record<string, string>;
  let sourceUrl: string;
  /** Taken before the tenant beta existed: it lacks beta's root key. */
  let oldKeystore: string;
  let older: string;
  let newer: string;

  const dumpSet = async (): Promise<string> => {
    const dumped = await runCli(['backup', 'dump', '--encrypt', '--json'], env);
    assert.equal(dumped.code, 0, dumped.stderr);
    return JSON.parse(dumped.stdout).setId as string;
  };

  const scratchDatabases = (prefix: string) =>
    query<{ datname: string }>(
      sourceUrl,
      `SELECT datname FROM pg_database WHERE datname LIKE $1 ORDER BY 1`,
      [`${prefix}%`],
    );

  before(async () => {
    requireAgeCli();
    dir = await mkdtemp(join(tmpdir(), 'orthid-protections-'));
    const key = ageKeygen(dir);
    sourceUrl = await createTestDatabase('orthid_guarded');
    env = backupDeploymentEnv(dir, sourceUrl, MASTER, key);
    await initDeployment(env);
    // Once, for the system tenant and the canary a restore's checks sign in with.
    const server = await startServer(env);
    await server.stop();
    const alpha = await runCli(['tenant', 'create', 'alpha'], env);
    assert.equal(alpha.code, 0, alpha.stderr);
    oldKeystore = join(dir, 'before-beta.age');
    const exported = await runCli(['keystore', 'export', '-r', key.recipient, '-o', oldKeystore], env);
    assert.equal(exported.code, 0, exported.stderr);
    older = await dumpSet();
    const beta = await runCli(['tenant', 'create', 'beta'], env);
    assert.equal(beta.code, 0, beta.stderr);
    newer = await dumpSet();
    assert.notEqual(older, newer);
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("a part swapped for another set's valid part fails verify and restore with backup.checksum_mismatch, target untouched", async () => {
    const dest = await openObjectStore(env.ORTHID_BACKUP_DEST!);
    const sets = await listBackupSets(dest);
    const partOf = (id: string) => {
      const set = sets.find((s) => s.id === id);
      const part = set?.manifest?.parts.find((p) => p.kind === 'database');
      assert.ok(part, `set ${id} has a database part`);
      return part;
    };
    const [from, into] = [partOf(older), partOf(newer)];
    const original = await readAll((await dest.get(into.key)).body);
    const replacement = await readAll((await dest.get(from.key)).body);
    assert.notDeepEqual(replacement, original);
    // Through the store, so its own checksum describes the replacement: only the manifest disagrees.
    await dest.put(into.key, Readable.from([replacement]));
    assert.deepEqual(await readAll((await dest.get(into.key)).body), replacement);
    try {
      const verified = await runCli(['backup', 'verify', newer, '--json'], env);
      assert.equal(verified.code, exitCodes.checkFailed, verified.stderr + verified.stdout);
      const report = JSON.parse(verified.stdout);
      assert.equal(report.ok, false);
      const failing = report.parts.filter((p: { ok: boolean }) => !p.ok);
      assert.deepEqual(
        failing.map((p: { part: string; error?: { code: string } }) => [p.part, p.error?.code]),
        [[into.name, 'backup.checksum_mismatch']],
      );

      const targetUrl = await createTestDatabase('orthid_swapped');
      const restored = await runCli(['backup', 'restore', newer, '--json', '--into-live-stores'], {
        ...env,
        ORTHID_DATA_DIR: join(dir, 'swapped'),
        ORTHID_DATABASE_URL: targetUrl,
        ORTHID_MASTER_KEY: `${MASTER}-swapped`,
      });
      assert.notEqual(restored.code, exitCodes.ok, restored.stdout);
      assert.match(
        restored.stderr,
        new RegExp(
          `error\\[backup\\.checksum_mismatch\\]: The part ${into.name.replaceAll('.', '\\.')} does not match the manifest`,
        ),
      );
      assert.deepEqual(await rowCounts(targetUrl), {});
      assert.deepEqual(await scratchDatabases('orthid_swapped_restore_'), []);
    } finally {
      await dest.put(into.key, Readable.from([original]));
    }
  });

  describe('a restore writes only where it was told to', () => {
    const liveObjects = () => `file://${join(dir, 'live', 'objects')}`;
    /** The store's keys with the SHA-256 of their bytes. */
    const listing = async (url: string) => {
      const store = await openObjectStore(url);
      const out: Record<string, string> = {};
      for (const { key } of (await store.list('')).items) {
        out[key] = createHash('sha256')
          .update(await readAll((await store.get(key)).body))
          .digest('hex');
      }
      return out;
    };

    before(async () => {
      // Written after the sets: a restore into this store would bring back the backup's state.
      await (await openObjectStore(liveObjects())).put(
        'avatars/ann',
        Buffer.from('changed after the backup'),
      );
    });

    test("the README's example, leaving --object-store at this deployment's own, is refused with backup.target_live", async () => {
      const targetUrl = await createTestDatabase('orthid_beside');
      const before = await listing(liveObjects());
      assert.ok(Object.keys(before).includes('avatars/ann'));
      const refused = await runCli(['backup', 'restore', newer, '--database-url', targetUrl], env);
      assert.equal(refused.code, exitCodes.conflict, refused.stderr);
      assert.match(
        refused.stderr,
        /error\[backup\.target_live\]: The restore would write into this deployment's own object store \(ORTHID_OBJECT_STORE\)\. Pass --database-url and --object-store/,
      );
      // Naming the same store explicitly is the same store.
      const named = await runCli(
        ['backup', 'restore', newer, '--database-url', targetUrl, '--object-store', `${liveObjects()}/`],
        env,
      );
      assert.equal(named.code, exitCodes.conflict, named.stderr);
      assert.match(named.stderr, /error\[backup\.target_live\]/);
      // And the configured database, by default, too.
      const database = await runCli(
        ['backup', 'restore', newer, '--object-store', `file://${join(dir, 'x')}`],
        env,
      );
      assert.match(database.stderr, /error\[backup\.target_live\]: .* own database \(ORTHID_DATABASE_URL\)/);
      assert.deepEqual(await listing(liveObjects()), before);
      assert.deepEqual(await rowCounts(targetUrl), {});
      assert.deepEqual(await scratchDatabases('orthid_beside_'), [
        { datname: new URL(targetUrl).pathname.slice(1) },
      ]);
    });

    test('an object store that is not empty is refused with backup.target_not_empty, and replaced with --clean', async () => {
      const targetUrl = await createTestDatabase('orthid_into_used');
      const used = `file://${join(dir, 'used-objects')}`;
      await (await openObjectStore(used)).put('avatars/zed', Buffer.from('not in the set'));
      const before = await listing(used);
      const args = [
        'backup',
        'restore',
        newer,
        '--json',
        '--database-url',
        targetUrl,
        '--object-store',
        used,
      ];
      const refused = await runCli(args, { ...env, ORTHID_MASTER_KEY: `${MASTER}-used` });
      assert.equal(refused.code, exitCodes.conflict, refused.stderr);
      assert.match(
        refused.stderr,
        /error\[backup\.target_not_empty\]: The target object store file:\/\/\S+ is not empty\. .*--clean/,
      );
      assert.deepEqual(await listing(used), before);
      assert.deepEqual(await rowCounts(targetUrl), {});
      assert.deepEqual(await scratchDatabases('orthid_into_used_'), [
        { datname: new URL(targetUrl).pathname.slice(1) },
      ]);

      const keystorePath = join(dir, 'used-keystore');
      const cleaned = await runCli([...args, '--clean', '--keystore', `file://${keystorePath}`], {
        ...env,
        ORTHID_MASTER_KEY: `${MASTER}-used`,
      });
      assert.equal(cleaned.code, exitCodes.ok, cleaned.stderr + cleaned.stdout);
      assert.equal(JSON.parse(cleaned.stdout).ok, true, cleaned.stdout);
      const after = await listing(used);
      // Exactly the set's objects: the live store's, less what was written after the set.
      const { 'avatars/ann': _changedSince, ...inSet } = await listing(liveObjects());
      assert.deepEqual(after, inSet);
      assert.equal(after['avatars/zed'], undefined, 'an object the set does not hold is gone');
    });
  });

  test('a keystore export lacking a root key the database names is refused with backup.keystore_mismatch before anything is written', async () => {
    const targetUrl = await createTestDatabase('orthid_old_keys');
    const targetDir = join(dir, 'old-keys');
    const restored = await runCli(
      ['backup', 'restore', newer, '--into-live-stores', '--keystore-file', oldKeystore],
      {
        ...env,
        ORTHID_DATA_DIR: targetDir,
        ORTHID_DATABASE_URL: targetUrl,
        ORTHID_MASTER_KEY: `${MASTER}-old-keys`,
      },
    );
    assert.equal(restored.code, exitCodes.conflict, restored.stderr);
    assert.match(restored.stderr, /error\[backup\.keystore_mismatch\]: The keystore lacks root key\(s\) \S+/);
    assert.deepEqual(await rowCounts(targetUrl), {});
    assert.deepEqual(await scratchDatabases('orthid_old_keys_restore_'), []);
    assert.equal(existsSync(join(targetDir, 'keystore')), false);
  });

  describe("the client tools get the target's password in their environment, never in their argv (which ps shows)", () => {
    const login = 'orthid_pw_restorer';
    const password = 'restore-pw@with%odd/chars-0123';
    let cluster: Awaited<ReturnType<typeof startCluster>>;
    let bin: string;
    let argvLog: string;

    before(async () => {
      // A cluster of its own, where the restoring login must really present its password.
      cluster = await startCluster();
      const [hba] = await query<{ hba_file: string }>(cluster.url, 'SHOW hba_file');
      const rules = await readFile(hba!.hba_file, 'utf8');
      await writeFile(hba!.hba_file, `host all ${login} 127.0.0.1/32 scram-sha-256\n${rules}`);
      await query(cluster.url, `CREATE ROLE ${login} LOGIN SUPERUSER PASSWORD '${password}'`);
      await query(cluster.url, 'SELECT pg_reload_conf()');
      // Wrappers first on PATH record each argv, then the real tools do the work.
      bin = join(dir, 'recording-bin');
      argvLog = join(dir, 'argv.log');
      await mkdir(bin, { recursive: true });
      for (const tool of ['pg_restore', 'psql']) {
        const wrapper = join(bin, tool);
        await writeFile(
          wrapper,
          `#!/bin/sh\nprintf '${tool}' >> '${argvLog}'\nfor a in "$@"; do printf ' %s' "$a" >> '${argvLog}'; done\necho >> '${argvLog}'\nexec '${join(postgresBinDir(), tool)}' "$@"\n`,
        );
        await chmod(wrapper, 0o755);
      }
    });
    after(() => cluster?.stop());

    /** Restores `set` from `from` into a new database the password login owns; returns the tool's argv. */
    async function restoreWithPassword(
      tool: 'pg_restore' | 'psql',
      set: string,
      from: Record<string, string>,
      name: string,
    ): Promise<string> {
      await query(cluster.url, `CREATE DATABASE ${name} OWNER ${login}`);
      const target = new URL(cluster.url);
      target.username = login;
      target.password = encodeURIComponent(password);
      target.pathname = `/${name}`;
      await writeFile(argvLog, '');
      const restored = await runCli(['backup', 'restore', set, '--json', '--into-live-stores'], {
        ...from,
        PATH: `${bin}:${process.env.PATH}`,
        ORTHID_DATA_DIR: join(dir, name),
        ORTHID_DATABASE_URL: target.toString(),
        ORTHID_MASTER_KEY: `${MASTER}-${name}`,
      });
      const calls = (await readFile(argvLog, 'utf8')).trim().split('\n');
      // Checked first, so that no failure message below can print the password.
      assert.ok(
        calls.every((c) => !c.includes(password) && !c.includes(encodeURIComponent(password))),
        "a client tool's argv holds the password",
      );
      assert.equal(restored.code, exitCodes.ok, restored.stderr + restored.stdout);
      assert.equal(JSON.parse(restored.stdout).ok, true, restored.stdout);
      const loads = calls.filter((c) => c.startsWith(`${tool} `) && c.includes('--dbname'));
      assert.equal(loads.length, 1, calls.join('\n'));
      const args = loads[0]!.split(' ');
      const dbname = new URL(args[args.indexOf('--dbname') + 1]!);
      assert.equal(dbname.username, login);
      assert.equal(dbname.password, '');
      return target.toString();
    }

    test('pg_restore, for a set of a PostgreSQL deployment', async () => {
      const url = await restoreWithPassword('pg_restore', newer, env, 'orthid_pw_custom');
      const tenants = await query<{ slug: string }>(url, 'SELECT slug FROM tenants ORDER BY slug');
      assert.ok(tenants.some((t) => t.slug === 'beta'));
    });

    test('psql, for a set of an embedded deployment', async () => {
      const embedded = {
        ...env,
        ORTHID_DATA_DIR: join(dir, 'embedded'),
        ORTHID_BACKUP_DEST: `file://${join(dir, 'embedded-sets')}`,
        ORTHID_BACKUP_KEYSTORE_DEST: `file://${join(dir, 'embedded-keys')}`,
      };
      delete (embedded as Record<string, string | undefined>).ORTHID_DATABASE_URL;
      const server = await startServer(embedded);
      try {
        assert.equal((await runCli(['tenant', 'create', 'gamma'], embedded)).code, 0);
        const dumped = await runCli(['backup', 'dump', '--encrypt', '--json'], embedded);
        assert.equal(dumped.code, 0, dumped.stderr);
        assert.equal(JSON.parse(dumped.stdout).database.format, 'plain');
      } finally {
        await server.stop();
      }
      const url = await restoreWithPassword('psql', 'latest', embedded, 'orthid_pw_plain');
      const tenants = await query<{ slug: string }>(url, 'SELECT slug FROM tenants ORDER BY slug');
      assert.ok(tenants.some((t) => t.slug === 'gamma'));
    });
  });
});
