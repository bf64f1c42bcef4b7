// An exclusive lock between processes, also on different hosts sharing a network volume (the
// keystore file replicas share): a lock file created with O_EXCL (atomic on local file systems and
// NFSv3+), holding its owner (host, pid, a random token). The holder touches it while it holds
// it; another process takes it over only when it saw the file unchanged for the stale period by
// its own clock (so clock skew between hosts does not matter), or at once when the owner is a
// process on its own host that has died. Takeover renames the stale file away first, so two
// waiters cannot both take it.
// "Has died" is the kernel's word, not the pid's: the holder also keeps a kernel lock on its
// lock file (src/core/kernel-lock.ts), gone with its process, so a holder killed with -9 whose
// pid is in use again (in a container, the next start is often the same pid) is still seen dead.
import { randomBytes } from 'node:crypto';
import { type FileHandle, open, readFile, rename, rm, stat, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { tryLockDescriptor } from './kernel-lock.js';

export interface FileLockOptions {
  /** How long to wait for the lock before `onTimeout` (default 10 s). */
  waitMs?: number;
  /** How long an untouched lock file must stay unchanged before it counts as abandoned (default 30 s). */
  staleMs?: number;
  /** The error to throw when the lock stays held for `waitMs`. */
  onTimeout: (lockPath: string) => Error;
}

interface Owner {
  host: string;
  pid: number;
  token: string;
  /** The holder keeps a kernel lock on the file (absent in files of older versions, judged by pid). */
  kernelLock?: boolean;
}

async function readOwner(lockPath: string): Promise<Owner | undefined> {
  try {
    const value = JSON.parse(await readFile(lockPath, 'utf8')) as Partial<Owner>;
    return typeof value.host === 'string' && typeof value.pid === 'number' && typeof value.token === 'string'
      ? (value as Owner)
      : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a process with this pid runs on this host (EPERM: it runs, as another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Tries once to create the lock file; its handle (holding the kernel lock) when this process now
 * holds it. The kernel lock comes before the owner is written, so a waiter that can read the
 * owner and take the kernel lock knows the holder is gone.
 */
async function tryCreate(lockPath: string, owner: Owner): Promise<FileHandle | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(lockPath, 'wx', 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
    throw error;
  }
  try {
    let kernelLock = false;
    try {
      kernelLock = tryLockDescriptor(handle.fd);
    } catch {
      // A filesystem without locks: waiters judge this holder by its pid and heartbeat.
    }
    await handle.writeFile(JSON.stringify({ ...owner, kernelLock }));
    await handle.sync();
    return handle;
  } catch (error) {
    await handle.close();
    await rm(lockPath, { force: true });
    throw error;
  }
}

/** Whether the holder of a lock file on this host is gone: its kernel lock is free, or (older files) its pid. */
async function holderGone(lockPath: string, current: Owner): Promise<boolean> {
  if (current.kernelLock !== true) return !processAlive(current.pid);
  let probe: FileHandle;
  try {
    probe = await open(lockPath, 'r+');
  } catch {
    return false; // released or broken meanwhile: the next round sees
  }
  try {
    return tryLockDescriptor(probe.fd);
  } catch {
    return !processAlive(current.pid);
  } finally {
    await probe.close();
  }
}

/** Moves an abandoned lock file away, if it is still the one judged abandoned. */
async function breakLock(lockPath: string, seen: { token: string | undefined }): Promise<void> {
  const aside = `${lockPath}.stale-${randomBytes(6).toString('hex')}`;
  try {
    await rename(lockPath, aside);
  } catch {
    return; // someone else broke it, or its owner released it
  }
  const moved = await readOwner(aside);
  if (moved?.token !== seen.token) {
    // Between the judgement and the rename another waiter took the lock: give it back.
    await rename(aside, lockPath).catch(() => undefined);
    return;
  }
  await rm(aside, { force: true });
}

/**
 * Runs `fn` holding the lock file `lockPath`, released afterwards (also when `fn` throws).
 *
 * @example
 * await withFileLock(`${path}.lock`, () => rewrite(path), { onTimeout: (p) => new Error(`${p} stays locked`) });
 */
export async function withFileLock<T>(
  lockPath: string,
  fn: () => Promise<T>,
  options: FileLockOptions,
): Promise<T> {
  const waitMs = options.waitMs ?? 10_000;
  const staleMs = options.staleMs ?? 30_000;
  const owner: Owner = { host: hostname(), pid: process.pid, token: randomBytes(12).toString('hex') };
  const deadline = Date.now() + waitMs;
  /** The other owner's lock file as last seen, and since when (by this process's clock) it is unchanged. */
  let watched: { token: string | undefined; mtimeMs: number; since: number } | undefined;
  for (;;) {
    const created = await tryCreate(lockPath, owner);
    if (created !== undefined) return holding(lockPath, created, owner, staleMs, fn);
    const [current, info] = await Promise.all([readOwner(lockPath), stat(lockPath).catch(() => undefined)]);
    if (info !== undefined) {
      const now = Date.now();
      if (watched === undefined || watched.token !== current?.token || watched.mtimeMs !== info.mtimeMs) {
        watched = { token: current?.token, mtimeMs: info.mtimeMs, since: now };
      }
      const deadOnThisHost =
        current !== undefined && current.host === owner.host && (await holderGone(lockPath, current));
      if (deadOnThisHost || now - watched.since > staleMs) {
        await breakLock(lockPath, watched);
        watched = undefined;
        continue;
      }
    }
    if (Date.now() > deadline) throw options.onTimeout(lockPath);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Runs `fn` while holding the lock file `held` (open, with its kernel lock), then releases it. */
async function holding<T>(
  lockPath: string,
  held: FileHandle,
  owner: Owner,
  staleMs: number,
  fn: () => Promise<T>,
): Promise<T> {
  // The heartbeat tells waiters on other hosts the holder is alive, however long `fn` takes.
  const heartbeat = setInterval(
    () => {
      const now = new Date();
      utimes(lockPath, now, now).catch(() => undefined);
    },
    Math.min(2_000, staleMs / 4),
  );
  heartbeat.unref();
  try {
    return await fn();
  } finally {
    clearInterval(heartbeat);
    // Remove only our own lock: a waiter may have broken it if this process stalled past staleMs.
    if ((await readOwner(lockPath))?.token === owner.token) await rm(lockPath, { force: true });
    await held.close();
  }
}
