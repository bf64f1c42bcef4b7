// Restores a backup set following the product page's steps 1-5, in order: check the target,
// restore the keystore first (and refuse one that lacks the set's keys), restore the database via a
// scratch database, restore the objects, migrate. Step 6, the checks, needs a running deployment: ops.
import { createHash } from 'node:crypto';
import { type Readable, Transform, type TransformCallback } from 'node:stream';
import { isOrthIdError, OrthIdError } from '../core/errors.js';
import { decryptStream } from '../crypto/age/index.js';
import type { KeyCustody } from '../crypto/key-custody.js';
import { readKeystoreExport } from '../crypto/keystore-export.js';
import { type DestroyedKey, type KeystoreContents, ManagedKeystore } from '../crypto/managed-keystore.js';
import { migrate } from '../storage/db/migrate.js';
import type { PgliteDriver } from '../storage/db/pglite-driver.js';
import { openPostgres } from '../storage/db/postgres-driver.js';
import {
  clientToolMajor,
  databaseName,
  loadSqlIntoPglite,
  preflightTarget,
  startScratchRestore,
  type TargetProblem,
} from '../storage/db/restore.js';
import type { ObjectStore } from '../storage/objects/object-store.js';
import type { Manifest, ManifestPart } from './manifest.js';
import { unpackObjectsArchive } from './objects-archive.js';
import { findBackupSet, listBackupSets } from './sets.js';

export type RestoreTarget =
  | { kind: 'postgres'; url: string; clean: boolean }
  /** An empty embedded database (a new data directory, or in memory for a drill). */
  | { kind: 'pglite'; db: PgliteDriver };

export interface RestoreOptions {
  /** `latest` or a set id/path. */
  set: string;
  dest: ObjectStore;
  keystoreDest: ObjectStore;
  /** age identities (AGE-SECRET-KEY-1…) that open the set. */
  identities: string[];
  target: RestoreTarget;
  objects: ObjectStore;
  /** A keystore export to use instead of the set's own (e.g. kept apart by the operator). */
  keystoreFile?: () => Readable;
  /** Where the restored keystore is written, and the secret that seals it there. */
  keystorePath: string;
  masterSecret: string;
  /** Under BYOK: the PKCS#11 token or KMS holding the root keys the set's data keys are wrapped by. */
  custody?: KeyCustody;
  /** Root keys the deployment destroyed since (crypto-shredding); they stay destroyed in the restore. */
  destroyedKeys?: DestroyedKey[];
  onStep?: (step: number, title: string, detail?: string) => void;
}

export interface RestoreResult {
  manifest: Manifest;
  keystore: ManagedKeystore;
  migrated: number[];
  objects: number;
  /** True when the database had been restored from this set by an earlier, interrupted run. */
  resumed: boolean;
}

/** Checks the stored bytes of a part against the manifest while they stream past. */
function checkPart(part: ManifestPart): Transform {
  const hash = createHash('sha256');
  let size = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      hash.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
    flush(done: TransformCallback) {
      if (size !== part.size || hash.digest('hex') !== part.sha256) {
        done(
          new OrthIdError(
            'backup.checksum_mismatch',
            `The part ${part.name} does not match the manifest (size or SHA-256 differ): it was damaged or replaced. Use another set.`,
            { details: { part: part.name } },
          ),
        );
      } else {
        done();
      }
    },
  });
}

/** A part as a stream: stored bytes → checksum → (unless `raw`) age decryption. */
async function openPart(
  options: RestoreOptions,
  manifest: Manifest,
  kind: ManifestPart['kind'],
  raw = false,
): Promise<{ part: ManifestPart; body: Readable }> {
  const part = manifest.parts.find((p) => p.kind === kind);
  if (!part) throw new OrthIdError('backup.set_incomplete', `The set ${manifest.setId} has no ${kind} part.`);
  const store = part.location === 'keystore-dest' ? options.keystoreDest : options.dest;
  const { body } = await store.get(part.key);
  const checked = body.pipe(checkPart(part));
  body.on('error', (error) => checked.destroy(error));
  if (raw || !part.encrypted) return { part, body: checked };
  const plain = checked.pipe(decryptStream(options.identities));
  checked.on('error', (error) => plain.destroy(error));
  return { part, body: plain };
}

function keystoreMismatch(manifest: Manifest, why: string): OrthIdError {
  return new OrthIdError(
    'backup.keystore_mismatch',
    `${why} The set ${manifest.setId} needs root key(s) ${manifest.keys.rootKeyIds.join(', ')}; restore the keystore exported with it (keystore.age). Nothing was restored.`,
  );
}

