// The objects part of a backup set: every object of the object store as one tar stream, each
// entry carrying its key, SHA-256, content type and metadata as pax records; and the reverse
// (check or restore an archive). Objects are read and written one chunk at a time.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { isOrthIdError, OrthIdError } from '../core/errors.js';
import type { ObjectInfo, ObjectStore } from '../storage/objects/object-store.js';
import { readTar } from './tar-reader.js';
import { PAX_PREFIX, TAR_END, tarEntryHeader, tarPadding } from './tar-writer.js';

export const ARCHIVE_RECORDS = {
  sha256: `${PAX_PREFIX}sha256`,
  contentType: `${PAX_PREFIX}content-type`,
  /** Followed by the metadata key, e.g. `SCHILY.xattr.user.orthid.meta.owner`. */
  metadata: `${PAX_PREFIX}meta.`,
} as const;

export interface ArchiveStats {
  count: number;
  bytes: number;
}

export interface ArchiveOptions {
  /** Key prefixes to leave out, e.g. backup sets written into the object store itself. */
  exclude?: readonly string[];
  /** Filled in as the archive is produced. */
  stats?: ArchiveStats;
}

async function sha256Of(store: ObjectStore, key: string): Promise<string> {
  const { body } = await store.get(key);
  const hash = createHash('sha256');
  for await (const chunk of body) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function recordsOf(info: ObjectInfo, sha256: string): Record<string, string> {
  const records: Record<string, string> = { [ARCHIVE_RECORDS.sha256]: sha256 };
  if (info.contentType !== undefined) records[ARCHIVE_RECORDS.contentType] = info.contentType;
  for (const [name, value] of Object.entries(info.metadata ?? {}))
    records[`${ARCHIVE_RECORDS.metadata}${name}`] = value;
  return records;
}

/**
 * The tar bytes of every object in `store`, page by page. A store that reports an object's
 * checksum has it verified as it is read (a damaged object fails the archive, naming it); an
 * object deleted between listing and reading is left out.
 */
export async function* objectsArchive(
  store: ObjectStore,
  options: ArchiveOptions = {},
): AsyncGenerator<Buffer> {
  const exclude = options.exclude ?? [];
  const stats = options.stats ?? { count: 0, bytes: 0 };
  let cursor: string | undefined;
  do {
    const page = await store.list('', cursor === undefined ? {} : { cursor });
    cursor = page.cursor;
    for (const listed of page.items) {
      if (exclude.some((prefix) => listed.key.startsWith(prefix))) continue;
      let opened: Awaited<ReturnType<ObjectStore['get']>>;
      try {
        // Written by another tool: the store does not know the digest, so take it first.
        const known = listed.sha256 !== '' ? listed.sha256 : await sha256Of(store, listed.key);
        opened = await store.get(listed.key);
        if (opened.info.sha256 === '') opened.info.sha256 = known;
      } catch (error) {
        if (isOrthIdError(error, 'objects.not_found')) continue;
        throw error;
      }
      const { info, body } = opened;
      yield tarEntryHeader({
        path: info.key,
        size: info.size,
        mtime: info.lastModified,
        records: recordsOf(info, info.sha256),
      });
      let seen = 0;
      for await (const chunk of body as AsyncIterable<Buffer>) {
        seen += chunk.length;
        if (seen > info.size) break;
        yield chunk;
      }
      if (seen !== info.size) {
        body.destroy();
        throw new OrthIdError(
          'backup.archive_invalid',
          `Object "${info.key}" changed size while it was being archived (${info.size} bytes expected, ${seen} read); run the dump again.`,
        );
      }
      yield tarPadding(info.size);
      stats.count += 1;
      stats.bytes += info.size;
    }
  } while (cursor !== undefined);
  yield TAR_END;
}

/** Reads an archive to its end, checking every entry's bytes against its recorded SHA-256. */
export async function checkObjectsArchive(
  source: AsyncIterable<Buffer | Uint8Array | string>,
): Promise<ArchiveStats> {
  const stats: ArchiveStats = { count: 0, bytes: 0 };
  for await (const entry of readTar(source)) {
    const expected = entry.records[ARCHIVE_RECORDS.sha256];
    const hash = createHash('sha256');
    let size = 0;
    for await (const chunk of entry.body) {
      hash.update(chunk);
      size += chunk.length;
    }
    const actual = hash.digest('hex');
    if (expected === undefined || expected !== actual) {
      throw new OrthIdError(
        'backup.archive_invalid',
        `Object "${entry.path}" in the archive has SHA-256 ${actual}, not the recorded ${expected ?? '(none)'}.`,
        { details: { key: entry.path } },
      );
    }
    stats.count += 1;
    stats.bytes += size;
  }
  return stats;
}

/**
 * Puts every object of an archive into `store` with its content type and metadata; each put is
 * checked against the recorded SHA-256, so a damaged entry is never stored. `beforePut` sees each
 * entry's key and SHA-256 first: returning false skips it (an object already there unchanged).
 */
export async function unpackObjectsArchive(
  source: AsyncIterable<Buffer | Uint8Array | string>,
  store: ObjectStore,
  beforePut?: (key: string, sha256: string | undefined) => Promise<boolean>,
): Promise<ArchiveStats> {
  const stats: ArchiveStats = { count: 0, bytes: 0 };
  for await (const entry of readTar(source)) {
    const metadata: Record<string, string> = {};
    for (const [name, value] of Object.entries(entry.records)) {
      if (name.startsWith(ARCHIVE_RECORDS.metadata))
        metadata[name.slice(ARCHIVE_RECORDS.metadata.length)] = value;
    }
    const contentType = entry.records[ARCHIVE_RECORDS.contentType];
    const sha256 = entry.records[ARCHIVE_RECORDS.sha256];
    if (!beforePut || (await beforePut(entry.path, sha256))) {
      await store.put(entry.path, Readable.from(entry.body), {
        sha256,
        metadata,
        ...(contentType === undefined ? {} : { contentType }),
      });
    }
    // A skipped entry's bytes are left unread: readTar skips them.
    stats.count += 1;
    stats.bytes += entry.size;
  }
  return stats;
}
