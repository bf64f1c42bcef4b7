// A lock file holding its owner's pid, for what one process at a time may do with an embedded
// data directory (open PGlite, take a dump). A lock left by a dead process is taken over.
import { open, readFile, rm } from 'node:fs/promises';
import type { OrthIdError } from '../../core/errors.js';
import { processAlive } from '../../core/file-lock.js';

export interface PidLock {
  release(): Promise<void>;
}

export interface PidLockOptions {
  /** Whether this process already holding the lock counts as free (a leftover of an earlier open). */
  reentrant: boolean;
  /** The error when a live process (its pid given, or 0 when unknown) holds the lock. */
  locked(pid: number): OrthIdError;
}

export async function acquirePidLock(path: string, options: PidLockOptions): Promise<PidLock> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, 'wx', 0o600);
      await handle.writeFile(String(process.pid));
      await handle.close();
      return { release: () => rm(path, { force: true }) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      const ours = pid === process.pid && options.reentrant;
      if (pid > 0 && !ours && processAlive(pid)) throw options.locked(pid);
      await rm(path, { force: true });
    }
  }
  throw options.locked(0);
}
