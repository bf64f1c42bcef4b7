// The manifest of a signed document bundle: what the archive holds (every file with its SHA-256
// and size), whose it is (tenant, issuer) and when it was made. Its bytes are what the JWS signs.
import { createHash } from 'node:crypto';

export const BUNDLE_FORMAT = 'orthid-bundle';
export const BUNDLE_VERSION = 1;
export const MANIFEST_PATH = 'manifest.json';
export const SIGNATURE_PATH = 'manifest.jws';
/** The JWS `typ` of a bundle signature, so it cannot be mistaken for (or replayed as) a token. */
export const BUNDLE_JWS_TYPE = 'orthid-bundle+jws';

export type BundleKind = 'audit-archive' | 'user-export';
export const BUNDLE_KINDS: readonly BundleKind[] = ['audit-archive', 'user-export'];

export interface BundleFileEntry {
  path: string;
  size: number;
  /** Lowercase hex. */
  sha256: string;
  contentType: string;
}

export interface BundleManifest {
  format: typeof BUNDLE_FORMAT;
  version: typeof BUNDLE_VERSION;
  kind: BundleKind;
  tenant: { id: string; slug: string };
  issuer: string;
  createdAt: string;
  /** What the bundle is about, e.g. `{ userId }` or `{ from, to }`. */
  subject: Record<string, string>;
  files: BundleFileEntry[];
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** The exact manifest bytes that are stored and signed (pretty JSON, one trailing newline). */
export function encodeManifest(manifest: BundleManifest): Buffer {
  return Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`, 'utf8');
}
