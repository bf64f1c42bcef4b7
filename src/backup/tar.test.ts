import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { isOrthIdError, OrthIdError } from '../core/errors.js';
import { readTar } from './tar-reader.js';
import { TAR_END, tarEntryHeader, tarPadding } from './tar-writer.js';

function archive(entries: { path: string; data: Buffer; records?: Record<string, string> }[]): Buffer {
  const mtime = new Date('2026-06-22T02:00:00Z');
  return Buffer.concat([
    ...entries.flatMap((e) => [
      tarEntryHeader({ path: e.path, size: e.data.length, mtime, records: e.records }),
      e.data,
      tarPadding(e.data.length),
    ]),
    TAR_END,
  ]);
}

/** Yields `data` in odd-sized pieces, so no header lines up with a chunk. */
async function* pieces(data: Buffer, size = 777): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

async function read(data: Buffer) {
  const out: { path: string; data: string; records: Record<string, string> }[] = [];
  for await (const entry of readTar(pieces(data))) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry.body) chunks.push(chunk);
    out.push({ path: entry.path, data: Buffer.concat(chunks).toString('utf8'), records: entry.records });
  }
  return out;
}

const LONG_KEY = `media/${'ü'.repeat(80)}/avatar-with-a-long-name.png`;

describe('the objects archive format (pax tar)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'orthid-tar-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('reads back what it wrote: keys longer than 100 bytes and UTF-8, bodies and pax records', async () => {
    const data = archive([
      { path: 'a.txt', data: Buffer.from('hello'), records: { 'SCHILY.xattr.user.orthid.sha256': 'x' } },
      { path: LONG_KEY, data: Buffer.alloc(1500, 7) },
      { path: 'empty', data: Buffer.alloc(0) },
    ]);
    const entries = await read(data);
    assert.deepEqual(
      entries.map((e) => [e.path, e.data.length]),
      [
        ['a.txt', 5],
        [LONG_KEY, 1500],
        ['empty', 0],
      ],
    );
    assert.equal(entries[0]!.records['SCHILY.xattr.user.orthid.sha256'], 'x');
  });

  test('GNU tar lists and extracts it with the full keys, without a warning', () => {
    const file = join(dir, 'objects.tar');
    const records = {
      'SCHILY.xattr.user.orthid.sha256': 'ab'.repeat(32),
      'SCHILY.xattr.user.orthid.meta.owner': 'ann',
    };
    writeFileSync(
      file,
      archive([
        { path: LONG_KEY, data: Buffer.from('png bytes'), records },
        { path: 'audit/2026/archive.jsonl', data: Buffer.from('{}\n') },
      ]),
    );
    const listing = spawnSync('tar', ['-tf', file], { encoding: 'utf8' });
    assert.equal(listing.stderr, '');
    assert.deepEqual(listing.stdout.trim().split('\n'), [LONG_KEY, 'audit/2026/archive.jsonl']);
    const out = join(dir, 'x');
    execFileSync('mkdir', ['-p', out]);
    execFileSync('tar', ['-xf', file, '-C', out], { stdio: 'pipe' });
    assert.equal(readFileSync(join(out, LONG_KEY), 'utf8'), 'png bytes');
  });

  test('reads an archive GNU tar wrote', async () => {
    const src = join(dir, 'src');
    execFileSync('mkdir', ['-p', join(src, 'sub')]);
    writeFileSync(join(src, 'sub', 'file.bin'), Buffer.alloc(2000, 1));
    const file = join(dir, 'gnu.tar');
    execFileSync('tar', ['--format=pax', '-cf', file, '-C', src, 'sub']);
    const entries = await read(readFileSync(file));
    assert.deepEqual(
      entries.map((e) => [e.path, e.data]),
      [['sub/file.bin', '\x01'.repeat(2000)]],
    );
  });

  test('an archive cut short, even at an entry boundary, is refused with backup.archive_invalid', async () => {
    const data = archive([
      { path: 'a', data: Buffer.alloc(600, 1) },
      { path: 'b', data: Buffer.alloc(10, 2) },
    ]);
    for (const cut of [100, 1200, data.length - 1024, data.length - 512]) {
      await assert.rejects(
        read(data.subarray(0, cut)),
        (e) => isOrthIdError(e, 'backup.archive_invalid'),
        `cut at ${cut}`,
      );
    }
  });

  test('a damaged header is refused, not misread', async () => {
    const data = Buffer.from(archive([{ path: 'a', data: Buffer.from('x') }]));
    data[1024 + 10] ^= 0xff;
    await assert.rejects(read(data), (e) => isOrthIdError(e, 'backup.archive_invalid'));
  });

  test('an entry whose body is not read is skipped', async () => {
    const names: string[] = [];
    for await (const entry of readTar(
      pieces(
        archive([
          { path: 'a', data: Buffer.alloc(5000) },
          { path: 'b', data: Buffer.from('b') },
        ]),
      ),
    )) {
      names.push(entry.path);
    }
    assert.deepEqual(names, ['a', 'b']);
  });

  test('zero padding after the end marker is accepted, any other byte after it is refused', async () => {
    const data = archive([{ path: 'a', data: Buffer.from('a') }]);
    assert.equal((await read(Buffer.concat([data, Buffer.alloc(10 * 512)]))).length, 1);
    const tail = Buffer.alloc(1024);
    tail[700] = 1;
    await assert.rejects(read(Buffer.concat([data, tail])), (e) =>
      isOrthIdError(e, 'backup.archive_invalid'),
    );
    // A block that is zero but for its checksum field reads as no header at all to tar-stream.
    const checksumOnly = Buffer.alloc(1024);
    checksumOnly[512 + 150] = 0x31;
    await assert.rejects(read(Buffer.concat([data, checksumOnly])), (e) =>
      isOrthIdError(e, 'backup.archive_invalid'),
    );
  });

  test("a failure of the source itself (e.g. a failed decryption) passes through as the source's own error", async () => {
    const data = archive([{ path: 'a', data: Buffer.alloc(5000, 1) }]);
    const failing = async function* () {
      yield data.subarray(0, 2048);
      throw new OrthIdError('age.decrypt_failed', 'chunk 1 failed authentication');
    };
    await assert.rejects(
      (async () => {
        for await (const entry of readTar(failing())) for await (const _ of entry.body);
      })(),
      (e) => isOrthIdError(e, 'age.decrypt_failed'),
    );
  });
});
