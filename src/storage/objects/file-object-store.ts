// The local-directory backend: one plain file per key under a root (so an operator can copy a
// backup out with cp), plus a hidden JSON sidecar per file holding its checksum, type and metadata.
//
// Layout and crash safety:
// - `<dir>/<name>` holds the object's exact bytes; `<dir>/.orthid-meta-<name>.json` its sidecar.
//   Sidecars sit beside their file rather than in a parallel tree so one rename directory, one
//   fsync and one rmdir walk cover both, and nothing can drift between two trees.
// - A put streams into `<dir>/.orthid-tmp-<random>` and fsyncs it, writes the sidecar the same
//   way, then renames the file and then the sidecar into place and fsyncs the directory. Readers
//   never see a partial file; a crash leaves only `.orthid-*` temp files, which list ignores
//   and temporaryFiles reclaims. The writer holds a kernel lock on its temp file until the
//   rename, so one still being written is never taken for a dead one.
// - Two renames are not one atomic step, so the sidecar names the file it describes (inode, and
//   size plus mtime for copies made with `cp -a`/`rsync -a`, which keep those but not the inode).
//   A sidecar that describes another file (a crash or a race between the renames, a plain copy)
//   is ignored: the checksum reads as unknown instead of failing good bytes. An in-place change
//   of the bytes keeps the inode, so it is still caught as a checksum mismatch.
import { randomBytes } from 'node:crypto';
import type { BigIntStats, Dirent } from 'node:fs';
import {
  type FileHandle,
  lstat,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  rmdir,
  stat,
  unlink,
} from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pipeline as pipeCallback, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type Static, Type } from '@sinclair/typebox';
import { syncDirectory } from '../../core/atomic-file.js';
import { isOrthIdError, OrthIdError } from '../../core/errors.js';
import { fileFormat, parseJson } from '../../core/file-format.js';
import { abandonedSize, claimTemporaryFile } from '../../core/temporary-files.js';
import { ChecksumStream, expectStored, expectUploaded } from './checksum-stream.js';
import { toListOptions } from './list-options.js';
import { mapConcurrently } from './map-concurrently.js';
import { assertValidKey, assertValidPrefix, compareKeys, RESERVED_SEGMENT_PREFIX } from './object-key.js';
import type {
  ListOptions,
  ListPage,
  ObjectInfo,
  ObjectStore,
  PutOptions,
  TemporaryFiles,
} from './object-store.js';
import { toPutRequest } from './put-request.js';

const TEMP_PREFIX = `${RESERVED_SEGMENT_PREFIX}-tmp-`;
const SIDECAR_PREFIX = `${RESERVED_SEGMENT_PREFIX}-meta-`;
const SIDECAR_SUFFIX = '.json';
/** Filesystems allow 255-byte names; the sidecar adds 18 bytes, and a margin keeps copies to other filesystems working. */
const MAX_SEGMENT_BYTES = 200;

const SIDECAR = fileFormat(
  Type.Object({
    version: Type.Literal(1),
    sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
    size: Type.Number(),
    contentType: Type.String(),
    metadata: Type.Record(Type.String(), Type.String()),
    /** The described file's inode number and mtime in nanoseconds, as decimal strings. */
    ino: Type.String(),
    mtimeNs: Type.String(),
  }),
);
type Sidecar = Static<typeof SIDECAR.schema>;

function errnoCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Errors meaning "no object at this path": nothing there, a file where a directory would be, a name no file can have. */
function isAbsent(err: unknown): boolean {
  return ['ENOENT', 'ENOTDIR', 'ENAMETOOLONG'].includes(errnoCode(err) ?? '');
}

/** What an operator does about a filesystem error, by its errno. */
function whatToDo(code: string | undefined): string {
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return 'the filesystem is full. Free space on it (for backups: orthid backup prune) and try again.';
    case 'EROFS':
      return 'the filesystem is mounted read-only. Remount it read-write or use another directory, and try again.';
    case 'EACCES':
    case 'EPERM':
      return "this process may not write there. Fix the directory's owner or mode, and try again.";
    default:
      return 'check that the directory exists, is writable by this process and has free space.';
  }
}

/**
 * Creates `dir` (mode 0700) with its parents. Node's recursive mkdir reports a parent it could
 * not create (read-only filesystem, no permission) as ENOENT; one level at a time tells the real errno.
 */
async function makeDirectory(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return;
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
  const missing: string[] = [];
  for (let current = dir; ; current = dirname(current)) {
    try {
      await stat(current);
      break;
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT' || dirname(current) === current) throw err;
      missing.unshift(current);
    }
  }
  for (const level of missing) {
    try {
      await mkdir(level, { mode: 0o700 });
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
    }
  }
}

