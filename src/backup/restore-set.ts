// Restores a backup set through the product page's six steps, in order, written once here: check
// the target, restore the keystore first (refusing one that lacks the set's keys), decrypt and
// restore the database, restore the objects, bring the schema up, verify. The database goes
// through a RestoreTarget (storage/db), so this file never learns which driver restores it; step 6
// is the caller's (it composes a deployment over what was restored). A drill is this same restore
// with a throwaway target. Nothing at the target changes before every part has been read and
// checked: the keystore, the database and the objects are staged first, then promoted together,
// and a failure while promoting puts back what was already promoted.
import { PassThrough, type Readable } from 'node:stream';
import { isOrthIdError, OrthIdError } from '../core/errors.js';
import { decryptStream } from '../crypto/age/index.js';
import type { KeyCustody } from '../crypto/key-custody.js';
import { readKeystoreExport } from '../crypto/keystore-export.js';
import { type DestroyedKey, type KeystoreContents, ManagedKeystore } from '../crypto/managed-keystore.js';
import type { Database } from '../storage/db/database.js';
import { migrate } from '../storage/db/migrate.js';
import type { RestoreTarget } from '../storage/db/restore-target.js';
import { ChecksumStream } from '../storage/objects/checksum-stream.js';
import type { ObjectStore } from '../storage/objects/object-store.js';
import type { Manifest, ManifestPart } from './manifest.js';
import { checkObjectsArchive } from './objects-archive.js';
import {
  assertObjectsTargetEmpty,
  notPutBack,
  type ObjectsPromotion,
  objectsTarget,
  promoteObjects,
} from './restore-objects.js';
import { assertSetKeystoreMatches } from './set-binding.js';
import { findBackupSet, listBackupSets } from './sets.js';

/**
 * The restore procedure of the product page (Backup & restore), as each step is announced. The
 * page's step 1 provisions a clean target, which here is checked; its step 5 points OrthID at the
 * restored database, which here brings its schema up to this OrthID first.
 */
export const RESTORE_STEPS = {
  1: 'Check the target',
  2: 'Restore the keystore first',
  3: 'Decrypt and restore the database',
  4: 'Restore object storage',
  5: 'Bring the schema up to this OrthID',
  6: 'Verify: sign in, verify a token, read the audit log, confirm decrypted fields render',
} as const;

export type RestoreStep = keyof typeof RESTORE_STEPS;

export interface RestorePlan<Checks = never> {
  /** `latest` or a set id/path. */
  set: string;
  dest: ObjectStore;
  keystoreDest: ObjectStore;
  /** age identities (AGE-SECRET-KEY-1…) that open the set. */
  identities: string[];
  /** Where the database goes; the caller owns it (closes or discards it afterwards). */
  target: RestoreTarget;
  objects: ObjectStore;
  /** Replace the objects of a target object store that is not empty (`--clean`). */
  cleanObjects?: boolean;
  /** A keystore export to use instead of the set's own (e.g. kept apart by the operator). */
  keystoreFile?: () => Readable;
  /** Where the restored keystore is written, and the secret that seals it there. */
  keystorePath: string;
  masterSecret: string;
  /** Under BYOK: the PKCS#11 token or KMS holding the root keys the set's data keys are wrapped by. */
  custody?: KeyCustody | undefined;
  /** Root keys the deployment destroyed since (crypto-shredding); they stay destroyed in the restore. */
  destroyedKeys?: DestroyedKey[];
  /** Connections the restored database is opened with, for the migrations and step 6. */
  connections?: number;
  /** Step 6: checks the restored deployment. Without it the restore ends after step 5. */
  verify?: (restored: RestoredSet) => Promise<Checks>;
  /** Gathers planner statistics while step 6 runs: for a target that will serve, not a drill's. */
  analyze?: boolean;
  onStep?: (step: RestoreStep, title: string, detail?: string) => void;
}

export interface RestoredSet {
  manifest: Manifest;
  keystore: ManagedKeystore;
  /** The restored database, opened by the target; closed when the target is. */
  db: Database;
  migrated: number[];
  objects: number;
  /** True when the database had been restored from this set by an earlier, interrupted run. */
  resumed: boolean;
}

export interface RestoreResult<Checks> extends RestoredSet {
  /** Step 6's outcome; undefined when the plan has no `verify`. */
  checks: Checks | undefined;
}

/** The stored bytes of a part, checked against the manifest (size, SHA-256) as they stream past. */
function checkedAgainstManifest(part: ManifestPart): ChecksumStream {
  return new ChecksumStream({
    sha256: part.sha256,
    size: part.size,
    mismatch: () =>
      new OrthIdError(
        'backup.checksum_mismatch',
        `The part ${part.name} does not match the manifest (size or SHA-256 differ): it was damaged or replaced. Use another set.`,
        { details: { part: part.name } },
      ),
  });
}

