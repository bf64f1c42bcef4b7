// Verifies a signed document bundle offline: the archive is exactly as writeBundle lays it out
// (every header, padding and end marker byte), the detached JWS over manifest.json verifies
// against the given JWKS, and every file matches the manifest's SHA-256 and size, none missing
// or extra. Any failure is `bundle.invalid` with `details.file` naming the damaged entry.
import { compactVerify, createLocalJWKSet, decodeProtectedHeader, errors, type JSONWebKeySet } from 'jose';
import { readTar } from '../backup/tar-reader.js';
import { TAR_END, tarEntryHeader, tarPadding } from '../backup/tar-writer.js';
import { isOrthIdError, OrthIdError } from '../core/errors.js';
import { parseJson } from '../core/file-format.js';
import {
  BUNDLE_FORMAT,
  BUNDLE_JWS_TYPE,
  BUNDLE_MANIFEST,
  BUNDLE_VERSION,
  type BundleManifest,
  MANIFEST_PATH,
  SIGNATURE_PATH,
  sha256Hex,
} from './bundle-manifest.js';
import { ENTRY_SHA256_RECORD } from './write-bundle.js';

export type BundleFailure =
  | 'archive_damaged'
  | 'missing'
  | 'unexpected'
  | 'signature_malformed'
  | 'unknown_key'
  | 'bad_signature'
  | 'manifest_malformed'
  | 'size_mismatch'
  | 'digest_mismatch';

export interface BundleReport {
  valid: true;
  kind: BundleManifest['kind'];
  tenant: BundleManifest['tenant'];
  issuer: string;
  createdAt: string;
  subject: Record<string, string>;
  kid: string;
  alg: string;
  files: BundleManifest['files'];
}

/** Largest bundle verified in memory (the archives OrthID writes are far smaller). */
export const MAX_BUNDLE_BYTES = 1024 * 1024 * 1024;

const ALGORITHMS = ['EdDSA', 'ES256', 'RS256'];

function invalid(file: string, reason: BundleFailure, why: string, cause?: unknown): OrthIdError {
  return new OrthIdError('bundle.invalid', `The bundle is not valid: ${file} ${why}.`, {
    details: { file, reason },
    ...(cause === undefined ? {} : { cause }),
  });
}

interface Entry {
  path: string;
  body: Buffer;
  records: Record<string, string>;
  /** Where the entry (its headers) starts and where its padding ends, in the archive. */
  start: number;
  end: number;
}

/** The bytes writeBundle writes for one entry: its headers, its body and its padding. */
function layout(entry: Pick<Entry, 'path' | 'body' | 'records'>, mtime: Date): Buffer {
  return Buffer.concat([
    tarEntryHeader({ path: entry.path, size: entry.body.length, mtime, records: entry.records }),
    entry.body,
    tarPadding(entry.body.length),
  ]);
}

/** The files a manifest lists, before it is verified: used only to name a damaged entry. */
function listedPaths(body: Buffer): string[] {
  const parsed = parseJson(body.toString('utf8'));
  return parsed !== undefined && BUNDLE_MANIFEST.is(parsed.value)
    ? parsed.value.files.map((f) => f.path)
    : [];
}

/**
 * Reads the entries with the one tar reader, then insists every header, padding and end-marker
 * byte is the one writeBundle would have written; an entry whose header is too damaged to read
 * is named by its place in the manifest.
 */
async function readEntries(bytes: Buffer): Promise<Entry[]> {
  const entries: Entry[] = [];
  let offset = 0;
  /** The order writeBundle writes entries in, once manifest.json was read (for naming only). */
  let order: string[] = [MANIFEST_PATH, SIGNATURE_PATH];
  const next = () =>
    entries.every((entry, i) => entry.path === order[i]) && order[entries.length] !== undefined
      ? order[entries.length]!
      : `the entry after ${entries.at(-1)!.path}`;
  try {
    for await (const entry of readTar([bytes])) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry.body) chunks.push(chunk);
      const { path: _p, size: _s, mtime: _m, ...records } = entry.records;
      const read = { path: entry.path, body: Buffer.concat(chunks), records };
      const expected = layout(read, entry.mtime);
      const end = offset + expected.length;
      if (!bytes.subarray(offset, end).equals(expected)) {
        const bodyEnd = entry.bodyOffset + read.body.length;
        const inPadding = bytes.subarray(offset, bodyEnd).equals(expected.subarray(0, bodyEnd - offset));
        throw invalid(
          entry.path,
          'archive_damaged',
          inPadding ? 'has damaged padding after its content' : 'has a damaged tar header',
        );
      }
      entries.push({ ...read, start: offset, end });
      offset = end;
      if (entries.length === 1) order = [...order, ...listedPaths(read.body)];
    }
  } catch (error) {
    if (isOrthIdError(error, 'backup.archive_invalid')) {
      throw invalid(
        offset === bytes.length - TAR_END.length ? 'the end of the archive' : next(),
        'archive_damaged',
        /end-of-archive|ends/.test(error.message)
          ? 'is cut short (the archive has no proper end)'
          : 'has a damaged tar header',
        error,
      );
    }
    throw error;
  }
  if (!bytes.subarray(offset).equals(TAR_END)) {
    throw invalid('the end of the archive', 'archive_damaged', 'is not exactly the end-of-archive marker');
  }
  return entries;
}

async function collect(source: Uint8Array | AsyncIterable<Uint8Array | string>): Promise<Buffer> {
  if (source instanceof Uint8Array) return Buffer.from(source.buffer, source.byteOffset, source.byteLength);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of source) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk);
    total += buffer.length;
    if (total > MAX_BUNDLE_BYTES) {
      throw invalid(
        'the archive',
        'archive_damaged',
        `is larger than ${MAX_BUNDLE_BYTES} bytes, more than any bundle`,
      );
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks);
}

