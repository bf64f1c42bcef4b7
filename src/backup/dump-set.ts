// `orthid backup dump`: one backup set — database dump, objects archive, keystore export, each
// streamed through age to its destination — and the manifest, written last. Every refusal
// (no recipients, plaintext upload, wrong region, old pg_dump, another dump running) comes
// before the first byte is written. See backup-flow.mermaid.
import { pipeline, Readable, Transform, type TransformCallback } from 'node:stream';
import type { Clock } from '../core/clock.js';
import { OrthIdError } from '../core/errors.js';
import { encryptStream, parseRecipient, recipientFingerprint } from '../crypto/age/index.js';
import { exportKeystore } from '../crypto/keystore-export.js';
import type { KeystoreContents } from '../crypto/managed-keystore.js';
import type { DumpSource } from '../storage/db/dump-source.js';
import type { ObjectInfo, ObjectStore } from '../storage/objects/object-store.js';
import { VERSION } from '../version.js';
import { rootKeysInUse } from './backup.queries.js';
import {
  assertInRegion,
  describeDestination,
  isRemote,
  type OpenStore,
  prefixWithin,
  type ServerSideEncryptionOption,
  sameDestination,
  withServerSideEncryption,
} from './destination.js';
import {
  MANIFEST_FORMAT,
  MANIFEST_VERSION,
  type Manifest,
  type ManifestAuditCheckpoint,
  type ManifestPart,
  type PartKind,
} from './manifest.js';
import { type ArchiveStats, objectsArchive } from './objects-archive.js';
import { assertExportHoldsKeys, checkDumpKeystore } from './set-binding.js';
import { FILES, partFileName, setIdFor, setPathFor } from './set-layout.js';
import { interruptedDumpFiles } from './sets.js';

export interface DumpOptions {
  encrypt: boolean;
  /** The operator means the set to leave the host: a destination must have been named. */
  upload: boolean;
  /** age recipients (age1…). */
  recipients: readonly string[];
  dest: string;
  /** Whether `dest` was named (flag or ORTHID_BACKUP_DEST) rather than the local default. */
  destConfigured: boolean;
  /** Where the keystore export goes; undefined: beside the set. */
  keystoreDest?: string | undefined;
  sse?: ServerSideEncryptionOption | undefined;
  allowPlaintextUpload?: boolean;
}

/** What a dump needs from the keystore: its identity and an export of its contents. */
export interface DumpKeystore {
  readonly kind: string;
  readonly deploymentId: string;
  rootKeyIds(): string[];
  exportContents(): KeystoreContents;
}

export type DumpEvent =
  | { step: 'started'; setId: string; dest: string; keystoreDest: string }
  | { step: 'warning'; message: string }
  | { step: 'part.started'; part: string }
  | { step: 'part.progress'; part: string; bytes: number; elapsedMs: number }
  | { step: 'part.finished'; part: string; size: number; sha256: string; elapsedMs: number }
  | { step: 'finished'; setId: string; key: string };

export interface DumpDeps {
  source: DumpSource;
  /** The deployment's object store and its URL. */
  objects: ObjectStore;
  objectStoreUrl: string;
  keystore: DumpKeystore;
  openStore: OpenStore;
  clock: Clock;
  /** ORTHID_REGION. */
  region: string;
  onEvent?: (event: DumpEvent) => void;
  /** Writes each tenant's audit checkpoint; the manifest names them. Absent: none are written. */
  auditCheckpoints?: (() => Promise<ManifestAuditCheckpoint[]>) | undefined;
}

/** A dump's options, checked: what it will write where, decided before anything is opened. */
export interface DumpPlan {
  encrypt: boolean;
  recipients: string[];
  dest: string;
  keystoreDest: string;
  remote: boolean;
  warnings: string[];
}