/** A part as a stream: stored bytes → checksum → (unless `raw`) age decryption. */
async function openPart(
  options: RestorePlan<unknown>,
  manifest: Manifest,
  kind: ManifestPart['kind'],
  raw = false,
): Promise<{ part: ManifestPart; body: Readable }> {
  const part = manifest.parts.find((p) => p.kind === kind);
  if (!part) throw new OrthIdError('backup.set_incomplete', `The set ${manifest.setId} has no ${kind} part.`);
  const store = part.location === 'keystore-dest' ? options.keystoreDest : options.dest;
  const { body } = await store.get(part.key);
  const checked = body.pipe(checkedAgainstManifest(part));
  body.on('error', (error) => checked.destroy(error));
  if (raw || !part.encrypted) return { part, body: checked };
  const decrypt = decryptStream(options.identities);
  const plain = new PassThrough();
  checked.pipe(decrypt).pipe(plain);
  checked.on('error', (error) => plain.destroy(error));
  decrypt.on('error', (error) => {
    // A damaged part fails authentication before its checksum is complete. The rest is read
    // first, so that the error names the damage (checksum_mismatch, from `checked`) rather
    // than suggesting a wrong identity; an intact part keeps the decryption error.
    checked.unpipe(decrypt);
    if (checked.readableEnded) return plain.destroy(error);
    checked.once('end', () => plain.destroy(error));
    checked.resume();
  });
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
async function assertKeystoreHoldsSetKeys(
  manifest: Manifest,
  contents: KeystoreContents,
  custody?: KeyCustody,
) {
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

async function readKeystore(options: RestorePlan<unknown>, manifest: Manifest): Promise<KeystoreContents> {
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
async function resolveSet(options: RestorePlan<unknown>): Promise<Manifest> {
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

/** A keystore already at the target must be this deployment's and open with this host's secret. */
async function checkKeystoreTarget(options: RestorePlan<unknown>, contents: KeystoreContents): Promise<void> {
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

export async function restoreBackupSet<Checks = never>(
  options: RestorePlan<Checks>,
): Promise<RestoreResult<Checks>> {
  const announce = (step: RestoreStep, detail?: string) =>
    options.onStep?.(step, RESTORE_STEPS[step], detail);
  const manifest = await resolveSet(options);
  const { target } = options;

  announce(1, target.kind);
  // Everything the restore will need is asked here, before anything is written: a refusal leaves
  // no database, no role, no object and no keystore file behind.
  const { resumed } = await target.inspect({
    setId: manifest.setId,
    format: manifest.database.format,
    dumpTool: manifest.database.dumpTool,
  });
  const objects = objectsTarget(options.objects, [options.dest, options.keystoreDest]);
  // A resumed restore promoted its objects before its database.
  if (!resumed && !options.cleanObjects) await assertObjectsTargetEmpty(objects);
  const contents = await readKeystore(options, manifest);
  assertSetKeystoreMatches(manifest, contents);
  await assertKeystoreHoldsSetKeys(manifest, contents, options.custody);
  await checkKeystoreTarget(options, contents);

  // Nothing at the target changes until every part has been read and checked: the keystore is
  // held in memory, the database loaded into the target's staging database, the objects archive
  // read to its end. Only then are the objects, the database and the keystore promoted, in that
  // order: the objects are the slowest to write and the most likely to fail (a full disk, a store
  // gone), the keystore one atomic file. A failure while promoting puts back what was promoted.
  let promotedObjects: ObjectsPromotion | undefined;
  let databasePromoted = false;
  try {
    announce(2, `root keys ${manifest.keys.rootKeyIds.join(', ')}`);
    const staged: KeystoreContents = {
      ...contents,
      destroyedKeys: [...(contents.destroyedKeys ?? []), ...(options.destroyedKeys ?? [])],
    };

    announce(3, resumed ? 'already restored from this set; skipped' : manifest.database.format);
    if (!resumed) {
      // The target opens the part once it can read it (see RestoreTarget.load).
      await target.load(
        manifest.database.format,
        async () => (await openPart(options, manifest, 'database')).body,
      );
    }

    announce(4, `${manifest.objects.count} objects`);
    // Read once to check (the part's checksum, its decryption, every object's SHA-256), and again
    // to put: a damaged archive is found before the first object is written.
    await checkObjectsArchive((await openPart(options, manifest, 'objects')).body);
    promotedObjects = await promoteObjects(objects, (await openPart(options, manifest, 'objects')).body, {
      clean: options.cleanObjects ?? false,
    });
    if (!resumed) {
      databasePromoted = true;
      await target.promote(manifest.setId);
    }
    // The atomic write merges, under the keystore's lock, with a keystore written meanwhile.
    await ManagedKeystore.import(options.keystorePath, options.masterSecret, staged);
  } catch (error) {
    // The staging database goes, a promoted one gives its place back to the previous database;
    // the objects written go, those overwritten come back.
    const failures: unknown[] = [];
    await target.discard().catch((cause) => {
      // Before the promotion, a staging database left behind changes nothing at the target.
      if (databasePromoted) failures.push(cause);
    });
    await promotedObjects?.rollback().catch((cause) => failures.push(cause));
    if (failures.length > 0) throw notPutBack(objects, error, failures[0], target.description);
    throw error;
  }
  // Promoted: what the restore replaced goes now.
  await target.release();
  await promotedObjects.finish();
  const keystore = await ManagedKeystore.open(options.keystorePath, options.masterSecret);

  announce(5);
  const db = await target.open(options.connections ?? 1);
  const migrated = await migrate(db, undefined, { deploymentId: keystore.deploymentId });
  const restored: RestoredSet = {
    manifest,
    keystore,
    db,
    migrated,
    objects: promotedObjects.count,
    resumed,
  };
  if (!options.verify) return { ...restored, checks: undefined };

  announce(6);
  // Statistics are gathered while the checks run, on a connection of their own.
  const [checks] = await Promise.all([
    options.verify(restored),
    options.analyze ? target.analyze() : Promise.resolve(),
  ]);
  return { ...restored, checks };
}
