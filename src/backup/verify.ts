// `orthid backup verify`: reads every part of a set once, end to end, and checks that its stored
// bytes match the manifest (size, SHA-256), that it decrypts with the operator's identity, and
// that what it holds is readable (pg_restore --list, SQL text, objects against their checksums,
// a keystore export holding the key ids the data needs). Decrypted bytes never touch disk.
import { PassThrough, pipeline, type Readable, type Transform } from 'node:stream';
import type { Clock } from '../core/clock.js';
import { isOrthIdError, OrthIdError, toOrthIdError } from '../core/errors.js';
import { decryptStream, readIdentityFile } from '../crypto/age/index.js';
import { decodeKeystoreExport } from '../crypto/keystore-export.js';
import { pgRestoreList } from '../storage/db/pg-restore-list.js';
import { ChecksumStream } from '../storage/objects/checksum-stream.js';
import type { ObjectStore } from '../storage/objects/object-store.js';
import type { BackupStores } from './destination.js';
import type { Manifest, ManifestPart } from './manifest.js';
import { checkObjectsArchive } from './objects-archive.js';
import { assertSetKeystoreMatches } from './set-binding.js';
import { FILES } from './set-layout.js';
import { type BackupSet, findBackupSet } from './sets.js';

export interface VerifyCheck {
  name: 'present' | 'checksum' | 'decrypts' | 'readable';
  ok: boolean;
  detail: string;
}

export interface PartReport {
  part: string;
  ok: boolean;
  checks: VerifyCheck[];
  /** The first failure's stable code and message. */
  error?: { code: string; message: string };
}

export interface VerifyReport {
  ok: boolean;
  set: string;
  at: string;
  parts: PartReport[];
}

export interface VerifyDeps {
  dest: ObjectStore;
  keystoreStore: ObjectStore;
  /** age identities (AGE-SECRET-KEY-1…) that open the set; required when it is encrypted. */
  identities: readonly string[];
  clock: Clock;
}

/** Reads a part's plaintext and says what it found; throws when it is not what the manifest says. */
type ContentCheck = (plain: AsyncIterable<Buffer>) => Promise<string>;

async function checkPlainSql(plain: AsyncIterable<Buffer>): Promise<string> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let head = '';
  let tail = '';
  let bytes = 0;
  try {
    for await (const chunk of plain) {
      bytes += chunk.length;
      const text = decoder.decode(chunk, { stream: true });
      if (head.length < 4096) head += text.slice(0, 4096 - head.length);
      tail = (tail + text).slice(-4096);
    }
    decoder.decode();
  } catch (error) {
    if (isOrthIdError(error)) throw error;
    throw new OrthIdError('backup.dump_unreadable', 'The SQL dump is not UTF-8 text.');
  }
  if (!head.includes('PostgreSQL database dump')) {
    throw new OrthIdError(
      'backup.dump_unreadable',
      'The SQL dump does not start like a pg_dump plain-format dump.',
    );
  }
  if (!tail.includes('PostgreSQL database dump complete')) {
    throw new OrthIdError(
      'backup.dump_unreadable',
      'The SQL dump is cut short: its "dump complete" trailer is missing.',
    );
  }
  return `plain SQL, ${bytes} bytes, complete`;
}

function keystoreExportCheck(manifest: Manifest): ContentCheck {
  return async (plain) => {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of plain) {
      size += chunk.length;
      if (size > 16 * 1024 * 1024)
        throw new OrthIdError('keystore.corrupt', 'The keystore export is implausibly large.');
      chunks.push(chunk);
    }
    // The same format check (version included) that restore and `keystore import` apply.
    const keystore = decodeKeystoreExport(Buffer.concat(chunks));
    const ids = keystore.rootKeys.map((k) => k.id);
    assertSetKeystoreMatches(manifest, keystore);
    if (keystore.deploymentId !== manifest.deploymentId) {
      throw new OrthIdError(
        'backup.keystore_mismatch',
        `The keystore export belongs to deployment ${keystore.deploymentId}, the set to ${manifest.deploymentId}.`,
      );
    }
    const missing = manifest.keys.rootKeyIds.filter((id) => !ids.includes(id));
    if (missing.length > 0) {
      throw new OrthIdError(
        'backup.keystore_mismatch',
        `The keystore export lacks root key(s) ${missing.join(', ')} that the data needs.`,
      );
    }
    return `keystore export of deployment ${manifest.deploymentId} with ${ids.length} root key(s), including all ${manifest.keys.rootKeyIds.length} the data needs`;
  };
}

