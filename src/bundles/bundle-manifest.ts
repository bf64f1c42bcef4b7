// The manifest of a signed document bundle: what the archive holds (every file with its SHA-256
// and size), whose it is (tenant, issuer) and when it was made. Its bytes are what the JWS signs.
import { createHash } from 'node:crypto';
import { type Static, Type } from '@sinclair/typebox';
import { fileFormat } from '../core/file-format.js';

export const BUNDLE_FORMAT = 'orthid-bundle';
export const BUNDLE_VERSION = 1 as const;
export const MANIFEST_PATH = 'manifest.json';
export const SIGNATURE_PATH = 'manifest.jws';
/** The JWS `typ` of a bundle signature, so it cannot be mistaken for (or replayed as) a token. */
export const BUNDLE_JWS_TYPE = 'orthid-bundle+jws';

export const BUNDLE_KINDS = ['audit-archive', 'user-export'] as const;
export type BundleKind = (typeof BUNDLE_KINDS)[number];

const BundleFileEntry = Type.Object({
  path: Type.String({ minLength: 1 }),
  size: Type.Integer({ minimum: 0 }),
  /** Lowercase hex. */
  sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
  contentType: Type.String(),
});
export type BundleFileEntry = Static<typeof BundleFileEntry>;

/** The manifest format; its static type is `BundleManifest`. */
export const BUNDLE_MANIFEST = fileFormat(
  Type.Object({
    format: Type.Literal(BUNDLE_FORMAT),
    version: Type.Literal(BUNDLE_VERSION),
    kind: Type.Union(BUNDLE_KINDS.map((kind) => Type.Literal(kind))),
    tenant: Type.Object({ id: Type.String(), slug: Type.String() }),
    issuer: Type.String(),
    createdAt: Type.String(),
    /** What the bundle is about, e.g. `{ userId }` or `{ from, to }`. */
    subject: Type.Record(Type.String(), Type.String()),
    files: Type.Array(BundleFileEntry),
  }),
);
export type BundleManifest = Static<typeof BUNDLE_MANIFEST.schema>;

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The exact manifest bytes that are stored and signed (pretty JSON, one trailing newline). */
export function encodeManifest(manifest: BundleManifest): Buffer {
  return Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`, 'utf8');
}