function sidecarPathOf(path: string): string {
  return join(dirname(path), `${SIDECAR_PREFIX}${basename(path)}${SIDECAR_SUFFIX}`);
}

function tempPathIn(dir: string): string {
  return join(dir, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
}

function describes(sidecar: Sidecar, stats: BigIntStats): boolean {
  if (sidecar.ino === stats.ino.toString()) return true;
  return sidecar.size === Number(stats.size) && sidecar.mtimeNs === stats.mtimeNs.toString();
}

/** A torn or hand-edited sidecar only costs the checksum, never the object: it reads as none. */
function parseSidecar(text: string): Sidecar | undefined {
  const parsed = parseJson(text);
  return parsed !== undefined && SIDECAR.is(parsed.value) ? parsed.value : undefined;
}

async function writeAll(handle: FileHandle, chunk: Buffer): Promise<void> {
  let offset = 0;
  while (offset < chunk.length) {
    const { bytesWritten } = await handle.write(chunk, offset, chunk.length - offset);
    offset += bytesWritten;
  }
}

async function writeFileSynced(path: string, text: string): Promise<void> {
  const handle = await open(path, 'wx', 0o600);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

class FileObjectStore implements ObjectStore {
  readonly url: string;
  readonly #root: string;

  constructor(root: string) {
    this.#root = root;
    this.url = pathToFileURL(root).href;
  }

  #pathOf(key: string): string {
    return join(this.#root, ...key.split('/'));
  }

  #failure(err: unknown, doing: string, key?: string): OrthIdError {
    if (isOrthIdError(err)) return err;
    const code = errnoCode(err);
    if (key !== undefined && (code === 'ENOTDIR' || code === 'EISDIR' || code === 'EEXIST')) {
      return new OrthIdError(
        'objects.key_conflict',
        `Key "${key}" clashes with another key in ${this.url}: a local directory cannot hold both "a" and "a/b". Choose a different key.`,
        { cause: err },
      );
    }
    if (key !== undefined && code === 'ENAMETOOLONG') {
      const message = `Key "${key}" is too long for the filesystem under ${this.url}; shorten it.`;
      return new OrthIdError('objects.invalid_key', message, { cause: err });
    }
    return new OrthIdError(
      'objects.unavailable',
      `Could not ${doing} in the object store ${this.url} (${code ?? 'unknown error'}): ${whatToDo(code)}`,
      { cause: err, ...(code === undefined ? {} : { details: { cause: code } }) },
    );
  }

  #notFound(key: string): OrthIdError {
    return new OrthIdError(
      'objects.not_found',
      `No object "${key}" in ${this.url}: it was never stored or has been deleted.`,
    );
  }

  async #readSidecar(path: string, stats: BigIntStats): Promise<Sidecar | undefined> {
    let text: string;
    try {
      text = await readFile(sidecarPathOf(path), 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw err;
    }
    const sidecar = parseSidecar(text);
    return sidecar && describes(sidecar, stats) ? sidecar : undefined;
  }

  #info(key: string, stats: BigIntStats, sidecar: Sidecar | undefined): ObjectInfo {
    const info: ObjectInfo = {
      key,
      size: Number(stats.size),
      sha256: sidecar?.sha256 ?? '',
      lastModified: stats.mtime,
      metadata: { ...sidecar?.metadata },
    };
    if (sidecar) info.contentType = sidecar.contentType;
    return info;
  }

  /** Opens a fresh temp file in `dir`, creating the directory; retried because a concurrent delete may prune it. */
  async #openTemp(dir: string): Promise<{ path: string; handle: FileHandle }> {
    for (let attempt = 1; ; attempt++) {
      await makeDirectory(dir);
      const path = tempPathIn(dir);
      try {
        return { path, handle: await open(path, 'wx', 0o600) };
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT' || attempt >= 5) throw err;
      }
    }
  }

  async put(key: string, body: Readable | Buffer | Uint8Array, options?: PutOptions): Promise<ObjectInfo> {
    const request = toPutRequest(key, body, options);
    // Checked up front: failing on the sidecar's longer name would leave the file without it.
    if (key.split('/').some((segment) => Buffer.byteLength(segment) > MAX_SEGMENT_BYTES)) {
      throw new OrthIdError(
        'objects.invalid_key',
        `Key "${key}" has a segment longer than ${MAX_SEGMENT_BYTES} bytes, which a local directory cannot hold; shorten it.`,
      );
    }
    const path = this.#pathOf(key);
    const dir = dirname(path);
    const expected = request.sha256;
    const checksum = new ChecksumStream(expected === undefined ? undefined : expectUploaded(key, expected));
    let sourceError: unknown;
    request.body.once('error', (err) => {
      sourceError = err;
    });
    // The store's own failure (a full disk) wins over what it does to the source: the stages
    // destroyed after it report AbortError or a premature close, which would hide the cause.
    let storeError: unknown;
    const io = async <T>(step: Promise<T>): Promise<T> => {
      try {
        return await step;
      } catch (err) {
        storeError ??= err;
        throw err;
      }
    };
    let dataTemp: string | undefined;
    let tempHandle: FileHandle | undefined;
    const sidecarTemp = tempPathIn(dir);
    try {
      const temp = await io(this.#openTemp(dir));
      dataTemp = temp.path;
      tempHandle = temp.handle;
      claimTemporaryFile(temp.handle);
      await pipeline(request.body, checksum, async (source: AsyncIterable<Buffer>) => {
        for await (const chunk of source) await io(writeAll(temp.handle, chunk));
      });
      await io(temp.handle.sync());
      const stats = await stat(dataTemp, { bigint: true });
      const sidecar: Sidecar = {
        version: 1,
        sha256: checksum.sha256,
        size: checksum.byteCount,
        contentType: request.contentType,
        metadata: request.metadata,
        ino: stats.ino.toString(),
        mtimeNs: stats.mtimeNs.toString(),
      };
      await io(writeFileSynced(sidecarTemp, JSON.stringify(sidecar)));
      await io(rename(dataTemp, path));
      dataTemp = undefined;
      await io(rename(sidecarTemp, sidecarPathOf(path)));
      await io(syncDirectory(dir));
      return this.#info(key, stats, sidecar);
    } catch (err) {
      request.body.destroy();
      await Promise.all([
        dataTemp === undefined ? undefined : rm(dataTemp, { force: true }),
        rm(sidecarTemp, { force: true }),
      ]).catch(() => undefined);
      if (storeError !== undefined) throw this.#failure(storeError, `write "${key}"`, key);
      // The caller's own stream failing is the caller's error, not the store's.
      if (sourceError !== undefined && !isOrthIdError(err)) throw sourceError;
      throw this.#failure(err, `write "${key}"`, key);
    } finally {
      // Closed only now: the lock on the temporary file marks the write live until its rename.
      await tempHandle?.close();
    }
  }

  async get(key: string): Promise<{ info: ObjectInfo; body: Readable }> {
    assertValidKey(key);
    const path = this.#pathOf(key);
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (err) {
      if (isAbsent(err)) throw this.#notFound(key);
      throw this.#failure(err, `read "${key}"`);
    }
    let info: ObjectInfo;
    try {
      const stats = await handle.stat({ bigint: true });
      if (!stats.isFile()) throw this.#notFound(key);
      info = this.#info(key, stats, await this.#readSidecar(path, stats));
    } catch (err) {
      await handle.close();
      throw this.#failure(err, `read "${key}"`);
    }
    const raw = handle.createReadStream();
    if (info.sha256 === '') return { info, body: raw };
    const verify = new ChecksumStream(expectStored(key, this.url, info.sha256));
    // Errors reach the reader through `verify`; the callback only stops pipeline from rethrowing.
    return { info, body: pipeCallback(raw, verify, () => undefined) };
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    assertValidKey(key);
    const path = this.#pathOf(key);
    try {
      const stats = await stat(path, { bigint: true });
      if (!stats.isFile()) return undefined;
      return this.#info(key, stats, await this.#readSidecar(path, stats));
    } catch (err) {
      if (isAbsent(err)) return undefined;
      throw this.#failure(err, `read "${key}"`);
    }
  }

  /** Keys under `dir` in byte order, skipping subtrees entirely outside the prefix or at/before the cursor. */
  async *#walk(
    dir: string,
    keyPrefix: string,
    prefix: string,
    cursor: string | undefined,
  ): AsyncGenerator<string> {
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (isAbsent(err)) return;
      throw err;
    }
    // A directory sorts as "name/" so that "a/b" falls after "a-c" and before "a0", as in S3.
    const candidates = entries
      .filter(
        (entry) => (entry.isFile() || entry.isDirectory()) && !entry.name.startsWith(RESERVED_SEGMENT_PREFIX),
      )
      .filter((entry) => !entry.name.includes('\\'))
      .map((entry) => ({
        name: entry.name,
        isDirectory: entry.isDirectory(),
        key: keyPrefix + entry.name + (entry.isDirectory() ? '/' : ''),
      }))
      .sort((a, b) => compareKeys(a.key, b.key));
    for (const candidate of candidates) {
      const { key } = candidate;
      if (candidate.isDirectory) {
        const overlapsPrefix = key.startsWith(prefix) || prefix.startsWith(key);
        const reachesPastCursor =
          cursor === undefined || cursor.startsWith(key) || compareKeys(key, cursor) > 0;
        if (overlapsPrefix && reachesPastCursor)
          yield* this.#walk(join(dir, candidate.name), key, prefix, cursor);
      } else if (key.startsWith(prefix) && (cursor === undefined || compareKeys(key, cursor) > 0)) {
        yield key;
      }
    }
  }

  async list(prefix: string, options?: ListOptions): Promise<ListPage> {
    assertValidPrefix(prefix);
    const { cursor, limit } = toListOptions(options);
    const keys: string[] = [];
    try {
      // One key past the page tells whether another page exists, so the last page has no cursor.
      for await (const key of this.#walk(this.#root, '', prefix, cursor)) {
        keys.push(key);
        if (keys.length > limit) break;
      }
    } catch (err) {
      throw this.#failure(err, 'list objects');
    }
    const page = keys.slice(0, limit);
    const infos = await mapConcurrently(page, 16, (key) => this.head(key));
    const items = infos.filter((info): info is ObjectInfo => info !== undefined);
    return keys.length > limit ? { items, cursor: page.at(-1) as string } : { items };
  }

  async delete(key: string): Promise<void> {
    assertValidKey(key);
    const path = this.#pathOf(key);
    try {
      try {
        await unlink(path);
      } catch (err) {
        if (isAbsent(err)) return;
        const code = errnoCode(err);
        // A key that names a directory (a prefix of other keys) is not an object: nothing to delete.
        if ((code === 'EISDIR' || code === 'EPERM') && (await lstat(path)).isDirectory()) return;
        throw err;
      }
      await rm(sidecarPathOf(path), { force: true });
      await this.#pruneEmptyDirectories(dirname(path));
    } catch (err) {
      throw this.#failure(err, `delete "${key}"`);
    }
  }

  /** Removes directories left empty by a delete, up to (not including) the root. */
  async #pruneEmptyDirectories(dir: string): Promise<void> {
    for (
      let current = dir;
      current !== this.#root && current.startsWith(this.#root);
      current = dirname(current)
    ) {
      try {
        await rmdir(current);
      } catch (err) {
        if (['ENOTEMPTY', 'EEXIST', 'ENOENT', 'EBUSY'].includes(errnoCode(err) ?? '')) return;
        throw err;
      }
    }
  }

  async region(): Promise<string | undefined> {
    return undefined;
  }

  async temporaryFiles(options: { reclaim: boolean }): Promise<TemporaryFiles> {
    const found: TemporaryFiles = { count: 0, bytes: 0 };
    const visit = async (dir: string): Promise<void> => {
      let entries: Dirent[];
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if (isAbsent(err)) return;
        throw err;
      }
      for (const entry of entries) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) await visit(path);
        else if (entry.isFile() && entry.name.startsWith(TEMP_PREFIX)) {
          const size = await abandonedSize(path, options.reclaim);
          if (size !== undefined) {
            found.count += 1;
            found.bytes += size;
          }
        }
      }
    };
    try {
      await visit(this.#root);
    } catch (err) {
      throw this.#failure(err, options.reclaim ? 'remove temporary files' : 'list temporary files');
    }
    return found;
  }
}

/** Opens (creating if needed, mode 0700) the directory named by a `file:///absolute/path` URL. */
export async function openFileObjectStore(url: string): Promise<ObjectStore> {
  let root: string;
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== 'file:' || parsed.search !== '' || parsed.hash !== '')
      throw new Error('not a plain file URL');
    root = fileURLToPath(parsed).replace(/(?<=.)\/+$/, '');
  } catch (err) {
    throw new OrthIdError(
      'objects.invalid_url',
      `Invalid object store URL ${JSON.stringify(url)}: use file:///absolute/path/to/directory (no host, query or fragment).`,
      { cause: err },
    );
  }
  try {
    await makeDirectory(root);
    if (!(await stat(root)).isDirectory())
      throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
  } catch (err) {
    throw new OrthIdError(
      'objects.unavailable',
      `Cannot use ${pathToFileURL(root).href} as an object store (${errnoCode(err) ?? 'error'}): it must be a directory this process can create and write.`,
      { cause: err },
    );
  }
  return new FileObjectStore(root);
}
