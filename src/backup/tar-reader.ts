// Reads the pax/ustar archives tar-writer.ts writes (and plain ustar from other tools) as a stream
// of entries whose bodies stream too, so verify and restore hold one chunk at a time, never a file.
import { OrthIdError } from '../core/errors.js';
import { BLOCK } from './tar-writer.js';

export interface TarEntry {
  path: string;
  size: number;
  mtime: Date;
  /** Pax records of the entry (including OrthID's, e.g. `SCHILY.xattr.user.orthid.sha256`). */
  records: Record<string, string>;
  /** The entry's bytes; read it before asking for the next entry, or it is skipped. */
  body: AsyncIterable<Buffer>;
}

function corrupt(why: string): OrthIdError {
  return new OrthIdError('backup.archive_invalid', `The objects archive is malformed: ${why}.`);
}

/** Exact-length reads over an async iterable of chunks. */
class ByteReader {
  #iterator: AsyncIterator<Buffer>;
  #pending: Buffer = Buffer.alloc(0);
  #done = false;

  constructor(source: AsyncIterable<Buffer | Uint8Array | string>) {
    const inner = source[Symbol.asyncIterator]();
    this.#iterator = {
      next: async () => {
        const r = await inner.next();
        return r.done ? r : { done: false, value: Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value) };
      },
    };
  }

  async #fill(): Promise<boolean> {
    if (this.#done) return false;
    const r = await this.#iterator.next();
    if (r.done) {
      this.#done = true;
      return false;
    }
    this.#pending = this.#pending.length === 0 ? r.value : Buffer.concat([this.#pending, r.value]);
    return true;
  }

  /** Exactly `n` bytes, or fewer only at the end of input. */
  async read(n: number): Promise<Buffer> {
    while (this.#pending.length < n && (await this.#fill()));
    const out = this.#pending.subarray(0, n);
    this.#pending = this.#pending.subarray(out.length);
    return out;
  }

  /** The next `n` bytes as chunks, as they arrive. */
  async *chunks(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.#pending.length === 0 && !(await this.#fill())) throw corrupt('it ends inside an entry');
      const out = this.#pending.subarray(0, left);
      this.#pending = this.#pending.subarray(out.length);
      left -= out.length;
      yield out;
    }
  }
}

function text(block: Buffer, offset: number, width: number): string {
  const field = block.subarray(offset, offset + width);
  const end = field.indexOf(0);
  return field.subarray(0, end === -1 ? width : end).toString('utf8');
}

function number(block: Buffer, offset: number, width: number): number {
  if ((block[offset]! & 0x80) !== 0) {
    let value = 0n;
    for (let i = offset + 1; i < offset + width; i++) value = (value << 8n) | BigInt(block[i]!);
    return Number(value);
  }
  const digits = text(block, offset, width).trim();
  if (digits === '') return 0;
  if (!/^[0-7]+$/.test(digits)) throw corrupt('a header holds a non-octal number');
  return Number.parseInt(digits, 8);
}

function checksumOk(block: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
  return number(block, 148, 8) === sum;
}

function parsePax(data: Buffer): Record<string, string> {
  const records: Record<string, string> = {};
  let offset = 0;
  while (offset < data.length) {
    const space = data.indexOf(0x20, offset);
    const length = Number(data.subarray(offset, space).toString('ascii'));
    if (space === -1 || !Number.isInteger(length) || length <= 0 || offset + length > data.length) {
      throw corrupt('a pax record is malformed');
    }
    const record = data.subarray(space + 1, offset + length - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq === -1) throw corrupt('a pax record has no "="');
    records[record.slice(0, eq)] = record.slice(eq + 1);
    offset += length;
  }
  return records;
}

const padded = (size: number) => Math.ceil(size / BLOCK) * BLOCK;

async function skip(reader: ByteReader, n: number): Promise<void> {
  for await (const chunk of reader.chunks(n)) void chunk;
}

/**
 * The regular-file entries of a tar stream. Throws `backup.archive_invalid` on a damaged header,
 * a truncated body or a missing end-of-archive marker (a tar cut short at an entry boundary
 * would otherwise look complete).
 */
export async function* readTar(
  source: AsyncIterable<Buffer | Uint8Array | string>,
): AsyncGenerator<TarEntry> {
  const reader = new ByteReader(source);
  let pax: Record<string, string> = {};
  let global: Record<string, string> = {};
  for (;;) {
    const block = await reader.read(BLOCK);
    if (block.length === 0) throw corrupt('it ends without the end-of-archive marker');
    if (block.length < BLOCK) throw corrupt('it ends inside a header');
    if (block.every((b) => b === 0)) {
      const second = await reader.read(BLOCK);
      if (second.length !== BLOCK || !second.every((b) => b === 0))
        throw corrupt('the end-of-archive marker is damaged');
      // Read to the end, so a caller decrypting the stream authenticates it all; tar tools may
      // pad an archive with zero blocks, anything else after the end is damage.
      for (;;) {
        const rest = await reader.read(64 * 1024);
        if (rest.length === 0) return;
        if (!rest.every((b) => b === 0)) throw corrupt('there are bytes after the end of the archive');
      }
    }
    if (!checksumOk(block)) throw corrupt('a header checksum does not match');
    const type = String.fromCharCode(block[156]!);
    const headerSize = number(block, 124, 12);
    if (type === 'x' || type === 'g') {
      const records = parsePax(await reader.read(padded(headerSize)).then((b) => b.subarray(0, headerSize)));
      if (type === 'x') pax = records;
      else global = { ...global, ...records };
      continue;
    }
    const records = { ...global, ...pax };
    pax = {};
    const size = records.size === undefined ? headerSize : Number(records.size);
    if (!Number.isSafeInteger(size) || size < 0) throw corrupt('an entry has an invalid size');
    if (type !== '0' && type !== '\0') {
      // Directories, links and the like carry no object.
      await skip(reader, padded(size));
      continue;
    }
    const prefix = text(block, 345, 155);
    const name = prefix === '' ? text(block, 0, 100) : `${prefix}/${text(block, 0, 100)}`;
    const mtime = records.mtime === undefined ? number(block, 136, 12) : Number(records.mtime);
    let remaining = size;
    const body = (async function* () {
      for await (const chunk of reader.chunks(remaining)) {
        remaining -= chunk.length;
        yield chunk;
      }
    })();
    yield { path: records.path ?? name, size, mtime: new Date(mtime * 1000), records, body };
    // Whatever the consumer left unread is skipped.
    await skip(reader, remaining);
    const rest = padded(size) - size;
    if (rest > 0 && (await reader.read(rest)).length !== rest) throw corrupt('it ends inside an entry');
  }
}