/**
 * Step 2's check: the keystore must be this deployment's, and every root key the data needs must be
 * in it or in the external custody. A key destroyed by crypto-shredding counts as held: its tenant
 * restores as shredded, the others intact.
 */
async function checkKeystore(manifest: Manifest, contents: KeystoreContents, custody?: KeyCustody) {
  if (contents.deploymentId !== manifest.deploymentId) {
    throw keystoreMismatch(
      manifest,
      `The keystore belongs to deployment ${contents.deploymentId}, not ${manifest.deploymentId}.`,
    );
  }
  const held = new Set([
    ...contents.rootKeys.map((k) => k.id),
    ...(contents.destroyedKeys ?? []).map((k) => k.id),
    ...(custody ? (await custody.rootKeys()).map((k) => k.id) : []),
  ]);
  const missing = manifest.keys.rootKeyIds.filter((id) => !held.has(id));
  if (missing.length === 0) return;
  if (contents.externalCustody && !custody) {
    throw new OrthIdError(
      'keystore.custody_unavailable',
      `The set's root keys are held by ${contents.externalCustody.kind} custody (${contents.externalCustody.reference}); set ORTHID_KEYSTORE to it where it is reachable. Nothing was restored.`,
    );
  }
  throw keystoreMismatch(manifest, `The keystore lacks root key(s) ${missing.join(', ')}.`);
}

async function readKeystore(options: RestoreOptions, manifest: Manifest): Promise<KeystoreContents> {
  if (options.keystoreFile) return readKeystoreExport(options.keystoreFile(), options.identities);
  if (!manifest.keys.keystoreIncluded) {
    // The operator restored the keystore beforehand (orthid keystore import) or keeps it elsewhere.
    const existing = await ManagedKeystore.open(options.keystorePath, options.masterSecret).catch(
      () => undefined,
    );
    if (!existing)
      throw keystoreMismatch(manifest, 'The set carries no keystore export and none is at the target.');
    return existing.exportContents();
  }
  // A keystore export is an age file of its own; readKeystoreExport decrypts it.
  const { body } = await openPart(options, manifest, 'keystore', true);
  return readKeystoreExport(body, options.identities);
}

/**
 * The set to restore. A set whose only missing part is its keystore export is restorable with a
 * keystore given separately; without one, that is a keystore mismatch, not a damaged set.
 */
async function resolveSet(options: RestoreOptions): Promise<Manifest> {
  try {
    return (await findBackupSet(options.dest, options.set, options.keystoreDest)).manifest;
  } catch (error) {
    const latestMissing = options.set === 'latest' && isOrthIdError(error, 'backup.set_not_found');
    if (!latestMissing && !isOrthIdError(error, 'backup.set_incomplete')) throw error;
    const set = (await listBackupSets(options.dest, options.keystoreDest)).find(
      (s) =>
        s.id === options.set ||
        s.path === options.set ||
        (options.set === 'latest' && s.manifest !== undefined),
    );
    const manifest = set?.manifest;
    const onlyKeystoreMissing =
      manifest && set.problem === `missing ${manifest.parts.find((p) => p.kind === 'keystore')?.name}`;
    if (!onlyKeystoreMissing) throw error;
    if (!options.keystoreFile) {
      throw keystoreMismatch(
        manifest,
        `The set's keystore export is not at ${options.keystoreDest.url}: restore it there, or pass --keystore-file.`,
      );
    }
    return manifest;
  }
}

/** The refusal when the target's login lacks something: each cause, then the SQL that grants it. */
function targetForbidden(login: string, database: string, problems: TargetProblem[]): OrthIdError {
  return new OrthIdError(
    'backup.target_forbidden',
    [
      `Cannot restore into ${database} as ${login}: ${problems.map((p) => p.cause).join('; ')}. Nothing was changed.`,
      'As a superuser on the target server, run:',
      ...problems.map((p) => `  ${p.fix}`),
    ].join('\n'),
    { details: { login, database, sql: problems.map((p) => p.fix) } },
  );
}

/** pg_restore reads archives of its own major version and older, never newer. */
function checkRestoreTool(manifest: Manifest): void {
  const major = clientToolMajor(manifest.database.format);
  const dumped = /\(PostgreSQL\)\s+(\d+)/.exec(manifest.database.dumpTool)?.[1];
  if (manifest.database.format === 'custom' && dumped && major < Number(dumped)) {
    throw new OrthIdError(
      'backup.tool_too_old',
      `pg_restore ${major} cannot read a dump made by ${manifest.database.dumpTool}. Install postgresql-client-${dumped} (or newer) and put it first on PATH. Nothing was restored.`,
    );
  }
}

