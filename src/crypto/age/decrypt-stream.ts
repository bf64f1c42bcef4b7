// Decrypts an age v1 file for X25519 identities as a stream. Releases plaintext only chunk by
// chunk after authentication; truncation and trailing data surface as an error at the end.
import { createDecipheriv } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { OrthIdError } from '../../core/errors.js';
import { ByteQueue } from './byte-queue.js';
import { MAX_HEADER_LENGTH, type ParsedHeader, parseHeader, verifyHeaderMac } from './header.js';
import { parseIdentity, type X25519Identity } from './identity.js';
import {
  CIPHER,
  ENCRYPTED_CHUNK_SIZE,
  PAYLOAD_NONCE_SIZE,
  payloadKey,
  StreamNonce,
  TAG_SIZE,
} from './payload-format.js';
import { unwrapFileKey, X25519_STANZA_TYPE } from './x25519-stanza.js';

const HIGH_WATER_MARK = 4 * ENCRYPTED_CHUNK_SIZE;
const RESTORE = 'Restore from another copy and discard any output already written.';

function failed(message: string): OrthIdError {
  return new OrthIdError('age.decrypt_failed', message);
}

/**
 * A Transform that turns an age v1 file into its plaintext, using the first identity that
 * opens one of its X25519 stanzas. Every failure is `age.decrypt_failed`; because it can come
 * after some plaintext was emitted, write to a temporary file and rename only on success.
 *
 * @example
 * await pipeline(createReadStream('backup.age'), decryptStream(parseIdentityFile(keyText)), sink);
 */
export function decryptStream(identities: readonly string[]): Transform {
  if (identities.length === 0) {
    throw new OrthIdError(
      'age.identity_invalid',
      'No identities given. Pass the age identity file (AGE-SECRET-KEY-1…) the backup was encrypted to.',
    );
  }
  const parsed = identities.map((text, i) =>
    parseIdentity(
      text,
      identities.length === 1 ? 'The identity' : `Identity ${i + 1} of ${identities.length}`,
    ),
  );
  return new AgeDecryptTransform(parsed);
}

class AgeDecryptTransform extends Transform {
  readonly #identities: readonly X25519Identity[];
  /** Bytes of the header and payload nonce seen so far; null once the payload key is known. */
  #head: Buffer[] | null = [];
  #headLength = 0;
  #header: ParsedHeader | null = null;
  #key: Buffer = Buffer.alloc(0);
  readonly #nonce = new StreamNonce();
  readonly #queue = new ByteQueue();

  constructor(identities: readonly X25519Identity[]) {
    super({ readableHighWaterMark: HIGH_WATER_MARK, writableHighWaterMark: HIGH_WATER_MARK });
    this.#identities = identities;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      const payload = this.#head === null ? chunk : this.#readHead(chunk);
      if (payload !== null) {
        this.#queue.push(payload);
        // A full chunk is only known not to be the last when more bytes follow it.
        while (this.#queue.length > ENCRYPTED_CHUNK_SIZE) this.#open(ENCRYPTED_CHUNK_SIZE, false);
      }
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      if (this.#head !== null) {
        throw failed(
          this.#headLength === 0
            ? 'The input is empty, not an age file. Check that the backup file was fully written.'
            : `The age file is truncated: it ends before its encrypted payload begins. ${RESTORE}`,
        );
      }
      if (this.#queue.length < TAG_SIZE) {
        throw failed(`The age file is truncated: its encrypted payload is missing or cut short. ${RESTORE}`);
      }
      this.#open(this.#queue.length, true);
      this.#key.fill(0);
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#key.fill(0);
    callback(error);
  }

  /** Accumulates the header and nonce; returns the payload bytes after them once both are complete. */
  #readHead(chunk: Buffer): Buffer | null {
    const parts = this.#head!;
    parts.push(chunk);
    this.#headLength += chunk.length;
    // Join and parse only when something may have completed, so tiny input chunks stay linear:
    // the first bytes (non-age input fails at once), a newline (the MAC line may have ended),
    // nonce bytes after a parsed header, or enough bytes to exceed the header limit.
    const worthParsing =
      this.#header !== null ||
      parts.length === 1 ||
      chunk.includes(0x0a) ||
      this.#headLength > MAX_HEADER_LENGTH;
    if (!worthParsing) return null;
    const head = parts.length === 1 ? parts[0]! : Buffer.concat(parts, this.#headLength);
    this.#head = [head];
    this.#header ??= parseHeader(head);
    const header = this.#header;
    if (header === null || head.length < header.length + PAYLOAD_NONCE_SIZE) return null;
    const fileKey = this.#unwrapFileKey(header);
    verifyHeaderMac(header, fileKey);
    this.#key = payloadKey(fileKey, head.subarray(header.length, header.length + PAYLOAD_NONCE_SIZE));
    fileKey.fill(0);
    this.#head = null;
    return head.subarray(header.length + PAYLOAD_NONCE_SIZE);
  }

  #unwrapFileKey(header: ParsedHeader): Buffer {
    const types = [...new Set(header.stanzas.map((stanza) => stanza.args[0]!))];
    if (types.includes('scrypt')) {
      throw failed(
        'The file is encrypted with a passphrase, not to a recipient; OrthID cannot open it. Decrypt it with `age -d` and re-encrypt it to your backup recipient.',
      );
    }
    if (!types.includes(X25519_STANZA_TYPE)) {
      throw failed(
        `The file has no X25519 recipient (only ${types.join(', ')}), so no age1… identity can open it. Decrypt it with the tool that made it.`,
      );
    }
    for (const stanza of header.stanzas) {
      if (stanza.args[0] !== X25519_STANZA_TYPE) continue;
      for (const identity of this.#identities) {
        const fileKey = unwrapFileKey(stanza, identity);
        if (fileKey !== null) return fileKey;
      }
    }
    throw failed(
      'No identity matches this file: it was encrypted to other recipients. Use the identity file whose recipient ' +
        '(`age-keygen -y IDENTITY_FILE`) is listed, by fingerprint, in the backup manifest.',
    );
  }

