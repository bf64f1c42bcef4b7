// Keystore exports: the keystore's contents as JSON, age-encrypted to operator recipients so the
// stock `age -d` opens them, and read back (with an age identity) for import on another host.
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { OrthIdError } from '../core/errors.js';
import { parseJson } from '../core/file-format.js';
import { decryptStream, encryptStream } from './age/index.js';
import { KEYSTORE_EXPORT, type KeystoreContents, type KeystoreExport } from './keystore-format.js';

/** An age-encrypted export of `contents`; recipients are checked before any byte is produced. */
export function exportKeystore(
  contents: KeystoreContents,
  recipients: readonly string[],
  exportedAt: Date,
): Readable {
  const encrypt = encryptStream(recipients);
  return Readable.from([encodeKeystoreExport(contents, exportedAt)]).pipe(encrypt);
}

/** The plaintext body of an export (before age encryption); keystore shares seal the same bytes. */
export function encodeKeystoreExport(contents: KeystoreContents, exportedAt: Date): Buffer {
  const body: KeystoreExport = {
    format: 'orthid-keystore-export',
    version: 1,
    exportedAt: exportedAt.toISOString(),
    keystore: contents,
  };
  return Buffer.from(JSON.stringify(body));
}

/** Decrypts and validates an export; `age.decrypt_failed` when no identity opens it. */
export async function readKeystoreExport(
  input: Readable,
  identities: readonly string[],
): Promise<KeystoreContents> {
  const chunks: Buffer[] = [];
  await pipeline(input, decryptStream(identities), async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) chunks.push(chunk);
  });
  return decodeKeystoreExport(Buffer.concat(chunks));
}

/**
 * Parses and validates a decrypted export body against the export format (version included);
 * `keystore.corrupt`, naming the field, when it is not one.
 */
export function decodeKeystoreExport(bytes: Buffer): KeystoreContents {
  const parsed = parseJson(bytes.toString('utf8'));
  const problem = parsed === undefined ? 'it is not JSON' : KEYSTORE_EXPORT.problem(parsed.value);
  if (parsed === undefined || problem !== undefined || !KEYSTORE_EXPORT.is(parsed.value)) {
    throw new OrthIdError(
      'keystore.corrupt',
      `The file decrypted but is not an OrthID keystore export (version 1): ${problem}.`,
    );
  }
  return parsed.value.keystore;
}