/** A keystore already at the target must be this deployment's and open with this host's secret. */
async function checkKeystoreTarget(options: RestoreOptions, contents: KeystoreContents): Promise<void> {
  const existing = await ManagedKeystore.open(options.keystorePath, options.masterSecret).catch((error) => {
    if (isOrthIdError(error, 'keystore.not_initialised')) return undefined;
    throw error;
  });
  if (existing && existing.deploymentId !== contents.deploymentId) {
    throw new OrthIdError(
      'keystore.import_conflict',
      `The keystore at ${options.keystorePath} belongs to another deployment (${existing.deploymentId}); the set is of ${contents.deploymentId}. Restore into an empty data directory or move the existing keystore away first. Nothing was restored.`,
    );
  }
}

/**
 * Step 1 on PostgreSQL: the target is empty (or to be replaced), its login can create and replace
 * it and act as the application role, and the client tool runs. Asks, never writes; says whether
 * an earlier run already restored this set there. A drill asks it before creating its target.
 */
export async function checkPostgresTarget(url: string, manifest: Manifest, clean: boolean): Promise<boolean> {
  const state = await preflightTarget(url);
  const resumed = state.restoredFrom === manifest.setId;
  if (state.tables > 0 && !clean && !resumed) {
    throw new OrthIdError(
      'backup.target_not_empty',
      'The target database is not empty. Restore into a new database, or pass --clean to replace it.',
    );
  }
  const problems = [...(resumed ? [] : state.loadProblems), ...state.roleProblems];
  if (problems.length > 0) throw targetForbidden(state.login, databaseName(url), problems);
  if (!resumed) checkRestoreTool(manifest);
  return resumed;
}

export async function restoreBackupSet(options: RestoreOptions): Promise<RestoreResult> {
  const step = options.onStep ?? (() => {});
  const manifest = await resolveSet(options);
  const { target } = options;

  step(1, 'Check the target', target.kind === 'postgres' ? 'PostgreSQL' : 'embedded database');
  // Everything the restore will need is asked here, before anything is written: a refusal leaves
  // no database, no role and no keystore file behind.
  if (target.kind === 'pglite' && manifest.database.format !== 'plain') {
    throw new OrthIdError(
      'backup.format_unsupported',
      `The set ${manifest.setId} holds a PostgreSQL custom-format dump, which restores into PostgreSQL only: pass --database-url.`,
    );
  }
  const resumed =
    target.kind === 'postgres' && (await checkPostgresTarget(target.url, manifest, target.clean));
  const contents = await readKeystore(options, manifest);
  await checkKeystore(manifest, contents, options.custody);
  await checkKeystoreTarget(options, contents);

  step(2, 'Restore the keystore first', `root keys ${manifest.keys.rootKeyIds.join(', ')}`);
  const keystore = await ManagedKeystore.import(options.keystorePath, options.masterSecret, {
    ...contents,
    destroyedKeys: [...(contents.destroyedKeys ?? []), ...(options.destroyedKeys ?? [])],
  });

  step(
    3,
    'Decrypt and restore the database',
    resumed ? 'already restored from this set; skipped' : manifest.database.format,
  );
  // Each part is opened only when its consumer is ready: a stream that fails before anyone
  // listens would take the process down instead of failing the restore.
  if (!resumed && target.kind === 'pglite') {
    await loadSqlIntoPglite(target.db, (await openPart(options, manifest, 'database')).body);
  } else if (!resumed && target.kind === 'postgres') {
    const scratch = await startScratchRestore(target.url);
    try {
      const { body } = await openPart(options, manifest, 'database');
      await scratch.load(manifest.database.format, body).finally(() => body.destroy());
      await scratch.promote(manifest.setId);
    } finally {
      await scratch.discard();
    }
  }

  step(4, 'Restore object storage', `${manifest.objects.count} objects`);
  const objectsPart = await openPart(options, manifest, 'objects');
  const unpacked = await unpackObjectsArchive(objectsPart.body, options.objects);

  step(5, 'Bring the schema up to this OrthID');
  const db = target.kind === 'pglite' ? target.db : await openPostgres(target.url, { max: 1 });
  let migrated: number[];
  try {
    migrated = await migrate(db);
  } finally {
    if (target.kind === 'postgres') await db.close();
  }
  return { manifest, keystore, migrated, objects: unpacked.count, resumed };
}
