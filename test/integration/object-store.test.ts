// One contract suite for every ObjectStore backend: a local directory and a real S3-protocol
// server (fauxqs, started by the helper). A backend whose server cannot start fails, never skips.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readdirSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { type ErrorCode, isOrthIdError } from '../../src/core/errors.js';
import { compareKeys } from '../../src/storage/objects/object-key.js';
import type { ObjectStore } from '../../src/storage/objects/object-store.js';
import { openObjectStore } from '../../src/storage/objects/open-object-store.js';
import { startS3Server, TEST_CREDENTIALS } from '../helpers/s3-server.js';

interface Backend {
  url: string;
  expectedRegion: string | undefined;
  /** Changes the stored bytes of `key` behind the store's back, keeping its recorded checksum. */
  tamper(key: string): Promise<void>;
  /** Leaves debris as a crash in the middle of a put would. */
  simulateCrashedPut(): Promise<void>;
  stop(): Promise<void>;
}

const backends: { name: string; start(): Promise<Backend> }[] = [
  {
    name: 'local directory',
    async start() {
      const root = mkdtempSync(join(tmpdir(), 'orthid-objects-'));
      return {
        url: pathToFileURL(root).href,
        expectedRegion: undefined,
        async tamper(key) {
          // In place, as disk corruption would: same file, same size, one byte flipped.
          const fd = openSync(join(root, ...key.split('/')), 'r+');
          writeSync(fd, Buffer.from('X'), 0, 1, 3);
          closeSync(fd);
        },
        async simulateCrashedPut() {
          writeFileSync(join(root, '.orthid-tmp-0123456789abcdef'), 'half an object');
        },
        async stop() {
          rmSync(root, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: 'S3',
    async start() {
      const server = await startS3Server({ region: 'eu-west-3', prefix: 'orthid' });
      return {
        url: server.url,
        expectedRegion: server.region,
        async tamper(key) {
          const store = await openObjectStore(server.url);
          const info = await store.head(key);
          const original = await readAll((await store.get(key)).body);
          original[3] = original[3] === 0x58 ? 0x59 : 0x58;
          await server.client.send(
            new PutObjectCommand({
              Bucket: server.bucket,
              Key: `orthid/${key}`,
              Body: original,
              Metadata: { sha256: info?.sha256 ?? '' },
            }),
          );
        },
        async simulateCrashedPut() {
          await server.client.send(
            new PutObjectCommand({
              Bucket: server.bucket,
              Key: 'orthid/.orthid-staging/crashed',
              Body: 'half an object',
            }),
          );
        },
        stop: () => server.stop(),
      };
    },
  },
];

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Streams `bytes` in uneven chunks, as a network or a pipe would deliver them. */
function streamOf(bytes: Buffer): Readable {
  return Readable.from(
    (function* () {
      for (
        let offset = 0, step = 1;
        offset < bytes.length;
        offset += step, step = (step * 7 + 13_001) % 300_000
      ) {
        yield bytes.subarray(offset, offset + step);
      }
    })(),
  );
}

async function assertCode(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isOrthIdError(err), `expected an OrthIdError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
}

async function listAll(
  store: ObjectStore,
  prefix: string,
  limit: number,
): Promise<{ keys: string[]; pages: number }> {
  const keys: string[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await store.list(prefix, { limit, ...(cursor === undefined ? {} : { cursor }) });
    assert.ok(page.items.length <= limit);
    keys.push(...page.items.map((item) => item.key));
    cursor = page.cursor;
    pages++;
  } while (cursor !== undefined);
  return { keys, pages };
}

for (const { name, start } of backends) {
  describe(`the ${name} object store`, () => {
    let backend: Backend;
    let store: ObjectStore;

    before(async () => {
      backend = await start();
      store = await openObjectStore(backend.url);
    });
    after(async () => {
      await backend?.stop();
    });

    test('stores an object and gives back its bytes, size, checksum, type and metadata', async () => {
      const bytes = Buffer.from('hello, object store\n');
      const put = await store.put('greetings/hello.txt', bytes, {
        contentType: 'text/plain',
        metadata: { 'backup-id': 'b-1' },
      });
      assert.equal(put.key, 'greetings/hello.txt');
      assert.equal(put.size, bytes.length);
      assert.equal(put.sha256, sha256(bytes));

      const head = await store.head('greetings/hello.txt');
      assert.ok(head);
      assert.equal(head.size, bytes.length);
      assert.equal(head.sha256, sha256(bytes));
      assert.equal(head.contentType, 'text/plain');
      assert.deepEqual(head.metadata, { 'backup-id': 'b-1' });
      assert.ok(head.lastModified instanceof Date);

      const { info, body } = await store.get('greetings/hello.txt');
      assert.equal(info.sha256, sha256(bytes));
      assert.deepEqual(await readAll(body), bytes);
    });

    test('stores an empty object', async () => {
      const put = await store.put('empty/object', Buffer.alloc(0));
      assert.equal(put.size, 0);
      assert.equal(put.sha256, sha256(Buffer.alloc(0)));
      assert.equal((await readAll((await store.get('empty/object')).body)).length, 0);
    });

    test('overwrites an object with a new version', async () => {
      await store.put('versions/v', Buffer.from('first'));
      await store.put('versions/v', Buffer.from('second, longer'));
      assert.equal((await readAll((await store.get('versions/v')).body)).toString(), 'second, longer');
      assert.equal((await store.head('versions/v'))?.sha256, sha256(Buffer.from('second, longer')));
    });

    test('deletes an object, and deleting it again still succeeds', async () => {
      await store.put('doomed/object', Buffer.from('bye'));
      await store.delete('doomed/object');
      assert.equal(await store.head('doomed/object'), undefined);
      await assertCode(store.get('doomed/object'), 'objects.not_found');
      await store.delete('doomed/object');
      assert.deepEqual((await store.list('doomed/')).items, []);
    });

    test('reports objects.not_found when reading a key that was never written', async () => {
      await assertCode(store.get('nothing/here'), 'objects.not_found');
      assert.equal(await store.head('nothing/here'), undefined);
    });

    test('streams random bytes in and reads them back byte-identical', async () => {
      const bytes = randomBytes(3 * 1024 * 1024 + 17);
      const put = await store.put('random/three-megabytes', streamOf(bytes));
      assert.equal(put.size, bytes.length);
      assert.equal(put.sha256, sha256(bytes));
      assert.ok((await readAll((await store.get('random/three-megabytes')).body)).equals(bytes));
    });

    test('uploads more than 20 MB in several parts and reads it back intact', async () => {
      const bytes = randomBytes(21 * 1024 * 1024 + 5);
      const put = await store.put('large/twenty-one-megabytes', streamOf(bytes), {
        contentType: 'application/x-test',
      });
      assert.equal(put.size, bytes.length);
      assert.equal(put.sha256, sha256(bytes));
      const { info, body } = await store.get('large/twenty-one-megabytes');
      assert.equal(info.size, bytes.length);
      const back = await readAll(body);
      assert.equal(back.length, bytes.length);
      assert.ok(back.equals(bytes));
    });

    test('hides what a crashed put leaves behind from listings', async () => {
      await backend.simulateCrashedPut();
      const { keys } = await listAll(store, '', 1000);
      assert.ok(keys.length > 0);
      assert.ok(
        keys.every((key) => !key.split('/').some((segment) => segment.startsWith('.orthid'))),
        keys.join(','),
      );
    });

    test('lists over 1000 keys in sorted pages of 250, each key exactly once', async () => {
      // Nested and flat keys side by side, so directory walking must still yield byte order.
      const keys = Array.from({ length: 1003 }, (_, i) =>
        i % 3 === 0 ? `many/g${i % 7}/k${String(i).padStart(4, '0')}` : `many/k${String(i).padStart(4, '0')}`,
      );
      const body = Buffer.from('x');
      const digest = sha256(body);
      let next = 0;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (next < keys.length) await store.put(keys[next++] as string, body, { sha256: digest });
        }),
      );
      const { keys: listed, pages } = await listAll(store, 'many/', 250);
      assert.ok(pages >= 4, `expected at least 4 pages, got ${pages}`);
      assert.equal(listed.length, keys.length);
      assert.equal(new Set(listed).size, keys.length);
      assert.deepEqual(listed, [...keys].sort(compareKeys));

      const first = await store.list('many/', { limit: 250 });
      assert.equal(first.items.length, 250);
      assert.equal(first.items[0]?.sha256, digest, 'listed items carry their checksum');
    });

    test('lists only the keys under a prefix, whether it ends at a slash or mid-name', async () => {
      for (const key of ['pre/a/1', 'pre/a/2', 'pre/ab', 'pre/b/1', 'prefixed'])
        await store.put(key, Buffer.from(key));
      const keysUnder = async (prefix: string) => (await store.list(prefix)).items.map((item) => item.key);
      assert.deepEqual(await keysUnder('pre/a/'), ['pre/a/1', 'pre/a/2']);
      assert.deepEqual(await keysUnder('pre/a'), ['pre/a/1', 'pre/a/2', 'pre/ab']);
      assert.deepEqual(await keysUnder('pre/'), ['pre/a/1', 'pre/a/2', 'pre/ab', 'pre/b/1']);
      assert.deepEqual(await keysUnder('pre/zzz'), []);
    });

    test('rejects unsafe keys with objects.invalid_key and writes nothing', async () => {
      const bad = [
        '',
        '../escape',
        'a/../../escape',
        '/absolute',
        'a//b',
        'a/',
        'a\\b',
        'nul\0byte',
        'a/./b',
        '.orthid-meta-x',
      ];
      for (const key of bad) {
        await assertCode(store.put(key, Buffer.from('x')), 'objects.invalid_key');
        await assertCode(store.get(key), 'objects.invalid_key');
        await assertCode(store.head(key), 'objects.invalid_key');
        await assertCode(store.delete(key), 'objects.invalid_key');
      }
      await assertCode(store.list('../'), 'objects.invalid_key');
      await assertCode(store.list('', { cursor: '../x' }), 'objects.invalid_key');
      await assertCode(store.list('', { limit: 0 }), 'objects.invalid_argument');
    });

    test('refuses a put whose bytes do not match the expected sha256 and leaves nothing visible', async () => {
      const wrong = sha256(Buffer.from('something else'));
      await assertCode(
        store.put('checked/small', Buffer.from('payload'), { sha256: wrong }),
        'objects.checksum_mismatch',
      );
      // Larger than one 8 MiB part, so on S3 a multipart upload is started and must be aborted.
      const large = randomBytes(9 * 1024 * 1024);
      await assertCode(
        store.put('checked/large', streamOf(large), { sha256: wrong }),
        'objects.checksum_mismatch',
      );
      assert.equal(await store.head('checked/small'), undefined);
      assert.equal(await store.head('checked/large'), undefined);
      assert.deepEqual((await store.list('checked/')).items, []);

      const good = await store.put('checked/small', Buffer.from('payload'), {
        sha256: sha256(Buffer.from('payload')),
      });
      assert.equal(good.sha256, sha256(Buffer.from('payload')));
    });

    test('keeps the previous version when an overwrite has the wrong sha256', async () => {
      await store.put('kept/object', Buffer.from('original'));
      await assertCode(
        store.put('kept/object', Buffer.from('replacement'), { sha256: sha256(Buffer.from('other')) }),
        'objects.checksum_mismatch',
      );
      assert.equal((await readAll((await store.get('kept/object')).body)).toString(), 'original');
    });

    test('errors the read with objects.checksum_mismatch when stored bytes were tampered with', async () => {
      await store.put('tampered/object', randomBytes(64 * 1024));
      await backend.tamper('tampered/object');
      const { body } = await store.get('tampered/object');
      await assertCode(readAll(body), 'objects.checksum_mismatch');
    });

    test('passes the error of a failing source stream to the caller and stores nothing', async () => {
      const failing = Readable.from(
        (async function* () {
          yield Buffer.from('some bytes');
          throw new Error('source broke');
        })(),
      );
      await assert.rejects(store.put('broken/source', failing), /source broke/);
      assert.equal(await store.head('broken/source'), undefined);
    });

    test('reports its region', async () => {
      assert.equal(await store.region(), backend.expectedRegion);
    });

    test('shows a URL without credentials', () => {
      assert.ok(!/secret/i.test(store.url));
    });
  });
}

describe('opening an object store', () => {
  test('rejects an unknown scheme with objects.invalid_url', async () => {
    await assertCode(openObjectStore('ftp://example.org/objects'), 'objects.invalid_url');
    await assertCode(openObjectStore('not a url'), 'objects.invalid_url');
  });

  test('rejects credentials in an S3 URL without repeating them', async () => {
    await assert.rejects(openObjectStore('s3://AKIAEXAMPLE:hunter2-secret@bucket-name/p'), (err: unknown) => {
      assert.ok(isOrthIdError(err, 'objects.invalid_url'));
      assert.ok(!err.message.includes('hunter2'), err.message);
      return true;
    });
  });

  test('rejects unknown S3 URL parameters and bad encryption settings', async () => {
    await assertCode(openObjectStore('s3://bucket-name/p?forcepathstyle=true'), 'objects.invalid_url');
    await assertCode(openObjectStore('s3://bucket-name/p?sse=des'), 'objects.invalid_url');
    await assertCode(openObjectStore('s3://bucket-name/p?sseKmsKeyId=k'), 'objects.invalid_url');
    await assertCode(openObjectStore('s3://bucket-name/../p'), 'objects.invalid_url');
  });

  test('reports an unreachable S3 server as objects.unavailable naming bucket and endpoint, not credentials', async () => {
    const server = await startS3Server({ bucket: 'gone-bucket' });
    const endpoint = server.endpoint;
    await server.stop();
    const store = await openObjectStore(
      `s3://gone-bucket/p?region=eu-west-3&endpoint=${encodeURIComponent(endpoint)}&forcePathStyle=true`,
    );
    await assert.rejects(store.put('a', Buffer.from('x')), (err: unknown) => {
      assert.ok(isOrthIdError(err, 'objects.unavailable'), String(err));
      assert.ok(err.message.includes('gone-bucket'), err.message);
      assert.ok(err.message.includes(endpoint), err.message);
      assert.ok(!err.message.includes(TEST_CREDENTIALS.secretAccessKey), err.message);
      return true;
    });
  });

  test('opens a local directory it has to create', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'orthid-objects-'));
    try {
      const store = await openObjectStore(pathToFileURL(join(parent, 'a', 'b')).href);
      await store.put('k', Buffer.from('v'));
      assert.deepEqual(
        readdirSync(join(parent, 'a', 'b')).filter((name) => !name.startsWith('.')),
        ['k'],
      );
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  });
});
