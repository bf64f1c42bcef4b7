// What `orthid keystore init|status|export|import` do with the keystore file itself. They run
// where the file is, without the database (a new host imports its keystore before its database
// is restored), so they take the configuration rather than a wired OrthID; what they need from
// the database (rotation progress, the audit log) they are handed as a typed operation call.
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Config } from '../config/config.js';
import { writeFileAtomically } from '../core/atomic-file.js';
import type { Clock } from '../core/clock.js';
import { readIdentityFile } from '../crypto/age/index.js';
import type { CustodyInitResult } from '../crypto/custody/byok-custody.js';
import { openExternalCustody } from '../crypto/custody/deployment-custody.js';
import type { RootKeyInfo } from '../crypto/key-custody.js';
import { exportKeystore, readKeystoreExport } from '../crypto/keystore-export.js';
import { exportKeystoreShares, readKeystoreShares } from '../crypto/keystore-shares.js';
import { type DestroyedKey, ManagedKeystore } from '../crypto/managed-keystore.js';
import { resolveMasterSecret } from '../crypto/master-secret.js';
import { openKeystore } from '../crypto/open-keystore.js';
import type { RotationProgress } from './key-rotation.js';

export interface KeystoreInitResult {
  created: boolean;
  path: string;
  deploymentId: string;
  custody:
    | { kind: 'managed' }
    | ({ kind: 'pkcs11' | 'awskms'; reference: string } & Partial<CustodyInitResult>);
  rootKeyIds: string[];
}

export interface KeystoreInitOutcome {
  result: KeystoreInitResult;
  /** The ceremony BYOK custody ran: the root key it generated or adopted. */
  ceremony: (CustodyInitResult & { kind: string; reference: string }) | undefined;
  /** A master secret was generated in the data directory (the operator must back it up). */
  masterGenerated: boolean;
}

/**
 * Creates the keystore when absent and, under BYOK custody, runs the key ceremony. The custody
 * opens first: a token or binding that is not there refuses before any file is written, and a
 * ceremony that fails takes back the keystore (and master secret) this run created.
 */
export async function initKeystore(config: Config): Promise<KeystoreInitOutcome> {
  const custody = await openExternalCustody(config);
  let opened: Awaited<ReturnType<typeof openKeystore>>;
  let ceremony: CustodyInitResult | undefined;
  try {
    await mkdir(dirname(config.keystorePath), { recursive: true, mode: 0o700 });
    opened = await openKeystore(config, true);
    try {
      ceremony = await custody?.init();
    } catch (error) {
      if (opened.created) await rm(opened.keystore.path, { force: true });
      if (opened.masterGenerated && config.masterKey.kind === 'generated')
        await rm(config.masterKey.path, { force: true });
      throw error;
    }
  } finally {
    await custody?.close();
  }
  const { keystore: ks, created, masterGenerated } = opened;
  return {
    result: {
      created,
      path: ks.path,
      deploymentId: ks.deploymentId,
      custody: custody
        ? { kind: custody.kind, reference: custody.reference, ...ceremony }
        : { kind: 'managed' },
      rootKeyIds: ceremony ? [ceremony.rootKeyId] : ks.rootKeyIds(),
    },
    ceremony:
      ceremony && custody ? { ...ceremony, kind: custody.kind, reference: custody.reference } : undefined,
    masterGenerated,
  };
}

export interface KeystoreStatus {
  custody: string;
  reference: string;
  deploymentId: string;
  rootKeyIds: string[];
  rootKeys: RootKeyInfo[];
  destroyedKeys: DestroyedKey[];
  rotations: RotationProgress[];
}

/**
 * The custody, root keys and destroyed keys (never key material), with the rotation progress
 * `rotations` reads from the database; a host that only holds the keystore has none.
 */
