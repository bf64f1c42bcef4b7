import assert from 'node:assert/strict';
import { createDecipheriv, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { combine as shamirCombine } from 'shamir-secret-sharing';
import { isOrthIdError } from '../../src/core/errors.js';
import { encryptStream } from '../../src/crypto/age/index.js';
import { exportKeystore } from '../../src/crypto/keystore-export.js';
import { exportKeystoreShares, readKeystoreShares } from '../../src/crypto/keystore-shares.js';
import type { KeystoreContents } from '../../src/crypto/managed-keystore.js';
import { combine, split } from '../../src/crypto/shamir.js';
import { age, ageKeygen, requireAgeCli, tempDir } from '../helpers/age-cli.js';

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Every k-element subset of `items`, in order. */
function subsets<T>(items: readonly T[], k: number): T[][] {
  if (k === 0) return [[]];
  if (items.length < k) return [];
  const [head, ...rest] = items;
  return [...subsets(rest, k - 1).map((s) => [head!, ...s]), ...subsets(rest, k)];
}

function contents(deploymentId: string): KeystoreContents {
  return {
    deploymentId,
    createdAt: '2025-01-02T03:04:05.000Z',
    rootKeys: [
      {
        id: '0190c1d2-0000-7000-8000-000000000001',
        key: randomBytes(32).toString('base64'),
        createdAt: '2025-01-02T03:04:05.000Z',
        status: 'active',
      },
    ],
    secrets: { canary: 'correct horse battery staple' },
  };
}

function rejectsWith(code: Parameters<typeof isOrthIdError>[1], pattern?: RegExp) {
  return (error: unknown) => {
    assert.ok(isOrthIdError(error, code), `expected ${code}, got ${String(error)}`);
    if (pattern) assert.match((error as Error).message, pattern);
    return true;
  };
}

describe('Shamir secret sharing over GF(2^8)', () => {
  test('uses the AES field: {57}·{83} = {c1} and {53}·{ca} = {01}, read back through interpolation', async () => {
    // Degree-1 polynomials y = a·x + s: the share at x = 1 is a ^ s, the share at x = b is a·b ^ s.
    // Shares are laid out value ‖ x-coordinate.
    const s = 0x42;
    assert.deepEqual(
      await combine([Buffer.from([0x57 ^ s, 1]), Buffer.from([0xc1 ^ s, 0x83])]),
      Buffer.from([s]),
    );
    assert.deepEqual(
      await combine([Buffer.from([0x53 ^ s, 1]), Buffer.from([0x01 ^ s, 0xca])]),
      Buffer.from([s]),
    );
  });

  test('any K of N shares recover the secret, in any order, for every K-subset of 3-of-5 and 4-of-6', async () => {
    for (const [n, k] of [
      [5, 3],
      [6, 4],
    ] as const) {
      const secret = randomBytes(32);
      const shares = await split(secret, n, k);
      assert.equal(shares.length, n);
      for (const share of shares) assert.equal(share.length, 33);
      const xs = shares.map((share) => share[32]!);
      assert.equal(new Set(xs).size, n, 'every share has its own x-coordinate');
      assert.ok(!xs.includes(0), 'no share sits at x = 0, where the secret is');
      for (const subset of subsets(shares, k)) {
        assert.deepEqual(await combine(subset), secret);
        assert.deepEqual(await combine([...subset].reverse()), secret);
      }
      // More than K shares lie on the same polynomial, so they recover it too.
      assert.deepEqual(await combine(shares), secret);
    }
  });

  test('the extremes work: 2-of-2, 2-of-255 and 255-of-255', async () => {
    const secret = randomBytes(17);
    assert.deepEqual(await combine(await split(secret, 2, 2)), secret);
    const wide = await split(secret, 255, 2);
    assert.deepEqual(await combine([wide[254]!, wide[0]!]), secret);
    assert.deepEqual(await combine(await split(secret, 255, 255)), secret);
  });

  test('K − 1 shares do not recover the secret', async () => {
    for (let trial = 0; trial < 50; trial++) {
      const secret = randomBytes(32);
      const shares = await split(secret, 5, 3);
      for (const subset of subsets(shares, 2)) assert.notDeepEqual(await combine(subset), secret);
    }
  });

  test('each split draws fresh coefficients, so splitting the same secret twice gives different shares', async () => {
    const secret = randomBytes(32);
    const a = await split(secret, 3, 2);
    const b = await split(secret, 3, 2);
    for (let i = 0; i < 3; i++) assert.notDeepEqual(a[i], b[i]);
  });

  test('split refuses thresholds below 2 or above N, more than 255 shares and an empty secret', () => {
    const secret = randomBytes(32);
    assert.throws(() => split(secret, 5, 1), rejectsWith('keystore.shares_invalid', /at least 2/));
    assert.throws(() => split(secret, 3, 4), rejectsWith('keystore.shares_invalid', /at most 3/));
    assert.throws(() => split(secret, 256, 3), rejectsWith('keystore.shares_invalid', /255/));
    assert.throws(() => split(secret, 5, 2.5), rejectsWith('keystore.shares_invalid', /whole numbers/));
    assert.throws(() => split(Buffer.alloc(0), 5, 3), rejectsWith('keystore.shares_invalid', /empty/));
  });

  test('combine refuses duplicate shares, shares of different lengths, x = 0 and a lone share', async () => {
    const shares = await split(randomBytes(32), 5, 3);
    await assert.rejects(
      combine([shares[0]!, shares[1]!, shares[0]!]),
      rejectsWith('keystore.shares_invalid', /Shares 1 and 3 are the same share/),
    );
    await assert.rejects(
      combine([shares[0]!, shares[1]!, (await split(randomBytes(16), 5, 3))[2]!]),
      rejectsWith('keystore.shares_invalid', /do not come from one split/),
    );
    const zero = Buffer.from(shares[2]!);
    zero[32] = 0;
    await assert.rejects(
      combine([shares[0]!, zero]),
      rejectsWith('keystore.shares_invalid', /x-coordinate 0/),
    );
    await assert.rejects(combine([shares[0]!]), rejectsWith('keystore.shares_invalid', /At least two/));
  });
});

describe('keystore shares', () => {
  const tmp = tempDir();
  const exportedAt = new Date('2025-06-07T08:09:10.000Z');
  const keystore = contents('0190c1d2-aaaa-7000-8000-00000000dep1');
  let custodians: ReturnType<typeof ageKeygen>[];
  let setId: string;
  let files: Buffer[];
  const identities = () => custodians.map((c) => c.identity);
  const streams = (buffers: readonly Buffer[]) => buffers.map((b) => Readable.from([b]));

  before(async () => {
    requireAgeCli();
    custodians = Array.from({ length: 5 }, (_, i) => ageKeygen(tmp.dir, `custodian-${i + 1}.txt`));
    const set = exportKeystoreShares(
      keystore,
      custodians.map((c) => c.recipient),
      3,
      exportedAt,
    );
    setId = set.setId;
    files = await Promise.all(set.shares.map(collect));
  });
  after(() => tmp.cleanup());

  test('each share opens with the stock `age -d` for its own custodian only', () => {
    for (const [i, file] of files.entries()) {
      const path = tmp.write(`share-${i + 1}.age`, file);
      for (const [j, custodian] of custodians.entries()) {
        if (i === j) {
          const share = JSON.parse(age(['-d', '-i', custodian.file, path]).toString('utf8'));
          assert.equal(share.format, 'orthid-keystore-share');
          assert.equal(share.version, 2);
          assert.equal(share.setId, setId);
          assert.equal(share.index, i + 1);
          assert.equal(share.threshold, 3);
          assert.equal(share.total, 5);
          assert.equal(share.deploymentId, keystore.deploymentId);
          assert.equal(share.exportedAt, exportedAt.toISOString());
        } else {
          assert.throws(
            () => age(['-d', '-i', custodian.file, path]),
            `share ${i + 1} opened for custodian ${j + 1}`,
          );
        }
      }
    }
  });

  test('the documented format recovers without OrthID code from K shares, and K − 1 shares do not open it', async () => {
    const opened = files.map((file, i) =>
      JSON.parse(age(['-d', '-i', custodians[i]!.file], file).toString('utf8')),
    );
    assert.equal(new Set(opened.map((s) => s.sealed)).size, 1, 'every share carries the same sealed body');
    const first = opened[0]!;
    const aad = Buffer.from(
      JSON.stringify([
        'orthid-keystore-share',
        2,
        first.setId,
        first.deploymentId,
        first.threshold,
        first.total,
        first.exportedAt,
      ]),
    );
    const sealed = Buffer.from(first.sealed, 'base64');
    const open = (key: Buffer): Buffer => {
      const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12));
      decipher.setAAD(aad);
      decipher.setAuthTag(sealed.subarray(sealed.length - 16));
      return Buffer.concat([decipher.update(sealed.subarray(12, sealed.length - 16)), decipher.final()]);
    };
    // The audited Shamir package, called directly.
    const shareOf = (i: number) => Uint8Array.from(Buffer.from(opened[i]!.share, 'base64'));
    const combineKey = async (shares: Uint8Array[]) => Buffer.from(await shamirCombine(shares));
    const body = JSON.parse(open(await combineKey([shareOf(4), shareOf(1), shareOf(2)])).toString('utf8'));
    assert.equal(body.format, 'orthid-keystore-export');
    assert.deepEqual(body.keystore, keystore);
    for (const pair of subsets([0, 1, 2, 3, 4], 2)) {
      const key = await combineKey(pair.map(shareOf));
      assert.throws(() => open(key), /auth/i, `shares ${pair} opened the keystore`);
    }
  });

  test('3 of 5 shares rebuild the keystore, for every choice of 3 custodians', async () => {
    for (const chosen of subsets([0, 1, 2, 3, 4], 3)) {
      const restored = await readKeystoreShares(
        streams(chosen.map((i) => files[i]!)),
        chosen.map((i) => custodians[i]!.identity),
      );
      assert.deepEqual(restored, keystore);
    }
  });

  test('all 5 shares, in any order, with every identity given, rebuild it too', async () => {
    const order = [3, 0, 4, 2, 1];
    const restored = await readKeystoreShares(
      streams(order.map((i) => files[i]!)),
      [...identities()].reverse(),
    );
    assert.deepEqual(restored, keystore);
  });

  test('2 of 3 needed shares are refused with shares_insufficient, saying how many more to bring', async () => {
    await assert.rejects(
      readKeystoreShares(streams([files[1]!, files[3]!]), identities()),
      rejectsWith(
        'keystore.shares_insufficient',
        /needs 3 of its 5 shares but only 2 \(2, 4\).*bring 1 more, any of shares 1, 3, 5/,
      ),
    );
    await assert.rejects(readKeystoreShares([], identities()), rejectsWith('keystore.shares_insufficient'));
  });

  test('the same share given twice is refused, even alongside enough others', async () => {
    await assert.rejects(
      readKeystoreShares(streams([files[0]!, files[2]!, files[0]!]), identities()),
      rejectsWith('keystore.shares_invalid', /Share files 1 and 3 are both share 1 of 5/),
    );
    await assert.rejects(
      readKeystoreShares(streams([files[0]!, files[1]!, files[2]!, files[1]!]), identities()),
      rejectsWith('keystore.shares_invalid', /both share 2/),
    );
  });

  test('shares of two different exports are refused with shares_mismatch, even of the same keystore', async () => {
    const other = await Promise.all(
      exportKeystoreShares(
        keystore,
        custodians.map((c) => c.recipient),
        3,
        exportedAt,
      ).shares.map(collect),
    );
    await assert.rejects(
      readKeystoreShares(streams([files[0]!, files[1]!, other[2]!]), identities()),
      rejectsWith('keystore.shares_mismatch', /Share file 3 belongs to the export/),
    );
    const elsewhere = await Promise.all(
      exportKeystoreShares(
        contents('0190c1d2-bbbb-7000-8000-00000000dep2'),
        custodians.map((c) => c.recipient),
        3,
        exportedAt,
      ).shares.map(collect),
    );
    await assert.rejects(
      readKeystoreShares(streams([files[0]!, elsewhere[1]!, files[2]!]), identities()),
      rejectsWith('keystore.shares_mismatch', /from deployment/),
    );
  });

  test('a forged share claiming a lower threshold, or with altered share bytes, does not open the keystore', async () => {
    const share = (i: number) =>
      JSON.parse(age(['-d', '-i', custodians[i]!.file], files[i]!).toString('utf8'));
    const reseal = (i: number, value: object) =>
      collect(
        Readable.from([Buffer.from(JSON.stringify(value))]).pipe(encryptStream([custodians[i]!.recipient])),
      );

    const lowered = await Promise.all([0, 1].map((i) => reseal(i, { ...share(i), threshold: 2 })));
    await assert.rejects(
      readKeystoreShares(streams(lowered), identities()),
      rejectsWith('keystore.shares_invalid', /does not open the keystore/),
    );

    const original = share(2);
    const bytes = Buffer.from(original.share, 'base64');
    bytes[5]! ^= 0x01;
    const altered = await reseal(2, { ...original, share: bytes.toString('base64') });
    await assert.rejects(
      readKeystoreShares(streams([files[0]!, files[1]!, altered]), identities()),
      rejectsWith('keystore.shares_invalid', /does not open the keystore/),
    );
  });

  test('a share file no given identity opens is refused with age.decrypt_failed, naming the file', async () => {
    await assert.rejects(
      readKeystoreShares(streams([files[0]!, files[1]!, files[2]!]), [
        custodians[0]!.identity,
        custodians[2]!.identity,
      ]),
      rejectsWith('age.decrypt_failed', /^Share file 2 of 3: No identity matches/),
    );
  });

  test('a whole keystore export given as a share is refused with shares_invalid', async () => {
    const whole = await collect(exportKeystore(keystore, [custodians[0]!.recipient], exportedAt));
    await assert.rejects(
      readKeystoreShares(streams([whole, files[1]!, files[2]!]), identities()),
      rejectsWith('keystore.shares_invalid', /Share file 1 decrypted but is not an OrthID keystore share/),
    );
  });

  test('export refuses a recipient given twice, impossible thresholds and bad recipients before producing anything', () => {
    const recipients = custodians.map((c) => c.recipient);
    assert.throws(
      () => exportKeystoreShares(keystore, [...recipients.slice(0, 3), recipients[1]!], 2, exportedAt),
      rejectsWith('keystore.shares_invalid', /Recipients 2 and 4 are the same/),
    );
    assert.throws(
      () => exportKeystoreShares(keystore, recipients, 6, exportedAt),
      rejectsWith('keystore.shares_invalid'),
    );
    assert.throws(
      () => exportKeystoreShares(keystore, recipients, 1, exportedAt),
      rejectsWith('keystore.shares_invalid'),
    );
    assert.throws(
      () => exportKeystoreShares(keystore, [recipients[0]!, 'age1nope'], 2, exportedAt),
      rejectsWith('age.recipient_invalid', /Recipient 2 of 2/),
    );
  });
});

