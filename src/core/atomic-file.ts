// The one way OrthID replaces a file: write a temporary file beside it (mode 0600, created
// exclusively), fsync it, rename it over the target and fsync the directory, so a reader sees the
// old file or the new one and a failure leaves no partial file behind. A process killed mid-way
// leaves its `.partial` file; the next write of the same target removes it (the writer's kernel
// lock tells a dead writer's file from a live one's).
import { randomBytes } from 'node:crypto';
import { type FileHandle, mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { abandonedSize, claimTemporaryFile } from './temporary-files.js';

/** Makes the renames in `dir` durable; filesystems that cannot fsync a directory are left as they are. */
export async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (!['EISDIR', 'EINVAL', 'EPERM', 'EBADF'].includes(code)) throw err;
  } finally {
    await handle?.close();
  }
}

/** Writes every byte of `chunk`, however many calls the file system needs. */
async function writeAll(handle: FileHandle, chunk: Buffer): Promise<void> {
  let offset = 0;
  while (offset < chunk.length) {
    const { bytesWritten } = await handle.write(chunk, offset, chunk.length - offset);
    offset += bytesWritten;
  }
}

/**
 * Replaces `path` with `data` (text, bytes or a stream, e.g. an age-encrypted export); with
 * `createDirectory`, its directory is created (mode 0700) when absent. On any failure, including
 * the stream's, the target is untouched and the temporary file removed.
 *
 * @example
 * await writeFileAtomically('/srv/orthid/keystore.json', JSON.stringify(file), { createDirectory: true });
 */
export async function writeFileAtomically(
  path: string,
  data: string | Uint8Array | Readable,
  options: { createDirectory?: boolean } = {},
): Promise<void> {
  const dir = dirname(path);
  if (options.createDirectory === true) await mkdir(dir, { recursive: true, mode: 0o700 });
  const temp = `${path}.${randomBytes(6).toString('hex')}.partial`;
  try {
    const handle = await open(temp, 'wx', 0o600);
    claimTemporaryFile(handle);
    try {
      if (typeof data === 'string' || data instanceof Uint8Array) {
        await writeAll(handle, Buffer.from(data));
      } else {
        for await (const chunk of data) {
          await writeAll(handle, typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
        }
      }
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  await syncDirectory(dir);
  await removeAbandonedPartials(path);
}

/** Removes the `.partial` files of earlier writes of `path` whose process died; best effort. */
async function removeAbandonedPartials(path: string): Promise<void> {
  const dir = dirname(path);
  const name = basename(path);
  const partial = new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.[0-9a-f]{12}\\.partial$`);
  try {
    for (const entry of await readdir(dir)) {
      if (partial.test(entry)) await abandonedSize(join(dir, entry), true);
    }
  } catch {
    // The write itself succeeded; a leftover stays for the next one.
  }
}
