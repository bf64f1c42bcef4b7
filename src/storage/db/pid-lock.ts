// A lock file for what one process at a time may do with an embedded data directory (open
// PGlite, take a dump). Holding it means holding the kernel's lock on the file (src/core/
// kernel-lock.ts), which dies with its process: a start after kill -9 always finds it free. The
// pid written into the file only names the holder in the refusal; it is never trusted as proof.
import { constants } from 'node:fs';
import { type FileHandle, open, readFile, rm, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { OrthIdError } from '../../core/errors.js';
import { tryLockDescriptor } from '../../core/kernel-lock.js';

export interface PidLock {
  release(): Promise<void>;
}

export interface PidLockOptions {
  /** Whether this process already holding the lock counts as free (a second open in the same process). */
  reentrant: boolean;
  /** The error when a live process (its pid given, or 0 when unknown) holds the lock. */
  locked(pid: number): OrthIdError;
}

/** Locks this process holds, by absolute path: a second open file description would conflict with the first. */
const held = new Map<string, { handle: FileHandle; count: number }>();

function releaser(path: string, entry: { handle: FileHandle; count: number }): PidLock {
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      entry.count -= 1;
      if (entry.count > 0) return;
      held.delete(path);
      // Removed while still locked: a process that opened the file meanwhile sees it replaced and retries.
      await rm(path, { force: true });
      await entry.handle.close();
    },
  };
}

async function holderPid(path: string): Promise<number> {
  const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
  return Number.isInteger(pid) && pid > 0 ? pid : 0;
}

/** Acquisitions in progress, by path: one at a time, so two opens in this process never race each other. */
const acquiring = new Map<string, Promise<unknown>>();

export function acquirePidLock(path: string, options: PidLockOptions): Promise<PidLock> {
  const key = resolve(path);
  const result = (acquiring.get(key) ?? Promise.resolve()).then(() => acquire(key, options));
  acquiring.set(
    key,
    result.catch(() => undefined),
  );
  return result;
}

async function acquire(key: string, options: PidLockOptions): Promise<PidLock> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const mine = held.get(key);
    if (mine !== undefined) {
      if (!options.reentrant) throw options.locked(process.pid);
      mine.count += 1;
      return releaser(key, mine);
    }
    const handle = await open(key, constants.O_RDWR | constants.O_CREAT, 0o600);
    let kept = false;
    try {
      if (!tryLockDescriptor(handle.fd)) throw options.locked(await holderPid(key));
      // The previous holder removes the file on release; a lock on a removed file excludes no one.
      const [opened, current] = await Promise.all([handle.stat(), stat(key).catch(() => undefined)]);
      if (current === undefined || current.ino !== opened.ino || current.dev !== opened.dev) continue;
      await handle.truncate(0);
      await handle.write(String(process.pid), 0);
      const entry = { handle, count: 1 };
      held.set(key, entry);
      kept = true;
      return releaser(key, entry);
    } finally {
      if (!kept) await handle.close();
    }
  }
  throw options.locked(await holderPid(key));
}
