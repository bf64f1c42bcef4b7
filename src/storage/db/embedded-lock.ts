// One process at a time may open an embedded (PGlite) data directory.
import { OrthIdError } from '../../core/errors.js';
import { acquirePidLock, type PidLock } from './pid-lock.js';

export type EmbeddedLock = PidLock;

/** Acquires `path`; `db.locked` (with the holder's pid in details) when a live process holds it. */
export function acquireEmbeddedLock(path: string): Promise<EmbeddedLock> {
  return acquirePidLock(path, {
    reentrant: true,
    locked: (pid) =>
      pid > 0
        ? new OrthIdError('db.locked', `The embedded database is in use by OrthID process ${pid}.`, {
            details: { pid },
          })
        : new OrthIdError(
            'db.locked',
            `The embedded database is in use by another OrthID process (it holds ${path}); stop it or wait for it to finish.`,
          ),
  });
}
