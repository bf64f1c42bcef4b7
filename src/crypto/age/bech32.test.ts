import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { decodeBech32, encodeBech32 } from './bech32.js';

describe('bech32', () => {
  test('BIP 173 valid strings decode, keeping the case of their prefix', () => {
    for (const valid of [
      'A12UEL5L',
      'a12uel5l',
      'an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs',
      'abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw',
      `11${'q'.repeat(82)}c8247j`,
    ]) {
      const decoded = decodeBech32(valid);
      assert.ok(decoded.ok, valid);
      assert.equal(decoded.hrp, valid.slice(0, valid.lastIndexOf('1')));
    }
  });

  test('BIP 173 invalid strings are rejected with a reason', () => {
    for (const invalid of [
      'pzry9x0s0muk',
      '1pzry9x0s0muk',
      'x1b4n0q5v',
      'li1dgmt3',
      'A1G7SGD8',
      '10a06t8',
      'A12uEL5L',
    ]) {
      const decoded = decodeBech32(invalid);
      assert.equal(decoded.ok, false, invalid);
    }
  });

  test('a single changed character fails the checksum', () => {
    const text = encodeBech32('age', randomBytes(32));
    const changed = `${text.slice(0, 10)}${text[10] === 'q' ? 'p' : 'q'}${text.slice(11)}`;
    const decoded = decodeBech32(changed);
    assert.equal(decoded.ok, false);
    assert.match(decoded.ok ? '' : decoded.reason, /checksum/);
  });

  test('bytes round-trip in lower and upper case, beyond the 90-character limit of BIP 173', () => {
    const bytes = randomBytes(64);
    for (const hrp of ['age', 'AGE-SECRET-KEY-']) {
      const text = encodeBech32(hrp, bytes);
      assert.ok(text.length > 90);
      assert.equal(text, hrp === 'age' ? text.toLowerCase() : text.toUpperCase());
      const decoded = decodeBech32(text);
      assert.ok(decoded.ok && decoded.hrp === hrp && decoded.bytes.equals(bytes));
    }
  });

  test('a failure never repeats the text it was given, which for an identity is a secret key', () => {
    const text = encodeBech32('AGE-SECRET-KEY-', randomBytes(32));
    for (const damaged of [
      `${text.slice(0, -1)}${text.endsWith('Q') ? 'P' : 'Q'}`,
      `${text.slice(0, 20)}${text.slice(20).toLowerCase()}`,
      `${text.slice(0, 20)}B${text.slice(21)}`,
    ]) {
      const decoded = decodeBech32(damaged);
      assert.equal(decoded.ok, false);
      const reason = decoded.ok ? '' : decoded.reason;
      assert.ok(!reason.includes(damaged.slice(16, 40)), reason);
      assert.ok(!reason.toLowerCase().includes(damaged.slice(16, 40).toLowerCase()), reason);
    }
  });
});
