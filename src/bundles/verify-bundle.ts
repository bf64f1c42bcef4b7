// Verifies a signed document bundle offline: the archive is exactly as writeBundle lays it out
// (every header, padding and end marker byte), the detached JWS over manifest.json verifies
// against the given JWKS, and every file matches the manifest's SHA-256 and size, none missing
// or extra. Any failure is `bundle.invalid` with `details.file` naming the damaged entry.
import { compactVerify, createLocalJWKSet, decodeProtectedHeader, errors, type JSONWebKeySet } from 'jose';
import { BLOCK, TAR_END, tarEntryHeader } from '../backup/tar-writer.js';
import { OrthIdError } from '../core/errors.js';
import {
  BUNDLE_FORMAT,
  BUNDLE_JWS_TYPE,
  BUNDLE_KINDS,
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
}

function parsePax(data: Buffer): Record<string, string> | undefined {
  const records: Record<string, string> = {};
  let offset = 0;
  while (offset < data.length) {
    const space = data.indexOf(0x20, offset);
    const length = Number(data.subarray(offset, space).toString('ascii'));
    if (space === -1 || !Number.isSafeInteger(length) || length <= 0 || offset + length > data.length)
      return undefined;
    if (data[offset + length - 1] !== 0x0a) return undefined;
    const record = data.subarray(space + 1, offset + length - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq === -1) return undefined;
    records[record.slice(0, eq)] = record.slice(eq + 1);
    offset += length;
  }
  return records;
}

const padded = (size: number) => Math.ceil(size / BLOCK) * BLOCK;

/** Reads the entries, insisting every header byte is the one writeBundle would have written. */
function readEntries(bytes: Buffer): Entry[] {
  const entries: Entry[] = [];
  let offset = 0;
  for (;;) {
    const at = entries.length === 0 ? MANIFEST_PATH : `the entry after ${entries.at(-1)!.path}`;
    const remaining = bytes.length - offset;
    if (remaining === TAR_END.length && bytes.subarray(offset).equals(TAR_END)) return entries;
    if (remaining < 2 * BLOCK)
      throw invalid(at, 'archive_damaged', 'is cut short (the archive has no proper end)');
    const block = bytes.subarray(offset, offset + BLOCK);
    const paxSize = Number.parseInt(block.subarray(124, 135).toString('ascii'), 8);
    if (
      block[156] !== 0x78 ||
      !Number.isSafeInteger(paxSize) ||
      paxSize <= 0 ||
      offset + BLOCK + paxSize > bytes.length
    ) {
      throw invalid(at, 'archive_damaged', 'has a damaged tar header');
    }
    const records = parsePax(bytes.subarray(offset + BLOCK, offset + BLOCK + paxSize));
    const path = records?.path;
    const size = Number(records?.size);
    const mtime = Number(records?.mtime);
    if (!records || !path || !Number.isSafeInteger(size) || size < 0 || !Number.isFinite(mtime)) {
      throw invalid(at, 'archive_damaged', 'has a damaged tar header');
    }
    const { path: _p, size: _s, mtime: _m, ...extra } = records;
    const expected = tarEntryHeader({
      path,
      size,
      mtime: new Date(Math.round(mtime * 1000)),
      records: extra,
    });
    const bodyStart = offset + expected.length;
    const end = bodyStart + padded(size);
    if (!bytes.subarray(offset, bodyStart).equals(expected) || end > bytes.length) {
      throw invalid(path, 'archive_damaged', 'has a damaged tar header');
    }
    if (!bytes.subarray(bodyStart + size, end).every((b) => b === 0)) {
      throw invalid(path, 'archive_damaged', 'has damaged padding after its content');
    }
    entries.push({ path, body: bytes.subarray(bodyStart, bodyStart + size), records: extra });
    offset = end;
  }
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
  let manifest: BundleManifest;
  try {
    manifest = JSON.parse(body.toString('utf8')) as BundleManifest;
  } catch (error) {
    throw invalid(MANIFEST_PATH, 'manifest_malformed', 'is not JSON', error);
  }
  if (
    manifest?.format !== BUNDLE_FORMAT ||
    manifest.version !== BUNDLE_VERSION ||
    !BUNDLE_KINDS.includes(manifest.kind) ||
    !Array.isArray(manifest.files)
  ) {
    throw invalid(
      MANIFEST_PATH,
      'manifest_malformed',
      `is not an ${BUNDLE_FORMAT} version ${BUNDLE_VERSION} manifest`,
    );
  }
  return manifest;
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
  const entries = readEntries(await collect(source));
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
