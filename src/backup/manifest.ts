// The manifest of a backup set: written last, so its presence is what makes a set complete. It
// names everything a restore must match (versions, key ids, checksums) and never holds a secret.
import { type Static, Type } from '@sinclair/typebox';
import { OrthIdError } from '../core/errors.js';
import { fileFormat, parseJson } from '../core/file-format.js';
import type { DumpSnapshotSource } from '../storage/db/dump-source.js';

export const MANIFEST_FORMAT = 'orthid-backup-manifest';
export const MANIFEST_VERSION = 1 as const;

const Text = Type.String({ minLength: 1 });
const Count = Type.Integer({ minimum: 0 });

const ManifestPartSchema = Type.Object({
  /** File name inside the set, e.g. `db.dump.age`. */
  name: Text,
  kind: Type.Union([Type.Literal('database'), Type.Literal('objects'), Type.Literal('keystore')]),
  /** Which destination holds it: the sets' (`dest`) or the keystore exports' (`keystore-dest`). */
  location: Type.Union([Type.Literal('dest'), Type.Literal('keystore-dest')]),
  /** Key of the part relative to its destination's root. */
  key: Text,
  encrypted: Type.Boolean(),
  /** Size and SHA-256 (lowercase hex) of the stored bytes, i.e. of the ciphertext when encrypted. */
  size: Count,
  sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
});
export type ManifestPart = Static<typeof ManifestPartSchema>;
export type PartKind = ManifestPart['kind'];

const ManifestAuditCheckpointSchema = Type.Object({
  tenantId: Type.String(),
  tenant: Type.String(),
  /** Object key of the signed checkpoint in the deployment's object store. */
  key: Type.String(),
  seq: Type.String(),
  head: Type.String(),
  at: Type.String(),
});
export type ManifestAuditCheckpoint = Static<typeof ManifestAuditCheckpointSchema>;

export const ManifestSchema = Type.Object({
  format: Type.Literal(MANIFEST_FORMAT),
  formatVersion: Type.Literal(MANIFEST_VERSION),
  setId: Text,
  deploymentId: Text,
  orthidVersion: Type.String(),
  /** Latest OrthID migration applied to the dumped database. */
  schemaVersion: Count,
  region: Type.String(),
  startedAt: Text,
  finishedAt: Text,
  encrypted: Type.Boolean(),
  /** Fingerprints (`sha256:…`) of the age recipients the parts are encrypted to; never the keys. */
  recipients: Type.Array(Type.String()),
  database: Type.Object({
    engine: Type.Union([Type.Literal('postgres'), Type.Literal('pglite')]),
    serverVersion: Type.String(),
    serverVersionNum: Type.Number(),
    /** `custom` (pg_restore) or `plain` (SQL for psql). */
    format: Type.Union([Type.Literal('custom'), Type.Literal('plain')]),
    dumpTool: Type.String(),
    compression: Type.String(),
    /**
     * The deployment the dumped database records (the keystore's, checked at the dump). Absent in
     * sets written before OrthID recorded it, or of a database that records none yet.
     */
    deploymentId: Type.Optional(Text),
    /**
     * What the dump read: a primary or a standby, when its snapshot was taken and, on a standby,
     * the primary's WAL position and commit time it is consistent with (its recovery point).
     * Absent in sets written before OrthID recorded it.
     */
    source: Type.Optional(
      Type.Unsafe<DumpSnapshotSource>(Type.Object({ standby: Type.Boolean(), snapshotAt: Type.String() })),
    ),
  }),
  keys: Type.Object({
    custody: Type.String(),
    /** Root keys the data needs: those that wrap the tenants' data keys. Restore must find them. */
    rootKeyIds: Type.Array(Type.String()),
    /** Every root key the keystore export holds. */
    keystoreRootKeyIds: Type.Array(Type.String()),
    /** Whether the keystore export is part of the set (never in plaintext). */
    keystoreIncluded: Type.Boolean(),
  }),
  objects: Type.Object({ count: Count, bytes: Count }),
  parts: Type.Array(ManifestPartSchema, { minItems: 1 }),
  /**
   * Each tenant's audit checkpoint, written to the object store just before the database was
   * dumped (so the dumped chain holds its head): a restore's chain must still contain it.
   * Absent in sets written before OrthID recorded it, or by a dump that ran without the tenants' keys.
   */
  audit: Type.Optional(Type.Object({ checkpoints: Type.Array(ManifestAuditCheckpointSchema) })),
});
export type Manifest = Static<typeof ManifestSchema>;
const MANIFEST = fileFormat(ManifestSchema);

function invalid(why: string): never {
  throw new OrthIdError(
    'backup.manifest_invalid',
    `The backup manifest is not valid: ${why}. The set cannot be trusted; use another set.`,
  );
}

/** Parses and checks a manifest's text; `backup.manifest_invalid`, naming the field, when it is not one this OrthID reads. */
export function parseManifest(text: string): Manifest {
  const parsed = parseJson(text);
  if (parsed === undefined) return invalid('it is not JSON');
  const value = parsed.value as { format?: unknown; formatVersion?: unknown } | null;
  if (value?.format === MANIFEST_FORMAT && value.formatVersion !== MANIFEST_VERSION) {
    invalid(
      `it is format version ${String(value.formatVersion)}, and this OrthID reads version ${MANIFEST_VERSION}; use a newer OrthID`,
    );
  }
  const problem = MANIFEST.problem(parsed.value);
  if (problem !== undefined || !MANIFEST.is(parsed.value))
    return invalid(problem ?? 'it has the wrong shape');
  return parsed.value;
}