/** Checks a dump's options; throws before anything is opened or written. */
export function planDump(options: DumpOptions): DumpPlan {
  const warnings: string[] = [];
  const recipients = [...options.recipients];
  if (options.encrypt && recipients.length === 0) {
    throw new OrthIdError(
      'backup.no_recipients',
      '--encrypt needs at least one age recipient: pass --recipient age1… (repeatable), --recipients-file FILE, or set ORTHID_BACKUP_AGE_RECIPIENTS. Nothing was written.',
    );
  }
  if (options.encrypt) {
    for (const [i, r] of recipients.entries()) {
      parseRecipient(r, recipients.length === 1 ? 'The recipient' : `Recipient ${i + 1}`);
    }
  }
  if (options.upload && !options.destConfigured) {
    throw new OrthIdError(
      'backup.destination_invalid',
      '--upload needs a destination: set ORTHID_BACKUP_DEST (or --dest) to s3://bucket/prefix?region=… or a mounted file:/// directory.',
    );
  }
  if (
    options.sse !== undefined &&
    !isRemote(options.dest) &&
    !isRemote(options.keystoreDest ?? options.dest)
  ) {
    throw new OrthIdError(
      'backup.destination_invalid',
      `--sse applies to s3:// destinations; ${describeDestination(options.dest)} is a local directory.`,
    );
  }
  const dest = withServerSideEncryption(options.dest, options.sse);
  const keystoreDest = withServerSideEncryption(options.keystoreDest ?? options.dest, options.sse);
  const remote = isRemote(dest) || isRemote(keystoreDest);
  if (remote && !options.encrypt && !options.allowPlaintextUpload) {
    throw new OrthIdError(
      'backup.plaintext_upload',
      `Refusing to upload an unencrypted backup to ${describeDestination(dest)}: add --encrypt (with recipients), or --allow-plaintext-upload if the bucket is the only protection you want.`,
    );
  }
  if (options.encrypt && sameDestination(dest, keystoreDest)) {
    warnings.push(
      `The keystore export goes to the same destination as the data (${describeDestination(dest)}): whoever can read one can read both. Set --keystore-dest / ORTHID_BACKUP_KEYSTORE_DEST to a place with stricter access.`,
    );
  }
  if (!options.encrypt) {
    warnings.push(
      'The set is not encrypted, so it holds no keystore export (that would be the root keys in plaintext). Use --encrypt, or keep `orthid keystore export` output with the set.',
    );
  }
  return { encrypt: options.encrypt, recipients, dest, keystoreDest, remote, warnings };
}

/** Counts the bytes flowing to a destination and reports progress at most twice a second. */
class ProgressMeter extends Transform {
  bytes = 0;
  #last = 0;
  readonly #started = Date.now();

