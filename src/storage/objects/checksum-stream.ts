// A pass-through stream that measures the bytes flowing through it (size, SHA-256) and, when
// told what to expect, fails at the end instead of finishing: writers never commit, readers see an error.
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { OrthIdError } from '../../core/errors.js';

export interface ChecksumExpectation {
  sha256: string;
  /** The byte count, when it is known too. */
  size?: number;
  /** Builds the error to fail with; given the digest actually seen. */
  mismatch(actual: { sha256: string; size: number }): OrthIdError;
}

export class ChecksumStream extends Transform {
  #hash: Hash = createHash('sha256');
  #size = 0;
  #digest: string | undefined;
  readonly #expected: ChecksumExpectation | undefined;

  constructor(expected?: ChecksumExpectation) {
    super();
    this.#expected = expected;
  }

  /**
   * Bytes seen so far. Not named `size`: lib-storage reads `Body.size` as a Blob's length and
   * would plan the upload for that many bytes.
   */
  get byteCount(): number {
    return this.#size;
  }

  /** Hex SHA-256 of everything that passed; only once the stream has ended. */
  get sha256(): string {
    if (this.#digest === undefined) throw new Error('ChecksumStream: sha256 read before the stream ended');
    return this.#digest;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#hash.update(chunk);
    this.#size += chunk.length;
    callback(null, chunk);
  }

  // Failing here, before 'end', is what keeps a bad upload from completing: consumers see an
  // error instead of the end of the data, so a multipart upload aborts and a temp file is dropped.
  override _flush(callback: TransformCallback): void {
    this.#digest = this.#hash.digest('hex');
    if (
      this.#expected &&
      (this.#expected.sha256 !== this.#digest ||
        (this.#expected.size !== undefined && this.#expected.size !== this.#size))
    ) {
      callback(this.#expected.mismatch({ sha256: this.#digest, size: this.#size }));
      return;
    }
    callback();
  }
}

/** What a put expects when the caller named the digest: a mismatch means nothing is stored. */
export function expectUploaded(key: string, sha256: string): ChecksumExpectation {
  return {
    sha256,
    mismatch: (actual) =>
      new OrthIdError(
        'objects.checksum_mismatch',
        `The bytes sent for "${key}" have SHA-256 ${actual.sha256}, not the expected ${sha256}; nothing was stored. Upload the object again from its source.`,
      ),
  };
}

/** What a read expects from a stored object: a mismatch means the stored bytes are damaged. */
export function expectStored(key: string, where: string, sha256: string): ChecksumExpectation {
  return {
    sha256,
    mismatch: (actual) =>
      new OrthIdError(
        'objects.checksum_mismatch',
        `Object "${key}" in ${where} is corrupt: its ${actual.size} bytes have SHA-256 ${actual.sha256}, but ${sha256} was stored. Restore it from another copy.`,
      ),
  };
}