function jwksOf(jwks: JSONWebKeySet) {
  try {
    return createLocalJWKSet(jwks);
  } catch (error) {
    throw new OrthIdError('bundle.jwks_invalid', 'The JWKS is not a JSON Web Key Set ({"keys": [...]}).', {
      cause: error,
    });
  }
}

/** Names the entry a failed signature most likely comes from, by the entries' unsigned SHA-256 hints. */
function culprit(manifest: Entry, signature: Entry): string {
  if (signature.records[ENTRY_SHA256_RECORD] !== sha256Hex(signature.body)) return SIGNATURE_PATH;
  if (manifest.records[ENTRY_SHA256_RECORD] !== sha256Hex(manifest.body)) return MANIFEST_PATH;
  return SIGNATURE_PATH;
}

async function checkSignature(
  manifest: Entry,
  signature: Entry,
  jwks: JSONWebKeySet,
): Promise<{ kid: string; alg: string }> {
  const keys = jwksOf(jwks);
  const jws = signature.body.toString('ascii');
  const parts = /^([A-Za-z0-9_-]+)\.\.([A-Za-z0-9_-]+)$/.exec(jws);
  let header: ReturnType<typeof decodeProtectedHeader> | undefined;
  try {
    header = parts ? decodeProtectedHeader(jws) : undefined;
  } catch {
    header = undefined;
  }
  if (
    !parts ||
    !header ||
    typeof header.kid !== 'string' ||
    header.typ !== BUNDLE_JWS_TYPE ||
    header.b64 !== undefined
  ) {
    throw invalid(SIGNATURE_PATH, 'signature_malformed', 'is not a detached compact JWS with kid and alg');
  }
  try {
    await compactVerify(`${parts[1]}.${manifest.body.toString('base64url')}.${parts[2]}`, keys, {
      algorithms: ALGORITHMS,
    });
  } catch (error) {
    if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) {
      throw invalid(
        SIGNATURE_PATH,
        'unknown_key',
        `is signed with key ${header.kid}, which is not in the given JWKS (another tenant's, or a retired key)`,
        error,
      );
    }
    if (error instanceof errors.JWSSignatureVerificationFailed) {
      const file = culprit(manifest, signature);
      throw invalid(
        file,
        'bad_signature',
        file === MANIFEST_PATH ? 'was changed after it was signed' : 'does not match manifest.json',
        error,
      );
    }
    throw invalid(SIGNATURE_PATH, 'signature_malformed', 'cannot be verified', error);
  }
  return { kid: header.kid, alg: String(header.alg) };
}

function parseManifest(body: Buffer): BundleManifest {
  const parsed = parseJson(body.toString('utf8'));
  if (parsed === undefined) throw invalid(MANIFEST_PATH, 'manifest_malformed', 'is not JSON');
  const problem = BUNDLE_MANIFEST.problem(parsed.value);
  if (problem !== undefined || !BUNDLE_MANIFEST.is(parsed.value)) {
    throw invalid(
      MANIFEST_PATH,
      'manifest_malformed',
      `is not an ${BUNDLE_FORMAT} version ${BUNDLE_VERSION} manifest (${problem})`,
    );
  }
  return parsed.value;
}

/**
 * Verifies a bundle against a JWKS (e.g. the tenant's `/jwks`, saved at export time). Resolves
 * with what the bundle holds; rejects with `bundle.invalid` naming the file in `details.file`.
 *
 * @example
 * const report = await verifyBundle(await readFile('export.bundle'), JSON.parse(await readFile('jwks.json', 'utf8')));
 */
export async function verifyBundle(
  source: Uint8Array | AsyncIterable<Uint8Array | string>,
  jwks: JSONWebKeySet,
): Promise<BundleReport> {
  const entries = await readEntries(await collect(source));
  const [manifestEntry, signatureEntry, ...rest] = entries;
  if (manifestEntry?.path !== MANIFEST_PATH)
    throw invalid(MANIFEST_PATH, 'missing', 'is missing (it must be the first entry)');
  if (signatureEntry?.path !== SIGNATURE_PATH)
    throw invalid(SIGNATURE_PATH, 'missing', 'is missing (it must follow manifest.json)');
  const { kid, alg } = await checkSignature(manifestEntry, signatureEntry, jwks);
  const manifest = parseManifest(manifestEntry.body);
  const byPath = new Map<string, Entry>();
  for (const entry of rest) {
    if (byPath.has(entry.path) || entry.path === MANIFEST_PATH || entry.path === SIGNATURE_PATH) {
      throw invalid(entry.path, 'unexpected', 'appears more than once');
    }
    byPath.set(entry.path, entry);
  }
  for (const file of manifest.files) {
    const entry = byPath.get(file.path);
    if (!entry) throw invalid(file.path, 'missing', 'is listed in the manifest but missing');
    if (entry.body.length !== file.size)
      throw invalid(
        file.path,
        'size_mismatch',
        `has ${entry.body.length} bytes, the manifest says ${file.size}`,
      );
    if (sha256Hex(entry.body) !== file.sha256)
      throw invalid(file.path, 'digest_mismatch', 'does not match its SHA-256 in the manifest');
    byPath.delete(file.path);
  }
  const [extra] = byPath.keys();
  if (extra !== undefined) throw invalid(extra, 'unexpected', 'is in the archive but not in the manifest');
  return {
    valid: true,
    kind: manifest.kind,
    tenant: manifest.tenant,
    issuer: manifest.issuer,
    createdAt: manifest.createdAt,
    subject: manifest.subject,
    kid,
    alg,
    files: manifest.files,
  };
}