describe('keystore shares written by earlier OrthID versions', () => {
  // Written by the hand-written Shamir code (format version 1: x-coordinate first) before the
  // audited package replaced it; the identities are test-only keys made for this fixture.
  const dir = new URL('../fixtures/keystore-shares-v1/', import.meta.url);
  const file = (name: string) => readFileSync(new URL(name, dir));
  const identity = (i: number) =>
    file(`custodian-${i}.txt`)
      .toString('utf8')
      .split('\n')
      .find((line) => line.startsWith('AGE-SECRET-KEY-1'))!;
  const keystore = JSON.parse(file('keystore.json').toString('utf8')) as KeystoreContents;

  test('any 2 of the 3 version 1 shares still rebuild the keystore', async () => {
    for (const chosen of subsets([1, 2, 3], 2)) {
      const restored = await readKeystoreShares(
        chosen.map((i) => Readable.from([file(`share-${i}.age`)])),
        chosen.map(identity),
      );
      assert.deepEqual(restored, keystore, `shares ${chosen}`);
    }
  });

  test('one version 1 share alone is refused with shares_insufficient', async () => {
    await assert.rejects(
      readKeystoreShares([Readable.from([file('share-2.age')])], [identity(2)]),
      rejectsWith('keystore.shares_insufficient', /needs 2 of its 3 shares but only 1 \(2\)/),
    );
  });
});
