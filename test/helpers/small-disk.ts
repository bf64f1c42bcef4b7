// Real small filesystems for disk-fault tests: a tmpfs of a given size mounted on a fresh
// directory (tests run as root), filled up or remounted read-only, unmounted afterwards.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SmallDisk {
  dir: string;
  /** Writes a filler file until the filesystem has no byte left. */
  fill(): void;
  readOnly(): void;
  remove(): void;
}

export function mountSmallDisk(sizeKiB: number): SmallDisk {
  const dir = mkdtempSync(join(tmpdir(), 'orthid-small-disk-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeKiB}k,mode=0700`, 'tmpfs', dir], {
      stdio: 'pipe',
    });
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(
      `Mounting a ${sizeKiB} KiB tmpfs on ${dir} failed; the disk-fault tests run as root with mount(8): ${String((error as { stderr?: Buffer }).stderr ?? error)}`,
    );
  }
  return {
    dir,
    fill() {
      const fd = openSync(join(dir, 'filler'), 'a');
      try {
        for (;;) writeSync(fd, randomBytes(4096));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
      } finally {
        closeSync(fd);
      }
    },
    readOnly() {
      execFileSync('mount', ['-o', 'remount,ro', dir], { stdio: 'pipe' });
    },
    remove() {
      execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
