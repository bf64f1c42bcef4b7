// The object store a restore writes a set's objects into: checked at step 1 like the database
// (empty, or replaced with --clean; backup sets kept inside it are neither counted nor touched),
// then promoted once every part was read and checked. An object the restore overwrites is first
// stashed in a scratch directory, so a failure puts the store back as it was; objects the set
// does not hold are removed only once the whole restore was promoted.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { OrthIdError } from '../core/errors.js';
import type { ObjectInfo, ObjectStore, PutOptions } from '../storage/objects/object-store.js';
import { openObjectStore } from '../storage/objects/open-object-store.js';
import { describeDestination, prefixWithin } from './destination.js';
import { unpackObjectsArchive } from './objects-archive.js';

/** The target store and the prefixes inside it that a restore leaves alone. */
export interface ObjectsTarget {
  store: ObjectStore;
  /** Key prefixes of backup destinations that lie inside the target store. */
  keep: string[];
}

/**
 * The target with the prefixes of the backup destinations inside it. A target that is a backup
 * destination itself is refused: the restore would write the deployment's objects among the sets.
 */
export function objectsTarget(store: ObjectStore, destinations: ObjectStore[]): ObjectsTarget {
  const keep = destinations
    .map((dest) => prefixWithin(store.url, dest.url))
    .filter((p): p is string => p !== undefined);
  if (keep.includes('')) {
    throw new OrthIdError(
      'backup.target_invalid',
      `The object store to restore into (${describeDestination(store.url)}) is the backup destination itself; pass --object-store with the deployment's own store. Nothing was restored.`,
    );
  }
  return { store, keep };
}

/** Every object of the target outside the kept prefixes, page by page. */
async function* objectsOf(target: ObjectsTarget): AsyncGenerator<ObjectInfo> {
  let cursor: string | undefined;
  do {
    const page = await target.store.list('', cursor === undefined ? {} : { cursor });
    cursor = page.cursor;
    for (const info of page.items) {
      if (!target.keep.some((prefix) => info.key.startsWith(prefix))) yield info;
    }
  } while (cursor !== undefined);
}

/** Step 1 for the objects: a store holding objects is replaced only when the operator says so. */
export async function assertObjectsTargetEmpty(target: ObjectsTarget): Promise<void> {
  for await (const _ of objectsOf(target)) {
    throw new OrthIdError(
      'backup.target_not_empty',
      `The target object store ${describeDestination(target.store.url)} is not empty. Restore into an empty store (--object-store), or pass --clean to replace its objects. Nothing was restored.`,
      { details: { target: 'objects' } },
    );
  }
}

/** The put options that write `info`'s object again as it was. */
function putOptionsOf(info: ObjectInfo): PutOptions {
  const { sha256: _reserved, ...metadata } = info.metadata ?? {};
  return {
    ...(info.contentType === undefined ? {} : { contentType: info.contentType }),
    metadata,
    ...(info.sha256 === '' ? {} : { sha256: info.sha256 }),
  };
}

async function copyObject(from: ObjectStore, to: ObjectStore, key: string): Promise<void> {
  const { info, body } = await from.get(key);
  await to.put(key, body, putOptionsOf(info));
}

export interface ObjectsPromotion {
  /** Objects in the set. */
  count: number;
  /** The restore was promoted: objects the set does not hold go (with --clean), the stash too. */
  finish(): Promise<void>;
  /** The restore failed: objects it wrote go, those it overwrote come back from the stash. */
  rollback(): Promise<void>;
}

/**
 * Puts the archive's objects into the target. An object already there with the same SHA-256 is
 * left as it is; one with other bytes is stashed before it is overwritten.
 */
export async function promoteObjects(
  target: ObjectsTarget,
  archive: AsyncIterable<Buffer>,
  options: { clean: boolean },
): Promise<ObjectsPromotion> {
  const existing = new Map<string, ObjectInfo>();
  for await (const info of objectsOf(target)) existing.set(info.key, info);
  const inSet = new Set<string>();
  const written: string[] = [];
  const stashed: string[] = [];
  let stashDir: string | undefined;
  let stash: ObjectStore | undefined;
  const removeStash = async () => {
    if (stashDir) await rm(stashDir, { recursive: true, force: true });
  };
  const rollback = async () => {
    for (const key of written) await target.store.delete(key);
    for (const key of stashed) await copyObject(stash!, target.store, key);
    await removeStash();
  };
  try {
    const stats = await unpackObjectsArchive(archive, target.store, async (key, sha256) => {
      inSet.add(key);
      const old = existing.get(key);
      if (!old) {
        written.push(key);
        return true;
      }
      // A listing may not carry the digest (S3 keeps it in the object's metadata).
      const known = old.sha256 !== '' ? old.sha256 : ((await target.store.head(key))?.sha256 ?? '');
      if (known !== '' && known === sha256) return false;
      if (!stash) {
        stashDir = await mkdtemp(join(tmpdir(), 'orthid-restore-stash-'));
        stash = await openObjectStore(pathToFileURL(stashDir).href);
      }
      await copyObject(target.store, stash, key);
      stashed.push(key);
      return true;
    });
    return {
      count: stats.count,
      async finish() {
        if (options.clean) {
          for (const key of existing.keys()) if (!inSet.has(key)) await target.store.delete(key);
        }
        await removeStash();
      },
      rollback,
    };
  } catch (error) {
    await rollback().catch((cause) => {
      throw notPutBack(target, error, cause);
    });
    throw error;
  }
}

/**
 * A failure the target could not be put back from: the operator must know it changed. `database`
 * names the target database when it may have been promoted too.
 */
export function notPutBack(
  target: ObjectsTarget,
  error: unknown,
  cause: unknown,
  database?: string,
): OrthIdError {
  const where = `${database ? `the database ${database} or ` : ''}the object store ${describeDestination(target.store.url)}`;
  return new OrthIdError(
    'backup.restore_failed',
    `The restore failed (${(error as Error)?.message ?? error}), and what it had already put in place could not all be put back (${(cause as Error)?.message ?? cause}): ${where} may hold part of the set. Run the restore again with --clean once it is reachable.`,
    { cause },
  );
}
