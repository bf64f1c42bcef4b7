// Writes a signed document bundle: a pax tar holding manifest.json, manifest.jws (a compact JWS
// over the manifest bytes with the payload detached) and the files the manifest lists.
import { CompactSign, importJWK } from 'jose';
import { PAX_PREFIX, TAR_END, tarEntryHeader, tarPadding } from '../backup/tar-writer.js';
import { OrthIdError } from '../core/errors.js';
import type { TenantSigningKey } from '../crypto/signing-keys.js';
import {
  BUNDLE_FORMAT,
  BUNDLE_JWS_TYPE,
  BUNDLE_VERSION,
  type BundleKind,
  type BundleManifest,
  encodeManifest,
  MANIFEST_PATH,
  SIGNATURE_PATH,
  sha256Hex,
} from './bundle-manifest.js';

export interface BundleFile {
  /** A plain relative name such as `events.ndjson.gz` (no directories, not a manifest name). */
  path: string;
  bytes: Uint8Array;
  contentType: string;
}

export interface NewBundle {
  kind: BundleKind;
  tenant: { id: string; slug: string };
  issuer: string;
  createdAt: Date;
  subject: Record<string, string>;
  files: BundleFile[];
}

/** The pax record that repeats an entry's SHA-256: an unsigned hint used to name a damaged entry. */
export const ENTRY_SHA256_RECORD = `${PAX_PREFIX}sha256`;

const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** Signs the manifest bytes and returns the compact JWS with its payload removed (`header..signature`). */
export async function signManifest(manifestBytes: Uint8Array, key: TenantSigningKey): Promise<string> {
  const privateKey = await importJWK(key.privateJwk, key.alg);
  const jws = await new CompactSign(manifestBytes)
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: BUNDLE_JWS_TYPE })
    .sign(privateKey);
  const [header, , signature] = jws.split('.');
  return `${header}..${signature}`;
}

function entry(path: string, bytes: Uint8Array, mtime: Date): Buffer[] {
  return [
    tarEntryHeader({ path, size: bytes.length, mtime, records: { [ENTRY_SHA256_RECORD]: sha256Hex(bytes) } }),
    Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    tarPadding(bytes.length),
  ];
}

/**
 * Builds a bundle in memory, signed with `key` (the tenant's active signing key).
 *
 * @example
 * const { bytes } = await writeBundle({ kind: 'user-export', tenant, issuer, createdAt: now, subject: { userId }, files }, key);
 */
export async function writeBundle(
  input: NewBundle,
  key: TenantSigningKey,
): Promise<{ bytes: Buffer; manifest: BundleManifest }> {
  const seen = new Set<string>();
  for (const file of input.files) {
    if (
      !FILE_NAME.test(file.path) ||
      file.path === MANIFEST_PATH ||
      file.path === SIGNATURE_PATH ||
      seen.has(file.path)
    ) {
      throw new OrthIdError(
        'internal.unexpected',
        `A bundle cannot hold a file named ${JSON.stringify(file.path)}.`,
      );
    }
    seen.add(file.path);
  }
  const manifest: BundleManifest = {
    format: BUNDLE_FORMAT,
    version: BUNDLE_VERSION,
    kind: input.kind,
    tenant: { id: input.tenant.id, slug: input.tenant.slug },
    issuer: input.issuer,
    createdAt: input.createdAt.toISOString(),
    subject: input.subject,
    files: input.files.map((f) => ({
      path: f.path,
      size: f.bytes.length,
      sha256: sha256Hex(f.bytes),
      contentType: f.contentType,
    })),
  };
  const manifestBytes = encodeManifest(manifest);
  const signature = Buffer.from(await signManifest(manifestBytes, key), 'ascii');
  const bytes = Buffer.concat([
    ...entry(MANIFEST_PATH, manifestBytes, input.createdAt),
    ...entry(SIGNATURE_PATH, signature, input.createdAt),
    ...input.files.flatMap((f) => entry(f.path, f.bytes, input.createdAt)),
    TAR_END,
  ]);
  return { bytes, manifest };
}
