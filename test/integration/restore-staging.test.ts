import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { openBackupStores } from '../../src/backup/destination.js';
import type { Manifest } from '../../src/backup/manifest.js';
import { restoreBackupSet } from '../../src/backup/restore-set.js';
import { runBackupDump } from '../../src/backup/run-dump.js';
import { FILES } from '../../src/backup/set-layout.js';
import { systemClock } from '../../src/core/clock.js';
import { isOrthIdError, OrthIdError } from '../../src/core/errors.js';
import { withTenant } from '../../src/storage/db/database.js';
import { openRestoreTarget } from '../../src/storage/db/open-restore-target.js';
import { openObjectStore } from '../../src/storage/objects/open-object-store.js';
import { age, ageKeygen, requireAgeCli } from '../helpers/age-cli.js';
import { createTestOrthId, TEST_MASTER_KEY, type TestOrthId } from '../helpers/orthid.js';
import { createTestDatabase, query } from '../helpers/postgres.js';

/** Every file under `dir` (the keystore, the object store and its sidecars) with the SHA-256 of its bytes. */
async function tree(dir: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  if (!existsSync(dir)) return files;
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    files[path.slice(dir.length)] = createHash('sha256')
      .update(await readFile(path))
      .digest('hex');
  }
  return files;
}

/** Every public table's row count and the MD5 of its rows in order: the database's contents. */
async function tableChecksums(url: string): Promise<Record<string, string>> {
  const tables = await query<{ tablename: string }>(
    url,
    `SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`,
  );
  const sums: Record<string, string> = {};
  for (const { tablename } of tables) {
    const [row] = await query<{ n: string; md5: string }>(
      url,
      `SELECT count(*)::text AS n, md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) AS md5 FROM "${tablename}" t`,
    );
    sums[tablename] = `${row!.n}:${row!.md5}`;
  }
  return sums;
}

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const withoutFiles = <T extends { files: unknown }>({ files: _, ...rest }: T) => rest;

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

interface Target {
  name: 'as provisioned (empty), without --clean' | 'restored before and changed since, with --clean';
  dir: string;
  url: string;
  clean: boolean;
}

/** A way to damage a copy of a set; `sets` is the copy's directory. */
interface Damage {
  part: string;
  how: string;
  apply(sets: string, manifest: Manifest, recipient: string, identityFile: string): Promise<void>;
}

/** The damaged part's stored file, changed in place (the store's own sidecar no longer matches). */
async function flipByte(sets: string, manifest: Manifest, kind: string): Promise<void> {
  const file = join(sets, manifest.parts.find((p) => p.kind === kind)!.key);
  const bytes = await readFile(file);
  bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
  await writeFile(file, bytes);
}

/**
 * A part whose decrypted contents are damaged, encrypted again and written through the store, with
 * the manifest rewritten to match it: every checksum agrees, only reading the part finds the damage.
 */
async function damageInside(
  sets: string,
  manifest: Manifest,
  kind: string,
  change: (plain: Buffer) => Buffer,
  recipient: string,
  identityFile: string,
): Promise<void> {
  const store = await openObjectStore(pathToFileURL(sets).href);
  const part = manifest.parts.find((p) => p.kind === kind)!;
  const stored = await readAll((await store.get(part.key)).body);
  const plain = age(['-d', '-i', identityFile], stored);
  const damaged = age(['-r', recipient], change(plain));
  await store.put(part.key, damaged);
  await rewriteManifest(sets, manifest, (m) => ({
    ...m,
    parts: m.parts.map((p) =>
      p.kind === kind ? { ...p, size: damaged.length, sha256: sha256(damaged) } : p,
    ),
  }));
}

async function rewriteManifest(sets: string, manifest: Manifest, change: (m: Manifest) => unknown) {
  const store = await openObjectStore(pathToFileURL(sets).href);
  const key = manifest.parts[0]!.key.replace(/[^/]+$/, FILES.manifest);
  const current = JSON.parse((await readAll((await store.get(key)).body)).toString('utf8')) as Manifest;
  await store.put(key, Buffer.from(JSON.stringify(change(current))), { contentType: 'application/json' });
}

