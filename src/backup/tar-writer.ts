// Writes POSIX pax (ustar + extended header) tar entries, so an objects archive opens with any
// `tar` and each entry carries its object key, SHA-256, content type and metadata as pax records.
// Only what backups need: regular files, headers built in memory, bodies streamed by the caller.

export const BLOCK = 512;

/** Two zero blocks end an archive. */
export const TAR_END: Buffer = Buffer.alloc(2 * BLOCK);

/**
 * Prefix of OrthID's pax records. Extended attributes in star's `SCHILY.xattr.` form, which GNU
 * tar and bsdtar read silently (a vendor `ORTHID.` keyword makes GNU tar warn on every entry),
 * and which `tar --xattrs -x` even restores as `user.orthid.*` attributes.
 */
export const PAX_PREFIX = 'SCHILY.xattr.user.orthid.';

export interface TarEntryHeader {
  path: string;
  size: number;
  mtime: Date;
  /** Extra pax records, e.g. `SCHILY.xattr.user.orthid.sha256`. */
  records?: Record<string, string>;
}

/** One pax record, `"<len> <key>=<value>\n"`, whose length counts its own digits. */
function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  const bodyLength = Buffer.byteLength(body);
  let length = bodyLength + 1;
  while (bodyLength + String(length).length !== length) length = bodyLength + String(length).length;
  return Buffer.from(`${length}${body}`);
}

function writeText(block: Buffer, offset: number, width: number, text: string): void {
  block.write(text, offset, Math.min(width, Buffer.byteLength(text)), 'utf8');
}

function writeOctal(block: Buffer, offset: number, width: number, value: number): void {
  const digits = value.toString(8);
  if (digits.length <= width - 1) {
    writeText(block, offset, width, `${digits.padStart(width - 1, '0')}\0`);
    return;
  }
  // Too large for octal (sizes ≥ 8 GiB): GNU base-256. The pax `size` record is authoritative anyway.
  block[offset] = 0x80;
  let rest = BigInt(value);
  for (let i = offset + width - 1; i > offset; i--) {
    block[i] = Number(rest & 0xffn);
    rest >>= 8n;
  }
}

function ustarHeader(name: string, size: number, mtime: Date, type: '0' | 'x'): Buffer {
  const block = Buffer.alloc(BLOCK);
  writeText(block, 0, 100, name);
  writeOctal(block, 100, 8, 0o600);
  writeOctal(block, 108, 8, 0);
  writeOctal(block, 116, 8, 0);
  writeOctal(block, 124, 12, size);
  writeOctal(block, 136, 12, Math.max(0, Math.floor(mtime.getTime() / 1000)));
  block.fill(0x20, 148, 156);
  block.write(type, 156, 1, 'ascii');
  block.write('ustar\0', 257, 6, 'ascii');
  block.write('00', 263, 2, 'ascii');
  writeText(block, 265, 32, 'orthid');
  writeText(block, 297, 32, 'orthid');
  let sum = 0;
  for (const byte of block) sum += byte;
  writeText(block, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return block;
}

/** Zero bytes that complete a body of `size` bytes to a whole block. */
export function tarPadding(size: number): Buffer {
  const rest = size % BLOCK;
  return rest === 0 ? Buffer.alloc(0) : Buffer.alloc(BLOCK - rest);
}

/**
 * The headers of one file entry: a pax extended header (path, size, mtime and `records`) and the
 * ustar header whose name is a plain-ASCII stand-in for readers that ignore pax.
 */
export function tarEntryHeader(entry: TarEntryHeader): Buffer {
  const records = Buffer.concat([
    paxRecord('path', entry.path),
    paxRecord('size', String(entry.size)),
    paxRecord('mtime', (entry.mtime.getTime() / 1000).toFixed(3)),
    ...Object.entries(entry.records ?? {}).map(([key, value]) => paxRecord(key, value)),
  ]);
  const fallbackName = /^[\x20-\x7e]{1,100}$/.test(entry.path)
    ? entry.path
    : `orthid-object-${entry.path.length}`;
  return Buffer.concat([
    ustarHeader('PaxHeader/object', records.length, entry.mtime, 'x'),
    records,
    tarPadding(records.length),
    ustarHeader(fallbackName, entry.size, entry.mtime, '0'),
  ]);
}