  constructor(private readonly report: (bytes: number, elapsedMs: number) => void) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    const now = Date.now();
    if (now - this.#last >= 500) {
      this.#last = now;
      this.report(this.bytes, now - this.#started);
    }
    callback(null, chunk);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Writes one backup set and returns its manifest. The manifest is written last: a dump that
 * fails or is killed leaves parts without a manifest, an incomplete set never offered for restore.
 */
export async function dumpBackupSet(deps: DumpDeps, options: DumpOptions): Promise<Manifest> {
  const plan = planDump(options);
  const emit = deps.onEvent ?? (() => {});
  const { source, keystore } = deps;

  // Versions, the pg_dump check and the backup role's reach: refusals that need no destination.
  const info = await source.describe();
  // The keystore must be the database's and hold every key it names (set-binding.ts).
  const { databaseDeploymentId } = await checkDumpKeystore(source.db, keystore);
  const dest = await deps.openStore(plan.dest);
  const keystoreStore = sameDestination(plan.dest, plan.keystoreDest)
    ? dest
    : await deps.openStore(plan.keystoreDest);
  await assertInRegion(dest, plan.dest, deps.region, 'backup destination');
  if (plan.encrypt)
    await assertInRegion(keystoreStore, plan.keystoreDest, deps.region, 'keystore destination');
  const exclude = [plan.dest, plan.keystoreDest]
    .map((url) => prefixWithin(deps.objectStoreUrl, url))
    .filter((p): p is string => p !== undefined);
  if (exclude.includes('')) {
    throw new OrthIdError(
      'backup.destination_invalid',
      `The backup destination is the object store itself (${describeDestination(deps.objectStoreUrl)}); use another bucket or a prefix inside it.`,
    );
  }
  for (const message of plan.warnings) emit({ step: 'warning', message });

  const lock = await source.lock();
  try {
    // What killed dumps left behind goes first, so a destination filled by them has room again.
    await interruptedDumpFiles(dest, keystoreStore, { reclaim: true });
    let started = deps.clock.now();
    let setId = setIdFor(keystore.deploymentId, started);
    // Set ids have one-second resolution; a dump re-run within the second after a killed one
    // must not mix its parts into the dead one's directory.
    for (
      let attempt = 0;
      (await dest.list(`${setPathFor(setId, started)}/`, { limit: 1 })).items.length > 0;
      attempt++
    ) {
      if (attempt >= 3)
        throw new OrthIdError('backup.locked', `Set ${setId} already exists; try again in a second.`);
      await sleep(1000 - (started.getTime() % 1000));
      started = deps.clock.now();
      setId = setIdFor(keystore.deploymentId, started);
    }
    const setPath = setPathFor(setId, started);
    emit({
      step: 'started',
      setId,
      dest: describeDestination(plan.dest),
      keystoreDest: describeDestination(plan.keystoreDest),
    });

    const parts: ManifestPart[] = [];
    const writePart = async (
      name: string,
      kind: PartKind,
      store: ObjectStore,
      location: ManifestPart['location'],
      body: Readable,
      /** `encrypt`: through age here; `sealed`: already age-encrypted; `plain`: as is. */
      mode: 'encrypt' | 'sealed' | 'plain',
    ): Promise<void> => {
      const key = `${setPath}/${name}`;
      emit({ step: 'part.started', part: name });
      const meter = new ProgressMeter((bytes, elapsedMs) =>
        emit({ step: 'part.progress', part: name, bytes, elapsedMs }),
      );
      const startedAt = Date.now();
      // pipeline() destroys every stage when one fails, so the store sees the error and stores nothing.
      const stream =
        mode === 'encrypt'
          ? pipeline(body, encryptStream(plan.recipients), meter, () => {})
          : pipeline(body, meter, () => {});
      const encrypted = mode !== 'plain';
      const stored: ObjectInfo = await store.put(key, stream, {
        contentType: encrypted ? 'application/age' : 'application/octet-stream',
      });
      parts.push({ name, kind, location, key, encrypted, size: stored.size, sha256: stored.sha256 });
      emit({
        step: 'part.finished',
        part: name,
        size: stored.size,
        sha256: stored.sha256,
        elapsedMs: Date.now() - startedAt,
      });
    };

    // 1. The database, first: it is what the set is of. The audit checkpoints come just before,
    // so the dumped chains hold every head they name, and the objects archive holds them.
    const checkpoints = deps.auditCheckpoints ? await deps.auditCheckpoints() : undefined;
    const rootKeys = await source.db.ownerTransaction(rootKeysInUse);
    const rootKeyIds = [...new Set(rootKeys.map((k) => k.id))];
    const dbDump = await source.dump();
    const dbName = partFileName(dbDump.format === 'custom' ? FILES.dbCustom : FILES.dbPlain, plan.encrypt);
    const mode = plan.encrypt ? 'encrypt' : 'plain';
    await writePart(dbName, 'database', dest, 'dest', dbDump.stream, mode);

    // 2. Every object.
    const stats: ArchiveStats = { count: 0, bytes: 0 };
    const archive = Readable.from(objectsArchive(deps.objects, { exclude, stats }), { objectMode: false });
    await writePart(partFileName(FILES.objects, plan.encrypt), 'objects', dest, 'dest', archive, mode);

    // 3. The keys, in the same window, to their own destination; never in plaintext. Root keys
    // are only ever added, so an export taken after the dump holds every key the dump needs.
    const contents = keystore.exportContents();
    const keystoreRootKeyIds = contents.rootKeys.map((k) => k.id);
    assertExportHoldsKeys(contents, rootKeys);
    const missing = rootKeyIds.filter((id) => !keystoreRootKeyIds.includes(id));
    if (missing.length > 0) {
      emit({
        step: 'warning',
        message: `The database uses root key(s) ${missing.join(', ')} held outside OrthID (a PKCS#11 token or KMS); back them up where they live.`,
      });
    }
    if (plan.encrypt) {
      const exported = exportKeystore(contents, plan.recipients, deps.clock.now());
      await writePart(FILES.keystore, 'keystore', keystoreStore, 'keystore-dest', exported, 'sealed');
    }

    // 4. The manifest, last.
    const manifest: Manifest = {
      format: MANIFEST_FORMAT,
      formatVersion: MANIFEST_VERSION,
      setId,
      deploymentId: keystore.deploymentId,
      orthidVersion: VERSION,
      schemaVersion: info.schemaVersion,
      region: deps.region,
      startedAt: started.toISOString(),
      finishedAt: deps.clock.now().toISOString(),
      encrypted: plan.encrypt,
      recipients: plan.encrypt ? plan.recipients.map(recipientFingerprint) : [],
      database: {
        engine: info.engine,
        serverVersion: info.serverVersion,
        serverVersionNum: info.serverVersionNum,
        format: dbDump.format,
        dumpTool: info.dumpTool,
        compression: dbDump.compression,
        ...(databaseDeploymentId ? { deploymentId: databaseDeploymentId } : {}),
        ...(dbDump.source ? { source: dbDump.source } : {}),
      },
      keys: { custody: keystore.kind, rootKeyIds, keystoreRootKeyIds, keystoreIncluded: plan.encrypt },
      objects: stats,
      parts,
      ...(checkpoints ? { audit: { checkpoints } } : {}),
    };
    const key = `${setPath}/${FILES.manifest}`;
    await dest.put(key, Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`), {
      contentType: 'application/json',
    });
    emit({ step: 'finished', setId, key });
    return manifest;
  } finally {
    await lock.release();
  }
}
