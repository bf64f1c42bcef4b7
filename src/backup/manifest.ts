// The manifest of a backup set: written last, so its presence is what makes a set complete. It
// names everything a restore must match (versions, key ids, checksums) and never holds a secret.
import { OrthIdError } from '../core/errors.js';
import type { DumpSnapshotSource } from '../storage/db/dump-source.js';

export const MANIFEST_FORMAT = 'orthid-backup-manifest';
export const MANIFEST_VERSION = 1;

export type PartKind = 'database' | 'objects' | 'keystore';

export interface ManifestPart {
  /** File name inside the set, e.g. `db.dump.age`. */
  name: string;
  kind: PartKind;
  /** Which destination holds it: the sets' (`dest`) or the keystore exports' (`keystore-dest`). */
  location: 'dest' | 'keystore-dest';
  /** Key of the part relative to its destination's root. */
  key: string;
  encrypted: boolean;
  /** Size and SHA-256 (lowercase hex) of the stored bytes, i.e. of the ciphertext when encrypted. */
  size: number;
  sha256: string;
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  formatVersion: typeof MANIFEST_VERSION;
  setId: string;
  deploymentId: string;
  orthidVersion: string;
  /** Latest OrthID migration applied to the dumped database. */
  schemaVersion: number;
  region: string;
  startedAt: string;
  finishedAt: string;
  encrypted: boolean;
  /** Fingerprints (`sha256:…`) of the age recipients the parts are encrypted to; never the keys. */
  recipients: string[];
  database: {
    engine: 'postgres' | 'pglite';
    serverVersion: string;
    serverVersionNum: number;
    /** `custom` (pg_restore) or `plain` (SQL for psql). */
    format: 'custom' | 'plain';
    dumpTool: string;
    compression: string;
    /**
     * What the dump read: a primary or a standby, when its snapshot was taken and, on a standby,
     * the primary's WAL position and commit time it is consistent with (its recovery point).
     * Absent in sets written before OrthID recorded it.
     */
    source?: DumpSnapshotSource;
  };
  keys: {
    custody: string;
    /** Root keys the data needs: those that wrap the tenants' data keys. Restore must find them. */
    rootKeyIds: string[];
    /** Every root key the keystore export holds. */
    keystoreRootKeyIds: string[];
    /** Whether the keystore export is part of the set (never in plaintext). */
    keystoreIncluded: boolean;
  };
  objects: { count: number; bytes: number };
  parts: ManifestPart[];
  /**
   * Each tenant's audit checkpoint, written to the object store just before the database was
   * dumped (so the dumped chain holds its head): a restore's chain must still contain it.
   * Absent in sets written before OrthID recorded it, or by a dump that ran without the tenants' keys.
   */
  audit?: { checkpoints: ManifestAuditCheckpoint[] };
}

export interface ManifestAuditCheckpoint {
  tenantId: string;
  tenant: string;
  /** Object key of the signed checkpoint in the deployment's object store. */
  key: string;
  seq: string;
  head: string;
  at: string;
}

function invalid(why: string): never {
  throw new OrthIdError(
    'backup.manifest_invalid',
    `The backup manifest is not valid: ${why}. The set cannot be trusted; use another set.`,
  );
}

const isText = (v: unknown): v is string => typeof v === 'string' && v !== '';
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Parses and checks a manifest's text; `backup.manifest_invalid` when it is not one this OrthID reads. */
export function parseManifest(text: string): Manifest {
  let value: Manifest;
  try {
    value = JSON.parse(text) as Manifest;
  } catch {
    return invalid('it is not JSON');
  }
  if (value?.format !== MANIFEST_FORMAT) invalid(`its format is not "${MANIFEST_FORMAT}"`);
  if (value.formatVersion !== MANIFEST_VERSION) {
    invalid(
      `it is format version ${String(value.formatVersion)}, and this OrthID reads version ${MANIFEST_VERSION}; use a newer OrthID`,
    );
  }
  if (
    !isText(value.setId) ||
    !isText(value.deploymentId) ||
    !isText(value.startedAt) ||
    !isText(value.finishedAt)
  ) {
    invalid('set id, deployment id or times are missing');
  }
  if (!isCount(value.schemaVersion)) invalid('the schema version is missing');
  if (!value.database || !['custom', 'plain'].includes(value.database.format))
    invalid('the database format is missing');
  if (!value.keys || !Array.isArray(value.keys.rootKeyIds)) invalid('the key ids are missing');
  if (!Array.isArray(value.parts) || value.parts.length === 0) invalid('it lists no parts');
  for (const part of value.parts) {
    if (
      !isText(part.name) ||
      !isText(part.key) ||
      !isCount(part.size) ||
      !/^[0-9a-f]{64}$/.test(part.sha256 ?? '')
    ) {
      invalid(`part ${JSON.stringify(part?.name)} lacks its key, size or SHA-256`);
    }
    if (part.location !== 'dest' && part.location !== 'keystore-dest')
      invalid(`part ${part.name} has no location`);
  }
  return value;
}
