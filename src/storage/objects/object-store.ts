// The contract every blob backend of OrthID keeps (local directory, S3): streamed writes that
// are all-or-nothing, reads that prove their bytes, and lexicographic paginated listing.
import type { Readable } from 'node:stream';

/** What a store knows about one object. */
export interface ObjectInfo {
  /** The `/`-separated key, relative to the store's root (never includes an S3 URL prefix). */
  key: string;
  /** Size in bytes. */
  size: number;
  /**
   * SHA-256 of the bytes, lowercase hex. Empty when the store does not know it: an object
   * written by another tool, or (file backend) one whose sidecar was lost or does not describe
   * the file any more. Readers then get the bytes unverified.
   */
  sha256: string;
  contentType?: string;
  lastModified: Date;
  /** User metadata given at put (lowercase keys). */
  metadata?: Record<string, string>;
}

export interface PutOptions {
  /** Defaults to `application/octet-stream`. */
  contentType?: string;
  /**
   * Small ASCII user metadata: keys match `[a-z0-9-]+` (S3 lowercases them anyway), `sha256` is
   * reserved, values are printable ASCII, 2 KiB in total (the S3 limit), so both backends agree.
   */
  metadata?: Record<string, string>;
  /** Expected SHA-256 hex; on mismatch the put fails with `objects.checksum_mismatch` and nothing is visible. */
  sha256?: string;
}

export interface ListOptions {
  /** The last key of the previous page (the `cursor` it returned). */
  cursor?: string;
  /** Page size, 1–1000; default 1000. */
  limit?: number;
}

export interface ListPage {
  items: ObjectInfo[];
  /** Present when more keys may follow; pass it back as `cursor`. */
  cursor?: string;
}

/** Leftovers of writes that never finished: how many, and the bytes they hold. */
export interface TemporaryFiles {
  count: number;
  bytes: number;
}

/**
 * A place to keep blobs (backups, exports). Keys are `/`-separated relative paths; `..`, `.`,
 * absolute keys, empty segments, backslashes, NUL and segments starting with `.orthid` (the
 * store's own bookkeeping) are rejected with `objects.invalid_key`.
 *
 * @example
 * const store = await openObjectStore('s3://backups/orthid?region=eu-west-1');
 * const info = await store.put('2025/01/dump.age', createReadStream(file));
 * const { body } = await store.get(info.key); // errors with objects.checksum_mismatch if bytes changed
 */
export interface ObjectStore {
  /** The store's URL, never with credentials. */
  readonly url: string;
  /**
   * Streams `body` into `key`, computing size and SHA-256 on the way. The object becomes visible
   * only once it is complete (and matches `options.sha256` when given); a failed put leaves any
   * previous object under `key` untouched.
   */
  put(key: string, body: Readable | Buffer | Uint8Array, options?: PutOptions): Promise<ObjectInfo>;
  /**
   * Opens `key` for reading (`objects.not_found` if missing). When the SHA-256 is known the body
   * is verified as it is read and errors with `objects.checksum_mismatch` at the end if the bytes differ.
   */
  get(key: string): Promise<{ info: ObjectInfo; body: Readable }>;
  /** The object's info, or undefined when there is no such key. */
  head(key: string): Promise<ObjectInfo | undefined>;
  /** Objects whose keys start with `prefix` (`''` for all), in UTF-8 byte order, one page at a time. */
  list(prefix: string, options?: ListOptions): Promise<ListPage>;
  /** Removes `key`; removing a missing key succeeds. */
  delete(key: string): Promise<void>;
  /** Where the bytes live: the S3 region, or undefined for a local directory. */
  region(): Promise<string | undefined>;
  /**
   * The temporary files (S3: staging objects) of writes whose process died, counted, and removed
   * with `reclaim`. A write still in progress, here or in another process, is never counted.
   */
  temporaryFiles(options: { reclaim: boolean }): Promise<TemporaryFiles>;
}
