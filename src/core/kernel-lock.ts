// Exclusive locks the kernel keeps on an open file: an open file description lock (fcntl
// F_OFD_SETLK on Linux, flock(2) on macOS) through fs-native-extensions, a maintained addon
// shipped with prebuilt binaries. Why this rather than the alternatives:
// - A pid in a file says nothing once its process is gone: a killed holder not yet reaped still
//   answers kill(pid, 0), and in a container the next start often gets the same pid (even 1),
//   so the dead holder looks alive and the restart fails forever.
// - A Linux abstract Unix socket bound per data directory also dies with its process, but it
//   lives in a network namespace: two containers sharing the volume and not the network would
//   both take it and open the same database.
// - A socket file in the directory with a liveness probe needs a lock of its own for the
//   takeover (two starters removing each other's fresh socket), and a stalled holder fails the probe.
// The kernel drops an OFD lock when the last descriptor of its open file description closes,
// whichever way the process ends (kill -9 too, before it is reaped); it holds across containers
// sharing the volume (one kernel) and NFS forwards it to the server's lock manager. Node opens
// files close-on-exec, so child processes (pg_dump, age) never inherit one.
import { createRequire } from 'node:module';

interface NativeLocks {
  tryLock(fd: number): boolean;
  unlock(fd: number): void;
}

const native = createRequire(import.meta.url)('fs-native-extensions') as NativeLocks;

/**
 * Takes the exclusive lock on the file open as `fd` without waiting: true when this descriptor
 * now holds it, false when another open of the file (in any process, this one too) holds it.
 * The lock goes when the descriptor is closed. Throws the errno error (e.g. ENOLCK) where the
 * filesystem has no locks.
 */
export function tryLockDescriptor(fd: number): boolean {
  return native.tryLock(fd);
}

/** Gives the lock up while keeping the descriptor open. */
export function unlockDescriptor(fd: number): void {
  native.unlock(fd);
}