const DAMAGES: Damage[] = [
  ...(['database', 'objects', 'keystore'] as const).map((kind) => ({
    part: kind,
    how: 'one byte flipped in the stored part',
    apply: (sets: string, manifest: Manifest) => flipByte(sets, manifest, kind),
  })),
  {
    part: 'database',
    how: 'dump cut in half, encrypted again, manifest matching',
    apply: (sets, manifest, recipient, identity) =>
      damageInside(
        sets,
        manifest,
        'database',
        (p) => p.subarray(0, Math.floor(p.length / 2)),
        recipient,
        identity,
      ),
  },
  {
    part: 'objects',
    how: "one object's bytes changed in the archive, encrypted again, manifest matching",
    apply: (sets, manifest, recipient, identity) =>
      damageInside(
        sets,
        manifest,
        'objects',
        (p) =>
          Buffer.from(
            p.toString('latin1').replace('the report in the backup', 'the report IN the backup'),
            'latin1',
          ),
        recipient,
        identity,
      ),
  },
  {
    part: 'keystore',
    how: 'export cut in half, encrypted again, manifest matching',
    apply: (sets, manifest, recipient, identity) =>
      damageInside(
        sets,
        manifest,
        'keystore',
        (p) => p.subarray(0, Math.floor(p.length / 2)),
        recipient,
        identity,
      ),
  },
  {
    part: 'manifest',
    how: 'not JSON any more',
    apply: (sets, manifest) => rewriteManifest(sets, manifest, () => ({ broken: true })),
  },
  {
    part: 'manifest',
    how: 'names a root key the keystore lacks',
    apply: (sets, manifest) =>
      rewriteManifest(sets, manifest, (m) => ({
        ...m,
        keys: { ...m.keys, rootKeyIds: [...m.keys.rootKeyIds, 'mk_not_in_the_keystore'] },
      })),
  },
];

