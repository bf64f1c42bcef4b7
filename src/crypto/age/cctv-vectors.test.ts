// Our age reader against the C2SP age test vectors (the `cctv-age` package): every vector it
// supports decrypts, or fails at the stage the vector names, releasing exactly the plaintext the
// vector's hash covers. Vectors for features OrthID does not implement are set apart by the
// explicit rules below and counted, so a new vector set cannot slip past as unsupported.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, test } from 'node:test';
import { inflateSync } from 'node:zlib';
import * as cctv from 'cctv-age';
import { isOrthIdError } from '../../core/errors.js';
import { decryptStream, generateIdentity } from './index.js';

type Expect =
  | 'success'
  | 'no match'
  | 'HMAC failure'
  | 'header failure'
  | 'payload failure'
  | 'armor failure';

interface Vector {
  name: string;
  expect: Expect;
  payload: string | undefined;
  identities: string[];
  passphrases: string[];
  armored: boolean;
  file: Buffer;
}

function parseVector(name: string, bytes: Uint8Array): Vector {
  const raw = Buffer.from(bytes);
  const split = raw.indexOf('\n\n');
  const fields = new Map<string, string[]>();
  for (const line of raw.subarray(0, split).toString('utf8').split('\n')) {
    const colon = line.indexOf(': ');
    const key = line.slice(0, colon);
    fields.set(key, [...(fields.get(key) ?? []), line.slice(colon + 2)]);
  }
  const body = raw.subarray(split + 2);
  return {
    name,
    expect: fields.get('expect')![0] as Expect,
    payload: fields.get('payload')?.[0],
    identities: fields.get('identity') ?? [],
    passphrases: fields.get('passphrase') ?? [],
    armored: fields.get('armored')?.[0] === 'yes',
    file: fields.get('compressed')?.[0] === 'zlib' ? inflateSync(body) : body,
  };
}

const vectors = Object.entries(cctv as unknown as Record<string, Uint8Array>)
  .filter(([name, bytes]) => name !== 'default' && bytes instanceof Uint8Array)
  .map(([name, bytes]) => parseVector(name, bytes));

/** Why a vector is outside what OrthID's reader implements, or undefined when it is inside. */
function unsupported(vector: Vector): string | undefined {
  // OrthID reads binary age only; the armor is a transport encoding `age -d` removes.
  if (vector.armored) return 'ASCII armor';
  if (vector.identities.some((identity) => identity.startsWith('AGE-SECRET-KEY-PQ-1'))) {
    return 'post-quantum (ML-KEM-768 + X25519) identities';
  }
  if (vector.identities.length === 0 && vector.passphrases.length > 0)
    return 'passphrase (scrypt) recipients';
  return undefined;
}

/** The stage a failure of our reader corresponds to in the vectors' terms. */
function stageOf(message: string): Expect | 'unknown' {
  if (/No identity matches|has no X25519 recipient/.test(message)) return 'no match';
  if (/MAC mismatch/.test(message)) return 'HMAC failure';
  if (
    /header is malformed|X25519 stanza in the age header is malformed|not an age v1 file|input is empty|ends before its encrypted payload begins|encrypted with a passphrase/.test(
      message,
    )
  ) {
    return 'header failure';
  }
  if (/payload|chunk/i.test(message)) return 'payload failure';
  return 'unknown';
}

/** Decrypts in 4 KiB pieces, as a file is read, hashing every byte the stream releases. */
async function decrypt(file: Buffer, identities: readonly string[]) {
  const hash = createHash('sha256');
  async function* pieces() {
    for (let i = 0; i < file.length; i += 4096) yield file.subarray(i, i + 4096);
  }
  let error: unknown;
  try {
    await pipeline(
      Readable.from(pieces()),
      decryptStream(identities),
      new Writable({
        write(chunk: Buffer, _encoding, callback) {
          hash.update(chunk);
          callback();
        },
      }),
    );
  } catch (caught) {
    error = caught;
  }
  return { error, released: hash.digest('hex') };
}

describe('the C2SP age test vectors (cctv-age)', () => {
  const supported = vectors.filter((vector) => unsupported(vector) === undefined);

  test('the vectors outside OrthID are set apart by rule and counted: 33 armored, 18 post-quantum, 24 passphrase', () => {
    const counts: Record<string, number> = {};
    for (const vector of vectors) {
      const why = unsupported(vector);
      if (why !== undefined) counts[why] = (counts[why] ?? 0) + 1;
    }
    assert.deepEqual(counts, {
      'ASCII armor': 33,
      'post-quantum (ML-KEM-768 + X25519) identities': 18,
      'passphrase (scrypt) recipients': 24,
    });
    assert.equal(supported.length, vectors.length - 75);
    assert.ok(supported.length >= 60, `only ${supported.length} vectors are checked`);
  });

  test('every supported vector decrypts, or fails at the stage it names, releasing exactly the plaintext it hashes', async () => {
    const tally: Record<string, number> = {};
    for (const vector of supported) {
      // A vector that names no identity (an empty file) still needs one to be read at all.
      const identities = vector.identities.length > 0 ? vector.identities : [generateIdentity().identity];
      const { error, released } = await decrypt(vector.file, identities);
      if (vector.expect === 'success') {
        assert.equal(error, undefined, `${vector.name}: ${String(error)}`);
      } else {
        assert.ok(isOrthIdError(error, 'age.decrypt_failed'), `${vector.name} should fail: ${String(error)}`);
        assert.equal(stageOf(error.message), vector.expect, `${vector.name}: ${error.message}`);
      }
      if (vector.expect === 'success' || vector.expect === 'payload failure') {
        assert.equal(released, vector.payload, `${vector.name}: the released plaintext differs`);
      } else {
        assert.equal(released, createHash('sha256').digest('hex'), `${vector.name} released plaintext`);
      }
      tally[vector.expect] = (tally[vector.expect] ?? 0) + 1;
    }
    assert.deepEqual(tally, {
      success: 14,
      'header failure': 32,
      'no match': 3,
      'HMAC failure': 1,
      'payload failure': 18,
    });
  });

  test('every unsupported vector is refused, never opened', async () => {
    for (const vector of vectors.filter((v) => unsupported(v) !== undefined)) {
      const x25519 = vector.identities.filter((identity) => identity.startsWith('AGE-SECRET-KEY-1'));
      const identities = x25519.length > 0 ? x25519 : [generateIdentity().identity];
      const { error } = await decrypt(vector.file, identities);
      assert.ok(
        isOrthIdError(error, 'age.decrypt_failed') || isOrthIdError(error, 'age.identity_invalid'),
        `${vector.name} was not refused: ${String(error)}`,
      );
    }
  });
});
