// The one tar reader: objects archives (tar-writer.ts writes them; plain ustar and pax from other
// tools read too) and signed bundles, parsed by the maintained `tar-stream` package as a stream
// of entries whose bodies stream too, so verify and restore hold one chunk at a time. This file
// adds what tar-stream leaves to its caller: a missing end-of-archive marker, or bytes after it,
// is damage, and every failure is `backup.archive_invalid`.
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { extract as tarExtract } from 'tar-stream';
import { OrthIdError } from '../core/errors.js';
import { BLOCK } from './tar-writer.js';

export interface TarEntry {
  path: string;
  size: number;
  mtime: Date;
  /** Pax records of the entry (including OrthID's, e.g. `SCHILY.xattr.user.orthid.sha256`). */
  records: Record<string, string>;
  /** Where the entry's body starts in the archive; its header blocks come just before. */
  bodyOffset: number;
  /** The entry's bytes; read it before asking for the next entry, or it is skipped. */
  body: AsyncIterable<Buffer>;
}

function corrupt(why: string): OrthIdError {
  return new OrthIdError('backup.archive_invalid', `The objects archive is malformed: ${why}.`);
}

const padded = (size: number) => Math.ceil(size / BLOCK) * BLOCK;

/** What tar-stream's failures mean for an archive (its messages are about gzip and such). */
function damage(error: unknown): OrthIdError {
  const message = error instanceof Error ? error.message : '';
  if (/unexpected end/i.test(message)) return corrupt('it ends inside an entry or a header');
  if (/header/i.test(message)) return corrupt('a header is damaged (its checksum or format does not match)');
  return corrupt('it cannot be read as tar');
}

/**
 * The regular-file entries of a tar stream. Throws `backup.archive_invalid` on a damaged header,
 * a truncated body or a missing end-of-archive marker (a tar cut short at an entry boundary
 * would otherwise look complete); an error of `source` itself (a failed decryption, a lost
 * connection) passes through unchanged.
 */
export async function* readTar(
  source: AsyncIterable<Buffer | Uint8Array | string> | Iterable<Buffer | Uint8Array | string>,
): AsyncGenerator<TarEntry> {
  let length = 0;
  /** Offset of the last non-zero byte seen: the end marker and any padding after it are zeros. */
  let lastNonZero = -1;
  let sourceError: { error: unknown } | undefined;
  const counted = async function* () {
    try {
      for await (const piece of source) {
        const chunk =
          typeof piece === 'string'
            ? Buffer.from(piece)
            : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
        for (let i = chunk.length - 1; i >= 0; i--) {
          if (chunk[i] !== 0) {
            lastNonZero = length + i;
            break;
          }
        }
        length += chunk.length;
        yield chunk;
      }
    } catch (error) {
      sourceError = { error };
      throw error;
    }
  };
  const extract = tarExtract();
  // Failures surface through the entry iterator below; this promise only must not go unhandled.
  const fed = pipeline(Readable.from(counted()), extract).catch(() => undefined);
  /** End of the last entry (its body and padding) read so far. */
  let end = 0;
  try {
    for await (const stream of extract) {
      const header = stream.header;
      const size = header.size ?? 0;
      if (!Number.isSafeInteger(size) || size < 0) throw corrupt('an entry has an invalid size');
      const bodyOffset = (header as { byteOffset?: number }).byteOffset ?? 0;
      end = bodyOffset + padded(size);
      const chunks = stream[Symbol.asyncIterator]();
      let drained = false;
      const next = async () => {
        const step = await chunks.next();
        if (step.done) drained = true;
        return step;
      };
      if (header.type === 'file') {
        const records = (header as { pax?: Record<string, string> | null }).pax ?? {};
        const body = (async function* () {
          for (;;) {
            const step = await next();
            if (step.done) return;
            yield step.value as Buffer;
          }
        })();
        const mtime = records.mtime === undefined ? header.mtime : new Date(Number(records.mtime) * 1000);
        yield { path: header.name, size, mtime: mtime ?? new Date(0), records, bodyOffset, body };
      }
      // Directories, links and the like carry no object; whatever the consumer left unread is skipped.
      while (!drained) await next();
    }
  } catch (error) {
    if (sourceError !== undefined) throw sourceError.error;
    if (error instanceof OrthIdError) throw error;
    throw damage(error);
  } finally {
    extract.destroy();
    await fed;
  }
  if (sourceError !== undefined) throw sourceError.error;
  // tar-stream reads zero blocks as nothing; OrthID insists on the end-of-archive marker (two
  // zero blocks) and allows only more zero padding after it, so a cut-short archive is refused.
  if (length - end < 2 * BLOCK) throw corrupt('it ends without the end-of-archive marker');
  if (lastNonZero >= end) throw corrupt('there are bytes after the end of the archive');
}
