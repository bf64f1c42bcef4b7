import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { isOrthIdError } from '../../core/errors.js';
import { encodeHeader, MAX_HEADER_LENGTH, parseHeader, verifyHeaderMac } from './header.js';

const fileKey = randomBytes(16);
const stanzas = [
  { args: ['X25519', 'abc'], body: randomBytes(32) },
  { args: ['example.com/x', 'a', 'b'], body: randomBytes(48) },
  { args: ['empty'], body: Buffer.alloc(0) },
  { args: ['long'], body: randomBytes(100) },
];
const decryptFailed = (error: unknown) => isOrthIdError(error, 'age.decrypt_failed');

describe('age header', () => {
  test('an encoded header parses back to the same stanzas and passes its MAC check', () => {
    const header = encodeHeader(stanzas, fileKey);
    const parsed = parseHeader(Buffer.concat([header, Buffer.from('payload')]));
    assert.ok(parsed);
    assert.equal(parsed.length, header.length);
    assert.deepEqual(
      parsed.stanzas.map((s) => [s.args, s.body]),
      stanzas.map((s) => [s.args, s.body]),
    );
    verifyHeaderMac(parsed, fileKey);
  });

  test('bodies are wrapped at 64 columns, with an empty line after a body of a multiple of 48 bytes', () => {
    const text = encodeHeader(stanzas, fileKey).toString('latin1');
    assert.ok(text.startsWith('age-encryption.org/v1\n-> X25519 abc\n'));
    assert.match(
      text,
      /-> example\.com\/x a b\n[A-Za-z0-9+/]{64}\n\n-> empty\n\n-> long\n[A-Za-z0-9+/]{64}\n/,
    );
    assert.match(text, /\n--- [A-Za-z0-9+/]{43}\n$/);
  });

  test('an incomplete header asks for more input instead of failing', () => {
    const header = encodeHeader(stanzas, fileKey);
    for (const cut of [0, 5, 30, header.length - 1]) assert.equal(parseHeader(header.subarray(0, cut)), null);
  });

  test('a header under another file key fails the MAC check', () => {
    const parsed = parseHeader(encodeHeader(stanzas, fileKey))!;
    assert.throws(() => verifyHeaderMac(parsed, randomBytes(16)), decryptFailed);
  });

  test('input that is not age, or never finishes its header, is rejected', () => {
    assert.throws(() => parseHeader(Buffer.from('PGDMP\x01\x0e')), decryptFailed);
    const endless = Buffer.concat([
      Buffer.from('age-encryption.org/v1\n'),
      Buffer.alloc(MAX_HEADER_LENGTH, 0x41),
    ]);
    assert.throws(() => parseHeader(endless), decryptFailed);
  });

  test('malformed stanzas are rejected', () => {
    const mac = ` ${'A'.repeat(43)}\n`;
    for (const bad of [
      `age-encryption.org/v1\n-> X25519  double-space\nAAAA\n---${mac}`,
      `age-encryption.org/v1\n-> X25519 a\nAAAA=\n---${mac}`,
      `age-encryption.org/v1\n-> X25519 a\n${'A'.repeat(65)}\n\n---${mac}`,
      `age-encryption.org/v1\n-> X25519 a\n${'A'.repeat(64)}\n---${mac}`,
      `age-encryption.org/v1\nstray line\n---${mac}`,
      `age-encryption.org/v1\n---${mac}`,
      `age-encryption.org/v1\n-> X25519 a\nAAAA\n--- short\n`,
    ]) {
      assert.throws(() => parseHeader(Buffer.from(`${bad}payload`)), decryptFailed, JSON.stringify(bad));
    }
  });
});