describe('a restore that fails on any part leaves the target as it found it', { timeout: 300_000 }, () => {
  let app: TestOrthId;
  let work: string;
  let key: { file: string; identity: string; recipient: string };
  let latest: Manifest;
  const targets: Target[] = [];
  const matrix: string[] = [];

  const restore = async (target: Target, sets: string, set: string) =>
    restoreBackupSet({
      set,
      ...(await openBackupStores(pathToFileURL(sets).href, undefined)),
      identities: [key.identity],
      target: openRestoreTarget({ postgresUrl: target.url, clean: target.clean }),
      objects: await openObjectStore(pathToFileURL(join(target.dir, 'objects')).href),
      cleanObjects: target.clean,
      keystorePath: join(target.dir, 'keystore'),
      masterSecret: TEST_MASTER_KEY,
    });

  /** What a user of the target would notice: its keystore and objects byte for byte, its database. */
  const snapshot = async (target: Target) => {
    const name = new URL(target.url).pathname.slice(1);
    const store = await openObjectStore(pathToFileURL(join(target.dir, 'objects')).href);
    const objects: Record<string, unknown> = {};
    for (const { key, size, sha256: known, contentType, metadata } of (await store.list('')).items) {
      const bytes = sha256(await readAll((await store.get(key)).body));
      objects[key] = { size, known, bytes, contentType, metadata };
    }
    return {
      keystore: existsSync(join(target.dir, 'keystore'))
        ? sha256(await readFile(join(target.dir, 'keystore')))
        : undefined,
      objects,
      files: await tree(target.dir),
      // A database dropped and put back (even with the same rows) has another oid. So has a
      // scratch or previous database left behind; the comment marks the set it was restored from.
      databases: await query(
        target.url,
        `SELECT oid::text, datname, datallowconn, shobj_description(oid, 'pg_database') AS comment
           FROM pg_database WHERE starts_with(datname, $1) ORDER BY datname`,
        [name],
      ),
      tables: await tableChecksums(target.url),
    };
  };

  before(async () => {
    requireAgeCli();
    work = mkdtempSync(join(tmpdir(), 'orthid-restore-staging-'));
    app = await createTestOrthId('postgres');
    const tenant = await app.tenants.create({ slug: 'acme', actor: 'test' });
    await withTenant(app.db, tenant.id, (tx) =>
      app.users.create(tx, tenant.id, { email: 'ann@acme.example', name: 'Ann' }, 'test'),
    );
    await app.objects.put('avatars/ann', Buffer.from('the avatar in the backup'));
    await app.objects.put('reports/q1', Buffer.from('the report in the backup'));
    key = ageKeygen(work);
    const dump = () =>
      runBackupDump(
        { config: app.config, db: app.db, objects: app.objects, keystore: app.keystore, clock: systemClock },
        {
          encrypt: true,
          upload: false,
          recipients: [key.recipient],
          dest: pathToFileURL(join(work, 'sets')).href,
          destConfigured: true,
        },
      );
    const older = await dump();
    const fresh: Target = {
      name: 'as provisioned (empty), without --clean',
      dir: join(work, 'fresh'),
      url: await createTestDatabase('orthid_fresh'),
      clean: false,
    };
    // The target as an operator would find it: restored from an older set, then changed since.
    const changed: Target = {
      name: 'restored before and changed since, with --clean',
      dir: join(work, 'changed'),
      url: await createTestDatabase('orthid_changed'),
      clean: true,
    };
    const first = await restore({ ...changed, clean: false }, join(work, 'sets'), older.setId);
    await first.db.close();
    const live = await openObjectStore(pathToFileURL(join(changed.dir, 'objects')).href);
    await live.put('avatars/ann', Buffer.from('changed after the backup'));
    await live.put('avatars/bob', Buffer.from('written after the backup'));
    await query(changed.url, `UPDATE users SET status = 'disabled'`);
    await withTenant(app.db, tenant.id, (tx) =>
      app.users.create(tx, tenant.id, { email: 'cy@acme.example', name: 'Cy' }, 'test'),
    );
    latest = await dump();
    targets.push(fresh, changed);
  });
  after(async () => {
    // The matrix the restore's guarantee rests on: part × damage × target → outcome.
    if (matrix.length) process.stdout.write(`# restore matrix\n${matrix.map((r) => `# ${r}`).join('\n')}\n`);
    await app?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  let copies = 0;
  for (const damage of DAMAGES) {
    for (const which of [0, 1]) {
      test(`${damage.part} part, ${damage.how}: refused, and the target ${which ? 'restored before and changed since (--clean)' : 'as provisioned'} is byte for byte unchanged`, async () => {
        const target = targets[which]!;
        const before = await snapshot(target);
        if (target.clean) {
          assert.ok(Object.keys(before.files).some((f) => f.endsWith('keystore')));
          assert.ok(Object.keys(before.tables).length > 0);
        }
        const sets = join(work, `sets-${++copies}`);
        assert.equal(spawnSync('cp', ['-a', join(work, 'sets'), sets]).status, 0);
        await damage.apply(sets, latest, key.recipient, key.file);

        let code = '(restored)';
        await assert.rejects(restore(target, sets, latest.setId), (error) => {
          assert.ok(error instanceof OrthIdError, String(error));
          code = error.code;
          return true;
        });
        assert.notEqual(code, 'internal.unexpected');
        assert.deepEqual(await snapshot(target), before);
        matrix.push(`${damage.part} | ${damage.how} | ${target.name} | ${code} | unchanged`);
      });
    }
  }

  test('a failure at the last promotion (the keystore locked) puts the database and the objects back', async () => {
    const target = targets[1]!;
    const lock = join(target.dir, 'keystore.lock');
    // Held by a live process on this host: the keystore's write waits for it, then gives up.
    await writeFile(lock, JSON.stringify({ host: hostname(), pid: process.pid, token: 'held-by-the-test' }));
    try {
      const before = await snapshot(target);
      await assert.rejects(restore(target, join(work, 'sets'), latest.setId), (error) =>
        isOrthIdError(error, 'keystore.custody_unavailable'),
      );
      // An object put back from the stash is a new file with the same bytes, type and metadata.
      assert.deepEqual(withoutFiles(await snapshot(target)), withoutFiles(before));
      assert.equal((await snapshot(target)).keystore, before.keystore);
      matrix.push(
        `(none) | keystore locked at promotion | ${target.name} | keystore.custody_unavailable | unchanged`,
      );
    } finally {
      await rm(lock, { force: true });
    }
  });

  test('a failure while writing the objects (a file where a directory must go) puts back what it overwrote', async () => {
    const target = targets[1]!;
    const objects = join(target.dir, 'objects');
    // `reports` as an object: the set's reports/q1 cannot be written below it.
    await rm(join(objects, 'reports'), { recursive: true, force: true });
    const store = await openObjectStore(pathToFileURL(objects).href);
    await store.put('reports', Buffer.from('in the way'));
    // An object the set overwrites (written before the one that fails): it must come back.
    await store.put('avatars/ann', Buffer.from('changed again before this restore'));
    try {
      const before = await snapshot(target);
      let code = '';
      await assert.rejects(restore(target, join(work, 'sets'), latest.setId), (error) => {
        assert.ok(error instanceof OrthIdError, String(error));
        code = error.code;
        return true;
      });
      assert.deepEqual(withoutFiles(await snapshot(target)), withoutFiles(before));
      matrix.push(`(none) | object store write fails at promotion | ${target.name} | ${code} | unchanged`);
    } finally {
      await store.delete('reports');
      await mkdir(objects, { recursive: true });
    }
  });

  test('the same set undamaged does replace them, though a session is connected (so the checks above can see a change)', async () => {
    for (const target of targets) {
      const before = await snapshot(target);
      // As a server of the replaced database would be: its session is ended, not waited for.
      const session = new pg.Client({ connectionString: target.url });
      session.on('error', () => {});
      await session.connect();
      const result = await restore(target, join(work, 'sets'), latest.setId).finally(() =>
        session.end().catch(() => {}),
      );
      await result.db.close();
      const after = await snapshot(target);
      assert.notDeepEqual(after.databases, before.databases, target.name);
      assert.notDeepEqual(after.tables, before.tables, target.name);
      assert.notEqual(after.files['/keystore'], undefined, target.name);
      const objects = await openObjectStore(pathToFileURL(join(target.dir, 'objects')).href);
      assert.equal(
        (await readAll((await objects.get('avatars/ann')).body)).toString(),
        'the avatar in the backup',
      );
      // With --clean the store is the set's: what was written after the backup is gone.
      assert.equal(await objects.head('avatars/bob'), undefined, target.name);
      const users = await query<{ status: string }>(target.url, 'SELECT status FROM users');
      assert.deepEqual(
        users.map((r) => r.status),
        ['active', 'active'],
        target.name,
      );
    }
  });
});