export async function keystoreStatus(
  config: Config,
  rotations: () => Promise<RotationProgress[]>,
): Promise<KeystoreStatus> {
  const { keystore: ks } = await openKeystore(config, false);
  const custody = (await openExternalCustody(config)) ?? ks;
  const rootKeys = await custody.rootKeys().finally(() => custody.close());
  const hasDatabase = config.database.kind === 'postgres' || existsSync(config.database.dir);
  return {
    custody: custody.kind,
    reference: custody.reference,
    deploymentId: ks.deploymentId,
    rootKeyIds: rootKeys.map((k) => k.id),
    rootKeys,
    destroyedKeys: ks.destroyedKeys(),
    rotations: hasDatabase ? await rotations() : [],
  };
}

/** A keystore export or import, as the system tenant's audit log records it (the keystore.audit operation). */
export type KeystoreTransferEvent =
  | { action: 'keystore.exported'; details: { files: number; threshold: number | null; recipients: number } }
  | { action: 'keystore.imported'; details: { files: number } };

export interface KeystoreTransferDeps {
  /** Records the event in the audit log (in this process or through a running server). */
  record(event: KeystoreTransferEvent): Promise<unknown>;
  /**
   * Told when it could not be recorded. Importing onto a new host comes before its database is
   * restored; then there is no log yet: the transfer stands, and the operator is told.
   */
  notRecorded(error: unknown): void;
}

async function auditTransfer(deps: KeystoreTransferDeps, event: KeystoreTransferEvent): Promise<void> {
  try {
    await deps.record(event);
  } catch (error) {
    deps.notRecorded(error);
  }
}

export interface KeystoreExportRequest {
  recipients: string[];
  /** The file to write; with a threshold, the prefix of the share files. */
  output: string;
  /** Split into one share per recipient, any `threshold` of which restore the keystore. */
  threshold?: number | undefined;
}

export interface KeystoreExportResult {
  files: string[];
  threshold: number | undefined;
  deploymentId: string;
  rootKeyIds: string[];
}

/** Writes the keystore (mode 0600), age-encrypted to the recipients or split into shares, and audits it. */
export async function exportKeystoreFiles(
  config: Config,
  request: KeystoreExportRequest,
  clock: Clock,
  deps: KeystoreTransferDeps,
): Promise<KeystoreExportResult> {
  const { keystore: ks } = await openKeystore(config, false);
  const now = clock.now();
  let files: string[];
  if (request.threshold === undefined) {
    await writeFileAtomically(request.output, exportKeystore(ks.exportContents(), request.recipients, now));
    files = [request.output];
  } else {
    const set = exportKeystoreShares(ks.exportContents(), request.recipients, request.threshold, now);
    files = set.shares.map((_, i) => `${request.output}.share-${i + 1}-of-${set.shares.length}.age`);
    for (const [i, share] of set.shares.entries()) await writeFileAtomically(files[i]!, share);
  }
  const result = {
    files,
    threshold: request.threshold,
    deploymentId: ks.deploymentId,
    rootKeyIds: ks.rootKeyIds(),
  };
  await auditTransfer(deps, {
    action: 'keystore.exported',
    details: {
      files: files.length,
      threshold: result.threshold ?? null,
      recipients: request.recipients.length,
    },
  });
  return result;
}

export interface KeystoreImportResult {
  path: string;
  deploymentId: string;
  rootKeyIds: string[];
}

/**
 * Restores an export (one file) or any K of its shares into this host's keystore, sealed with
 * this host's master secret, and audits it.
 */
export async function importKeystoreFiles(
  config: Config,
  files: string[],
  identityFiles: string[],
  deps: KeystoreTransferDeps,
): Promise<KeystoreImportResult> {
  const identities: string[] = [];
  for (const file of identityFiles) identities.push(...(await readIdentityFile(file)));
  const contents =
    files.length === 1
      ? await readKeystoreExport(createReadStream(files[0]!), identities)
      : await readKeystoreShares(
          files.map((f) => createReadStream(f)),
          identities,
        );
  const master = await resolveMasterSecret(config.masterKey);
  const ks = await ManagedKeystore.import(config.keystorePath, master.value, contents);
  const result = { path: ks.path, deploymentId: ks.deploymentId, rootKeyIds: ks.rootKeyIds() };
  await auditTransfer(deps, { action: 'keystore.imported', details: { files: files.length } });
  return result;
}
