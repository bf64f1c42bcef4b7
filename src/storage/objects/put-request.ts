// Checks a put's key and options once for every backend and turns its body into a stream, so
// the backends only ever see valid input and one body type.
import { Readable } from 'node:stream';
import { OrthIdError } from '../../core/errors.js';
import { assertValidKey } from './object-key.js';
import type { PutOptions } from './object-store.js';

export interface PutRequest {
  key: string;
  body: Readable;
  contentType: string;
  metadata: Record<string, string>;
  /** Lowercase hex when the caller told us what to expect. */
  sha256: string | undefined;
}

const DEFAULT_CONTENT_TYPE = 'application/octet-stream';
/** S3 caps user metadata at 2 KiB (keys plus values); holding both backends to it keeps them interchangeable. */
const MAX_METADATA_BYTES = 2048;
const METADATA_KEY = /^[a-z0-9][a-z0-9-]*$/;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;
/** Stored next to user metadata on S3 (`x-amz-meta-sha256`), so users may not set it. */
export const SHA256_METADATA_KEY = 'sha256';

function invalid(message: string): never {
  throw new OrthIdError('objects.invalid_argument', message);
}

export function toPutRequest(
  key: string,
  body: Readable | Buffer | Uint8Array,
  options: PutOptions = {},
): PutRequest {
  assertValidKey(key);
  let sha256: string | undefined;
  if (options.sha256 !== undefined) {
    if (!/^[0-9a-fA-F]{64}$/.test(options.sha256)) {
      invalid('The expected sha256 must be 64 hexadecimal characters (a SHA-256 digest).');
    }
    sha256 = options.sha256.toLowerCase();
  }
  const contentType = options.contentType ?? DEFAULT_CONTENT_TYPE;
  if (contentType === '' || !PRINTABLE_ASCII.test(contentType)) {
    invalid(
      `Invalid content type ${JSON.stringify(contentType)}: use a MIME type such as "application/octet-stream".`,
    );
  }
  const metadata: Record<string, string> = {};
  let metadataBytes = 0;
  for (const [name, value] of Object.entries(options.metadata ?? {})) {
    if (!METADATA_KEY.test(name) || name === SHA256_METADATA_KEY) {
      invalid(
        `Invalid metadata key ${JSON.stringify(name)}: use lowercase letters, digits and "-"; "${SHA256_METADATA_KEY}" is reserved.`,
      );
    }
    if (typeof value !== 'string' || !PRINTABLE_ASCII.test(value)) {
      invalid(`Invalid value for metadata key "${name}": use printable ASCII text.`);
    }
    metadataBytes += name.length + value.length;
    metadata[name] = value;
  }
  if (metadataBytes > MAX_METADATA_BYTES) {
    invalid(`Object metadata is ${metadataBytes} bytes; keep it under ${MAX_METADATA_BYTES} bytes.`);
  }
  return { key, body: toReadable(body), contentType, metadata, sha256 };
}

function toReadable(body: Readable | Buffer | Uint8Array): Readable {
  if (body instanceof Readable) return body;
  if (body instanceof Uint8Array) {
    // Wrapped in an array: Readable.from(buffer) would emit one chunk per byte.
    return Readable.from([Buffer.from(body.buffer, body.byteOffset, body.byteLength)], { objectMode: false });
  }
  return invalid('The object body must be a Readable stream, a Buffer or a Uint8Array.');
}
