// One process at a time may open an embedded (PGlite) data directory: a lock file holding the
// owner's pid. A lock left by a dead process is taken over.
import { open, readFile, rm } from 'node:fs/promises';
import { OrthIdError } from '../../core/errors.js';

export interface EmbeddedLock {
  release(): Promise<void>;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Acquires `path`; `db.locked` (with the holder's pid in details) when a live process holds it. */
export async function acquireEmbeddedLock(path: string): Promise<EmbeddedLock> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, 'wx', 0o600);
      await handle.writeFile(String(process.pid));
      await handle.close();
      return { release: () => rm(path, { force: true }) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const pid = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (pid > 0 && pid !== process.pid && alive(pid)) {
        throw new OrthIdError('db.locked', `The embedded database is in use by OrthID process ${pid}.`, {
          details: { pid },
        });
      }
      await rm(path, { force: true });
    }
  }
  throw new OrthIdError('db.locked', `Could not lock ${path}; remove it if no OrthID process is running.`);
}
