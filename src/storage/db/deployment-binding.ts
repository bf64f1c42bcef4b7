// Binds a database to its keystore's deployment: migrate records the keystore's deployment id once,
// and start, dump and restore refuse a keystore whose id differs. Knows ids, not keystores.
import { OrthIdError } from '../../core/errors.js';
import { isUuid } from '../../core/ids.js';
import type { Queryable } from '../../core/sql.js';
import { type Database, withSystem } from './database.js';
import {
  managedRootKeyIdsInUse,
  type RecordedDeployment,
  recordDeployment,
  recordedDeployment,
  tableExists,
} from './deployment.queries.js';

export type { RecordedDeployment } from './deployment.queries.js';

/**
 * The refusal when a keystore and a database are not the same deployment's. `outcome` says what
 * was left undone (e.g. "Nothing was served."), `next` what to do.
 */
export function deploymentMismatch(
  databaseId: string,
  keystoreId: string,
  outcome: string,
  next = `Point ORTHID_KEYSTORE (ORTHID_KEYSTORE_FILE under pkcs11: or awskms: custody) and the master secret at deployment ${databaseId}'s keystore, or import it from one of that deployment's backup sets (orthid keystore import), and run the command again.`,
): OrthIdError {
  return new OrthIdError(
    'keystore.deployment_mismatch',
    `The keystore belongs to deployment ${keystoreId}, but the database belongs to deployment ${databaseId}: the tenants' keys are not in this keystore. ${next} ${outcome}`,
    { details: { keystoreDeploymentId: keystoreId, databaseDeploymentId: databaseId } },
  );
}

function checkedId(keystoreId: string): string {
  if (!isUuid(keystoreId)) {
    throw new OrthIdError(
      'keystore.corrupt',
      'The keystore names no valid deployment id; restore it from a backup set (orthid keystore import).',
    );
  }
  return keystoreId.toLowerCase();
}

/**
 * The deployment the database records, read on the connecting login (the backup login of a dump
 * reads it like every table); undefined when none is recorded yet.
 */
export function readRecordedDeployment(db: Database): Promise<RecordedDeployment | undefined> {
  return db.ownerTransaction(recordedDeployment);
}

/** The keystore a migrate runs with: its deployment id and the root keys it holds (destroyed ones too). */
export interface MigratingKeystore {
  deploymentId: string;
  rootKeyIds?: readonly string[];
}

/**
 * Before migrating: a database bound to another deployment is refused before anything is applied.
 * One that records none (new, or migrated before the binding existed) is about to be bound, so its
 * tenants' keys must be wrapped by root keys this keystore holds: else it is not its keystore.
 */
export async function assertMigratableWith(tx: Queryable, keystore: MigratingKeystore): Promise<void> {
  const recorded = await recordedDeployment(tx);
  if (recorded) {
    if (recorded.id !== checkedId(keystore.deploymentId)) {
      throw deploymentMismatch(recorded.id, keystore.deploymentId, 'Nothing was changed.');
    }
    return;
  }
  if (!keystore.rootKeyIds || !(await tableExists(tx, 'tenant_keys'))) return;
  const held = new Set(keystore.rootKeyIds);
  const missing = (await managedRootKeyIdsInUse(tx)).filter((id) => !held.has(id));
  if (missing.length > 0) {
    throw new OrthIdError(
      'keystore.deployment_mismatch',
      `The database records no deployment yet, and its tenants' keys are wrapped by root key(s) ${missing.join(', ')} that the keystore of deployment ${keystore.deploymentId} does not hold: it is not this database's keystore (or an older copy of it), so the database is not bound to it. Point ORTHID_KEYSTORE and the master secret at the keystore this deployment ran with and run orthid migrate again. Nothing was changed.`,
      { details: { keystoreDeploymentId: keystore.deploymentId, missingRootKeyIds: missing } },
    );
  }
}

/**
 * After migrating: records the keystore's deployment id when the database records none (the
 * first migrate of a new deployment, or of one upgraded from before the binding), else checks
 * it. Returns the binding and whether this call recorded it.
 */
export async function bindDeployment(
  tx: Queryable,
  keystoreId: string,
): Promise<{ binding: RecordedDeployment; recorded: boolean }> {
  const id = checkedId(keystoreId);
  const recorded = await recordDeployment(tx, id);
  const binding = (await recordedDeployment(tx))!;
  if (binding.id !== id) {
    throw deploymentMismatch(binding.id, keystoreId, 'The database was not bound to this keystore.');
  }
  return { binding, recorded };
}

/**
 * At start, as the application role (which may read the binding and never write it): the
 * database must record this keystore's deployment. `outcome` says what was left undone.
 */
export async function assertDeploymentBinding(
  db: Database,
  keystoreId: string,
  outcome: string,
): Promise<RecordedDeployment> {
  const recorded = await withSystem(db, recordedDeployment);
  if (!recorded) {
    throw new OrthIdError(
      'db.migrations_pending',
      `The database records no deployment id yet (it was migrated without this deployment's keystore). Run: orthid migrate, with the master secret and keystore of deployment ${keystoreId}, which records it. ${outcome}`,
    );
  }
  if (recorded.id !== checkedId(keystoreId)) throw deploymentMismatch(recorded.id, keystoreId, outcome);
  return recorded;
}