  /** Authenticates and emits the next chunk of `length` encrypted bytes; throws with a diagnosis if it fails. */
  #open(length: number, last: boolean): void {
    const pieces = this.#queue.take(length);
    const plaintext = this.#tryOpen(pieces, length, last);
    if (plaintext === null) throw this.#diagnose(pieces, length, last);
    if (last && length === TAG_SIZE && this.#nonce.counter > 0) {
      throw failed(
        `The age file ends with an empty chunk, which the format forbids: it was altered. ${RESTORE}`,
      );
    }
    for (const piece of plaintext) this.push(piece);
    this.#nonce.advance();
  }

  #tryOpen(pieces: readonly Buffer[], length: number, last: boolean): Buffer[] | null {
    const decipher = createDecipheriv(CIPHER, this.#key, this.#nonce.current(last), {
      authTagLength: TAG_SIZE,
    });
    const plaintext: Buffer[] = [];
    const tagParts: Buffer[] = [];
    let ciphertextLeft = length - TAG_SIZE;
    for (const piece of pieces) {
      if (ciphertextLeft >= piece.length) {
        plaintext.push(decipher.update(piece));
        ciphertextLeft -= piece.length;
      } else {
        if (ciphertextLeft > 0) plaintext.push(decipher.update(piece.subarray(0, ciphertextLeft)));
        tagParts.push(piece.subarray(ciphertextLeft));
        ciphertextLeft = 0;
      }
    }
    decipher.setAuthTag(tagParts.length === 1 ? tagParts[0]! : Buffer.concat(tagParts));
    try {
      decipher.final();
      return plaintext;
    } catch {
      return null;
    }
  }

  /**
   * Tells a modified chunk apart from the two structural failures the last-chunk flag exposes.
   * A chunk that authenticates under the other flag is released before the error, as the
   * reference implementation does (the C2SP vectors check exactly what was released).
   */
  #diagnose(pieces: readonly Buffer[], length: number, last: boolean): OrthIdError {
    const chunk = this.#nonce.counter;
    const asLast = last ? null : this.#tryOpen(pieces, length, true);
    if (asLast !== null) {
      for (const piece of asLast) this.push(piece);
      return failed(
        `The age file has unexpected data after its last chunk (chunk ${chunk}): it was appended to or concatenated. ${RESTORE}`,
      );
    }
    const asMiddle = last && length === ENCRYPTED_CHUNK_SIZE ? this.#tryOpen(pieces, length, false) : null;
    if (asMiddle !== null) {
      for (const piece of asMiddle) this.push(piece);
      return failed(
        `The age file is truncated: it ends after chunk ${chunk} without its final chunk. ${RESTORE}`,
      );
    }
    return failed(
      `Chunk ${chunk} of the encrypted payload failed authentication: the file was modified, truncated or has data appended. ${RESTORE}`,
    );
  }
}