function contentCheckFor(part: ManifestPart, manifest: Manifest): ContentCheck {
  if (part.kind === 'keystore') return keystoreExportCheck(manifest);
  if (part.kind === 'objects') {
    return async (plain) => {
      const stats = await checkObjectsArchive(plain);
      if (stats.count !== manifest.objects.count) {
        throw new OrthIdError(
          'backup.archive_invalid',
          `The archive holds ${stats.count} objects; the manifest says ${manifest.objects.count}.`,
        );
      }
      return `${stats.count} objects (${stats.bytes} bytes), each matching its SHA-256`;
    };
  }
  if (manifest.database.format === 'plain') return checkPlainSql;
  return async (plain) => `pg_restore --list read ${(await pgRestoreList(plain)).entries} TOC entries`;
}

/**
 * Hashes a part's stored bytes while feeding them (decrypted when `decrypt` is given) to `check`,
 * reading to the end even after the check failed, so the checksum always covers every byte.
 */
async function readPart(
  body: Readable,
  decrypt: (() => Transform) | undefined,
  check: ContentCheck,
): Promise<{
  sha256: string;
  size: number;
  sourceError?: unknown;
  decryptError?: unknown;
  checkError?: unknown;
  detail?: string;
}> {
  const feed = new PassThrough();
  let decryptError: unknown;
  let checkError: unknown;
  let stopped = false;
  const plain = decrypt
    ? pipeline(feed, decrypt(), (error) => {
        if (error) decryptError ??= error;
      })
    : feed;
  const checked = check(plain as AsyncIterable<Buffer>).then(
    (detail) => detail,
    (error) => {
      checkError = error;
      stopped = true;
      return undefined;
    },
  );
  // The stored bytes are measured as they pass. A store whose own checksum fails at the end (or a
  // read that breaks off) ends the measurement there, so every byte seen is still hashed.
  const measured = new ChecksumStream();
  let sourceError: unknown;
  body.once('error', (error) => {
    sourceError = error;
    measured.end();
  });
  body.pipe(measured);
  for await (const chunk of measured as AsyncIterable<Buffer>) {
    if (!stopped && !feed.destroyed && !feed.write(chunk)) {
      await Promise.race([new Promise((resolve) => feed.once('drain', resolve)), checked]);
    }
  }
  feed.end();
  const detail = await checked;
  // A decryption failure surfaces to the check as its input erroring; name it as what it is.
  if (
    decryptError !== undefined &&
    (checkError === undefined || !isOrthIdError(checkError) || checkError.code === 'age.decrypt_failed')
  ) {
    checkError = undefined;
  }
  return { sha256: measured.sha256, size: measured.byteCount, sourceError, decryptError, checkError, detail };
}

function fail(
  checks: VerifyCheck[],
  name: VerifyCheck['name'],
  error: unknown,
): { code: string; message: string } {
  const e = toOrthIdError(error);
  const message = isOrthIdError(error) ? e.message : `${(error as Error)?.message ?? String(error)}`;
  checks.push({ name, ok: false, detail: message });
  return { code: e.code, message };
}

