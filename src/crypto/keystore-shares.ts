// Keystore exports split for a key ceremony: the export body is sealed once under a fresh
// AES-256-GCM key, that key is split K-of-N with Shamir, and each custodian gets one age file
// holding their share and the sealed body, so any K custodians together can rebuild the keystore
// and fewer learn nothing.
//
// A share file is an age v1 file (opens with the stock `age -d`) to one recipient, holding JSON:
//   { format: 'orthid-keystore-share', version: 2, setId, index, threshold, total, deploymentId,
//     exportedAt, share: base64, sealed: base64 }
// `index` (1…total) names the custodian's share; `share` is a GF(2^8) Shamir share of the AES key
// as the `shamir-secret-sharing` package lays it out (32 bytes, then its x-coordinate byte);
// `sealed` (nonce 12 ‖ ciphertext ‖ tag 16, identical in every share of a set) opens under that
// key with AAD = UTF-8 of
//   JSON.stringify(['orthid-keystore-share', version, setId, deploymentId, threshold, total, exportedAt])
// into the body of a plain keystore export (src/crypto/keystore-export.ts).
// Version 1 files (still read) are the same but for `share`: its x-coordinate byte comes first
// and equals `index`.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type Static, Type } from '@sinclair/typebox';
import { isOrthIdError, OrthIdError } from '../core/errors.js';
import { fileFormat, parseJson } from '../core/file-format.js';
import { newId } from '../core/ids.js';
import { aeadOpen, aeadSeal } from './aead.js';
import { decryptStream, encryptStream, parseRecipient } from './age/index.js';
import { decodeKeystoreExport, encodeKeystoreExport } from './keystore-export.js';
import type { KeystoreContents } from './managed-keystore.js';
import { combine, fromV1Layout, shareX, split } from './shamir.js';

const FORMAT = 'orthid-keystore-share';
/** The version new share files are written in; version 1 files are still read. */
const VERSION = 2;
const KEY_SIZE = 32;

const Count = Type.Integer({ minimum: 1, maximum: 255 });
const Text = Type.String({ minLength: 1 });
const Base64 = Type.String({ pattern: '^[A-Za-z0-9+/]*={0,2}$' });
const SHARE_FILE = fileFormat(
  Type.Object({
    format: Type.Literal(FORMAT),
    version: Type.Union([Type.Literal(1), Type.Literal(VERSION)]),
    setId: Text,
    index: Count,
    threshold: Type.Integer({ minimum: 2, maximum: 255 }),
    total: Count,
    deploymentId: Text,
    exportedAt: Text,
    share: Base64,
    sealed: Base64,
  }),
);
type ShareFile = Static<typeof SHARE_FILE.schema>;

type SetFields = Pick<ShareFile, 'version' | 'setId' | 'deploymentId' | 'threshold' | 'total' | 'exportedAt'>;

function aad(set: SetFields): Buffer {
  return Buffer.from(
    JSON.stringify([
      FORMAT,
      set.version,
      set.setId,
      set.deploymentId,
      set.threshold,
      set.total,
      set.exportedAt,
    ]),
  );
}

/** A share's bytes in the Shamir package's layout, whichever version wrote them. */
function shareBytes(file: ShareFile): Buffer {
  const bytes = Buffer.from(file.share, 'base64');
  return file.version === 1 ? fromV1Layout(bytes) : bytes;
}

/** One export split into share files: `shares[i]` is for `recipients[i]` and holds share i + 1. */
export interface KeystoreShareSet {
  /** Names this export in every share, so shares of different exports are never combined. */
  setId: string;
  shares: Readable[];
}

/**
 * Splits an export of `contents` into one age-encrypted share file per recipient, any
 * `threshold` of which rebuild it with `readKeystoreShares`. Everything is checked before any
 * byte is produced: `age.recipient_invalid` for a bad recipient, `keystore.shares_invalid` for a
 * recipient given twice or unless 2 ≤ threshold ≤ recipients.length ≤ 255.
 *
 * @example
 * const { setId, shares } = exportKeystoreShares(keystore.contents, custodians, 3, new Date());
 * await Promise.all(shares.map((s, i) => pipeline(s, createWriteStream(`share-${i + 1}.age`))));
 */
