// The age payload framing: the key derived from the file key and the 16-byte nonce, and the
// STREAM nonce (11-byte big-endian chunk counter, then a last-chunk flag). No I/O here.
import { hkdfSync } from 'node:crypto';

/** Plaintext bytes per chunk; every chunk but the last is exactly this long. */
export const CHUNK_SIZE = 64 * 1024;
export const TAG_SIZE = 16;
export const ENCRYPTED_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE;
/** The random nonce between the header and the payload, the salt of the payload key. */
export const PAYLOAD_NONCE_SIZE = 16;
export const FILE_KEY_SIZE = 16;
export const CIPHER = 'chacha20-poly1305';

export function payloadKey(fileKey: Buffer, payloadNonce: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', fileKey, payloadNonce, 'payload', 32));
}

// The counter fits in 6 of its 11 bytes up to 2^48 chunks (16 EiB); the upper 5 stay zero.
const MAX_COUNTER = 2 ** 48 - 1;

/**
 * The per-chunk nonce, kept in one reused buffer: node:crypto copies the IV when a cipher is
 * created, so the buffer can be rewritten for the next chunk straight away.
 */
export class StreamNonce {
  readonly #bytes = Buffer.alloc(12);
  #counter = 0;

  /** Index of the chunk the next call to `current` describes. */
  get counter(): number {
    return this.#counter;
  }

  current(last: boolean): Buffer {
    this.#bytes.writeUIntBE(this.#counter, 5, 6);
    this.#bytes[11] = last ? 1 : 0;
    return this.#bytes;
  }

  advance(): void {
    if (this.#counter === MAX_COUNTER) throw new RangeError('age STREAM counter exhausted (16 EiB payload)');
    this.#counter++;
  }
}