async function verifyPart(deps: VerifyDeps, manifest: Manifest, part: ManifestPart): Promise<PartReport> {
  const checks: VerifyCheck[] = [];
  const store = part.location === 'keystore-dest' ? deps.keystoreStore : deps.dest;
  const report = (error?: { code: string; message: string }): PartReport =>
    error
      ? { part: part.name, ok: false, checks, error }
      : { part: part.name, ok: checks.every((c) => c.ok), checks };

  let body: Readable;
  try {
    body = (await store.get(part.key)).body;
  } catch (error) {
    if (isOrthIdError(error, 'objects.not_found')) {
      return report(
        fail(
          checks,
          'present',
          new OrthIdError('backup.part_missing', `Part ${part.name} is missing from ${part.key}.`),
        ),
      );
    }
    return report(fail(checks, 'present', error));
  }
  checks.push({ name: 'present', ok: true, detail: part.key });

  const decrypt = part.encrypted ? () => decryptStream(deps.identities) : undefined;
  const result = await readPart(body, decrypt, contentCheckFor(part, manifest));

  let first: { code: string; message: string } | undefined;
  const note = (error: { code: string; message: string }) => {
    first ??= error;
  };
  if (result.sha256 === part.sha256 && result.size === part.size) {
    checks.push({ name: 'checksum', ok: true, detail: `${result.size} bytes, SHA-256 ${result.sha256}` });
  } else {
    note(
      fail(
        checks,
        'checksum',
        new OrthIdError(
          'backup.checksum_mismatch',
          `Part ${part.name} is damaged: its ${result.size} stored bytes have SHA-256 ${result.sha256}, but the manifest records ${part.size} bytes with ${part.sha256}.`,
          { details: { part: part.name } },
        ),
      ),
    );
  }
  if (part.encrypted) {
    if (result.decryptError !== undefined) {
      note(fail(checks, 'decrypts', result.decryptError));
    } else {
      checks.push({ name: 'decrypts', ok: true, detail: 'age: every chunk authenticated' });
    }
  }
  if (result.checkError !== undefined) note(fail(checks, 'readable', result.checkError));
  else if (result.decryptError === undefined && result.detail !== undefined)
    checks.push({ name: 'readable', ok: true, detail: result.detail });
  if (first === undefined && result.sourceError !== undefined)
    note(fail(checks, 'checksum', result.sourceError));
  if (first !== undefined) {
    const named = first as { code: string; message: string };
    const message = named.message.includes(part.name) ? named.message : `${part.name}: ${named.message}`;
    return report({ code: named.code, message });
  }
  return report();
}

/** Verifies every part of `set`; the report says which part failed and why. */
export async function verifyBackupSet(
  deps: VerifyDeps,
  set: BackupSet & { manifest: Manifest },
): Promise<VerifyReport> {
  const { manifest } = set;
  if (manifest.encrypted && deps.identities.length === 0) {
    throw new OrthIdError(
      'backup.identity_required',
      'The set is encrypted: pass the age identity that opens it with --identity FILE (or ORTHID_BACKUP_AGE_IDENTITY_FILE).',
    );
  }
  const parts: PartReport[] = [];
  for (const part of manifest.parts) parts.push(await verifyPart(deps, manifest, part));
  return { ok: parts.every((p) => p.ok), set: manifest.setId, at: deps.clock.now().toISOString(), parts };
}

/** Records the outcome beside the set, so `backup list` shows it and prune keeps the newest verified set. */
export async function recordVerifyReport(
  dest: ObjectStore,
  set: BackupSet,
  report: VerifyReport,
): Promise<void> {
  await dest.put(
    `${set.path}/${FILES.verifyReport}`,
    Buffer.from(`${JSON.stringify({ ...report, finishedAt: report.at }, null, 2)}\n`),
    {
      contentType: 'application/json',
    },
  );
}

/** What `verifyNamedSet` found, and whether the report could be written beside the set. */
export interface NamedSetVerification {
  report: VerifyReport;
  /** False when the destination refused the report (read-only?); the outcome stands. */
  recorded: boolean;
}

/**
 * Verifies the set `ref` names (an id or `latest`) in `stores`, opening it with the identities in
 * `identityFile` when it is encrypted, and records the outcome beside it.
 */
export async function verifyNamedSet(
  stores: BackupStores,
  ref: string,
  identityFile: string | undefined,
  clock: Clock,
): Promise<NamedSetVerification> {
  const { dest, keystoreDest: keystoreStore } = stores;
  const set = await findBackupSet(dest, ref, keystoreStore);
  let identities: string[] = [];
  if (set.manifest.encrypted) {
    if (identityFile === undefined) {
      throw new OrthIdError(
        'backup.identity_required',
        'The set is encrypted: pass --identity FILE (or set ORTHID_BACKUP_AGE_IDENTITY_FILE).',
      );
    }
    identities = await readIdentityFile(identityFile);
  }
  const report = await verifyBackupSet({ dest, keystoreStore, identities, clock }, set);
  const recorded = await recordVerifyReport(dest, set, report).then(
    () => true,
    () => false,
  );
  return { report, recorded };
}