export function exportKeystoreShares(
  contents: KeystoreContents,
  recipients: readonly string[],
  threshold: number,
  exportedAt: Date,
): KeystoreShareSet {
  const seen = new Map<string, number>();
  for (const [i, text] of recipients.entries()) {
    const { recipient } = parseRecipient(text, `Recipient ${i + 1} of ${recipients.length}`);
    const first = seen.get(recipient);
    if (first !== undefined) {
      throw new OrthIdError(
        'keystore.shares_invalid',
        `Recipients ${first + 1} and ${i + 1} are the same; each share must go to a different custodian, or one person could hold more than one share.`,
      );
    }
    seen.set(recipient, i);
  }
  const key = randomBytes(KEY_SIZE);
  const set: SetFields = {
    version: VERSION,
    setId: newId(exportedAt.getTime()),
    deploymentId: contents.deploymentId,
    threshold,
    total: recipients.length,
    exportedAt: exportedAt.toISOString(),
  };
  let pieces: Promise<Buffer[]>;
  let sealed: string;
  try {
    // Throws keystore.shares_invalid at once for an impossible threshold, before any byte exists.
    pieces = split(key, recipients.length, threshold);
    sealed = aeadSeal(key, encodeKeystoreExport(contents, exportedAt), aad(set)).toString('base64');
  } finally {
    key.fill(0);
  }
  // The Shamir package splits asynchronously; each share file's stream waits for its piece.
  const shares = recipients.map((recipient, i) => {
    const body = async function* () {
      const piece = (await pieces)[i]!;
      const file: ShareFile = {
        format: FORMAT,
        ...set,
        index: i + 1,
        share: piece.toString('base64'),
        sealed,
      };
      piece.fill(0);
      yield Buffer.from(JSON.stringify(file));
    };
    return Readable.from(body()).pipe(encryptStream([recipient]));
  });
  return { setId: set.setId, shares };
}

/**
 * Rebuilds a keystore from share files of one `exportKeystoreShares` set. Every file must open
 * with one of `identities` (each custodian brings their own; pass them all), else
 * `age.decrypt_failed` naming the file. Then: `keystore.shares_mismatch` when the files come
 * from different exports or deployments, `keystore.shares_invalid` for a share given twice or
 * altered, `keystore.shares_insufficient` (saying how many more are needed) below the threshold,
 * `keystore.corrupt` when the rebuilt body is not a keystore export.
 */
