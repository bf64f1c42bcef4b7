// Temporary files that a killed process leaves behind (a part of a dump, a half-written export),
// and how to tell them from files still being written: the writer keeps a kernel lock on its
// temporary file while it writes (src/core/kernel-lock.ts), which dies with it.
import type { FileHandle } from 'node:fs/promises';
import { open, rm, stat } from 'node:fs/promises';
import { tryLockDescriptor } from './kernel-lock.js';

function errnoCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * How long a temporary file must go unwritten before it counts as abandoned, on top of no
 * process holding its lock: covers the instants before the writer takes the lock, and writers
 * that hold none (an older version; a source stalled on a database lock writes nothing for minutes).
 */
const ABANDONED_AFTER_MS = 15 * 60_000;
/** Where the filesystem has no locks, only a long silence tells a dead writer. */
const ABANDONED_WITHOUT_LOCKS_AFTER_MS = 24 * 3_600_000;

/** Marks a temporary file as being written, for as long as `handle` stays open. */
export function claimTemporaryFile(handle: FileHandle): void {
  try {
    tryLockDescriptor(handle.fd);
  } catch {
    // A filesystem without locks: the writer's silence alone tells it is gone (see abandonedSize).
  }
}

/**
 * The size of the temporary file at `path` when its writer is gone (no process holds its lock
 * and it has not been written for a while), removing it with `reclaim`; undefined while it may
 * be live. The lock taken to look is held while removing, so no writer can claim it meanwhile.
 */
export async function abandonedSize(path: string, reclaim: boolean): Promise<number | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r+');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    if (!['EROFS', 'EACCES', 'EPERM'].includes(errnoCode(err) ?? '')) throw err;
    // Not writable here (a read-only mount of the backups): reported by age, left in place.
    const stats = await stat(path);
    return Date.now() - stats.mtimeMs > ABANDONED_WITHOUT_LOCKS_AFTER_MS ? stats.size : undefined;
  }
  try {
    const stats = await handle.stat();
    let free: boolean;
    let idleNeeded = ABANDONED_AFTER_MS;
    try {
      free = tryLockDescriptor(handle.fd);
    } catch {
      free = true;
      idleNeeded = ABANDONED_WITHOUT_LOCKS_AFTER_MS;
    }
    if (!free || Date.now() - stats.mtimeMs < idleNeeded) return undefined;
    if (reclaim) await rm(path, { force: true });
    return stats.size;
  } finally {
    await handle.close();
  }
}
