// A backup set's keystore and database must be one deployment's: a dump refuses a keystore that is
// not the database's, or that lacks a root key the database names, before it writes anything and
// again before its manifest marks the set complete; a restore refuses a set whose parts disagree.
import { OrthIdError } from '../core/errors.js';
import type { KeystoreContents } from '../crypto/managed-keystore.js';
import type { Database } from '../storage/db/database.js';
import { deploymentMismatch, readRecordedDeployment } from '../storage/db/deployment-binding.js';
import { rootKeysInUse } from './backup.queries.js';
import type { Manifest } from './manifest.js';

/** A root key the database names, and the custody holding it (`managed`: the keystore itself). */
export interface RootKeyInUse {
  id: string;
  custody: string;
}

/**
 * Root keys the keystore should hold and does not: those of managed custody (the keys BYOK
 * custody holds live in the HSM or KMS, which the set names and a restore asks). A destroyed key
 * counts as held: its tenant was shredded and restores as shredded.
 */
export function keysMissingFrom(contents: KeystoreContents, inUse: readonly RootKeyInUse[]): string[] {
  const held = new Set([
    ...contents.rootKeys.map((k) => k.id),
    ...(contents.destroyedKeys ?? []).map((k) => k.id),
  ]);
  return inUse.filter((k) => k.custody === 'managed' && !held.has(k.id)).map((k) => k.id);
}

function keysMissing(missing: string[], why: string, outcome: string): OrthIdError {
  return new OrthIdError(
    'backup.keystore_mismatch',
    `The keystore lacks root key(s) ${missing.join(', ')} that wrap the database's tenant keys: ${why} ${outcome}`,
    { details: { missingRootKeyIds: missing } },
  );
}

/**
 * A dump's check before it writes anything: the database records the keystore's deployment (a
 * database that records none yet, migrated before the binding, is checked by its keys alone) and
 * the keystore holds every root key the database's tenant keys are wrapped by. Returns the
 * deployment id the database records, for the manifest.
 */
export async function checkDumpKeystore(
  db: Database,
  keystore: { deploymentId: string; exportContents(): KeystoreContents },
): Promise<{ databaseDeploymentId: string | undefined }> {
  const recorded = await readRecordedDeployment(db);
  if (recorded && recorded.id !== keystore.deploymentId.toLowerCase()) {
    throw deploymentMismatch(recorded.id, keystore.deploymentId, 'Nothing was written.');
  }
  const missing = keysMissingFrom(keystore.exportContents(), await db.ownerTransaction(rootKeysInUse));
  if (missing.length > 0) {
    throw keysMissing(
      missing,
      "it is an older copy of this deployment's keystore (from before a tenant was created or a root key rotated) or another deployment's. Point ORTHID_KEYSTORE (ORTHID_KEYSTORE_FILE under BYOK custody) at the current keystore, or import its newest export (orthid keystore import), and run the dump again.",
      'Nothing was written.',
    );
  }
  return { databaseDeploymentId: recorded?.id };
}

/**
 * A dump's check before its manifest marks the set complete: the keystore export holds every
 * managed root key the dumped database names (a key added while the dump ran is not in it).
 */
export function assertExportHoldsKeys(contents: KeystoreContents, inUse: readonly RootKeyInUse[]): void {
  const missing = keysMissingFrom(contents, inUse);
  if (missing.length > 0) {
    throw keysMissing(
      missing,
      'a root key was added while the dump ran (a rotation on another process?). Run the dump again.',
      'No manifest was written: the set stays incomplete and is never offered for restore.',
    );
  }
}

/**
 * A restore's check, before anything is written: the deployment the set's database part records
 * (sets written before OrthID recorded it name none) is the one its keystore export belongs to.
 */
export function assertSetKeystoreMatches(manifest: Manifest, contents: KeystoreContents): void {
  const databaseId = manifest.database.deploymentId;
  if (databaseId && databaseId !== contents.deploymentId.toLowerCase()) {
    throw deploymentMismatch(
      databaseId,
      contents.deploymentId,
      'Nothing was restored.',
      `Restore with the keystore exported with set ${manifest.setId} (its keystore.age, or --keystore-file naming an export of deployment ${databaseId}).`,
    );
  }
}