export async function readKeystoreShares(
  inputs: readonly Readable[],
  identities: readonly string[],
): Promise<KeystoreContents> {
  if (inputs.length === 0) {
    throw new OrthIdError(
      'keystore.shares_insufficient',
      'No share files given; pass the share files of at least as many custodians as the threshold.',
      { details: { given: 0 } },
    );
  }
  const files: ShareFile[] = [];
  for (const [i, input] of inputs.entries()) {
    files.push(parseShareFile(await decryptShareFile(input, identities, i, inputs.length), i));
  }

  const first = files[0]!;
  for (const [i, file] of files.entries()) {
    if (file.deploymentId !== first.deploymentId) {
      throw new OrthIdError(
        'keystore.shares_mismatch',
        `Share file ${i + 1} is from deployment ${file.deploymentId} but share file 1 is from ${first.deploymentId}; give only shares of one export.`,
        { details: { deploymentIds: [first.deploymentId, file.deploymentId] } },
      );
    }
    if (file.setId !== first.setId) {
      throw new OrthIdError(
        'keystore.shares_mismatch',
        `Share file ${i + 1} belongs to the export ${file.setId} (exported ${file.exportedAt}) but share file 1 to ${first.setId} (exported ${first.exportedAt}); shares of different exports never combine. Give only shares of one export.`,
        { details: { setIds: [first.setId, file.setId] } },
      );
    }
    if (
      file.version !== first.version ||
      file.threshold !== first.threshold ||
      file.total !== first.total ||
      file.exportedAt !== first.exportedAt ||
      file.sealed !== first.sealed
    ) {
      throw new OrthIdError(
        'keystore.shares_invalid',
        `Share file ${i + 1} claims the export ${file.setId} but disagrees with share file 1 about it: one of them was altered. Use the custodians' original copies.`,
      );
    }
    const earlier = files.findIndex((other) => other.index === file.index);
    if (earlier !== i) {
      throw new OrthIdError(
        'keystore.shares_invalid',
        `Share files ${earlier + 1} and ${i + 1} are both share ${file.index} of ${file.total}; give each custodian's share once.`,
        { details: { index: file.index } },
      );
    }
  }

  if (files.length < first.threshold) {
    const held = files.map((file) => file.index).sort((a, b) => a - b);
    const missing = Array.from({ length: first.total }, (_, i) => i + 1).filter((n) => !held.includes(n));
    const more = first.threshold - files.length;
    throw new OrthIdError(
      'keystore.shares_insufficient',
      `The export ${first.setId} needs ${first.threshold} of its ${first.total} shares but only ${files.length} ` +
        `(${held.join(', ')}) were given: bring ${more} more, any of shares ${missing.join(', ')}.`,
      { details: { setId: first.setId, threshold: first.threshold, given: held, needed: more } },
    );
  }

  const key = await combine(files.map(shareBytes));
  let body: Buffer | undefined;
  try {
    body = aeadOpen(key, Buffer.from(first.sealed, 'base64'), aad(first));
  } finally {
    key.fill(0);
  }
  if (body === undefined) {
    throw new OrthIdError(
      'keystore.shares_invalid',
      `The shares of export ${first.setId} combine into a key that does not open the keystore: at least one share was altered or its metadata changed. Use the custodians' original share files.`,
    );
  }
  const contents = decodeKeystoreExport(body);
  if (contents.deploymentId !== first.deploymentId) {
    throw new OrthIdError(
      'keystore.corrupt',
      `The shares say deployment ${first.deploymentId} but the keystore inside is ${contents.deploymentId}.`,
    );
  }
  return contents;
}

async function decryptShareFile(
  input: Readable,
  identities: readonly string[],
  i: number,
  count: number,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  try {
    await pipeline(input, decryptStream(identities), async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) chunks.push(chunk);
    });
  } catch (error) {
    if (isOrthIdError(error, 'age.decrypt_failed')) {
      throw new OrthIdError('age.decrypt_failed', `Share file ${i + 1} of ${count}: ${error.message}`, {
        cause: error,
      });
    }
    throw error;
  }
  return Buffer.concat(chunks);
}

function parseShareFile(bytes: Buffer, i: number): ShareFile {
  const parsed = parseJson(bytes.toString('utf8'));
  const problem = parsed === undefined ? 'it is not JSON' : SHARE_FILE.problem(parsed.value);
  if (problem !== undefined || parsed === undefined || !SHARE_FILE.is(parsed.value)) {
    throw new OrthIdError(
      'keystore.shares_invalid',
      `Share file ${i + 1} decrypted but is not an OrthID keystore share (version 1 or ${VERSION}): ${problem}. A whole keystore export is imported on its own, not as a share.`,
    );
  }
  const file = parsed.value;
  if (file.total < file.threshold || file.index > file.total) {
    throw new OrthIdError(
      'keystore.shares_invalid',
      `Share file ${i + 1} says it is share ${file.index} of ${file.total} with a threshold of ${file.threshold}, which no export writes: it was altered. Use the custodian's original copy.`,
    );
  }
  const share = Buffer.from(file.share, 'base64');
  // Version 1 put the index in the share's first byte; version 2 draws x-coordinates at random.
  const xMatches = file.version === 1 ? share[0] === file.index : shareX(share) !== 0;
  if (share.length !== KEY_SIZE + 1 || !xMatches) {
    throw new OrthIdError(
      'keystore.shares_invalid',
      `Share file ${i + 1} says it is share ${file.index} but its share bytes do not match: it was altered. Use the custodian's original copy.`,
    );
  }
  return file;
}
