import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { decodeBase64NoPad, encodeBase64NoPad } from './base64-no-pad.js';

test('base64 without padding round-trips every length', () => {
  for (let length = 0; length < 50; length++) {
    const bytes = randomBytes(length);
    const text = encodeBase64NoPad(bytes);
    assert.ok(!text.includes('='));
    assert.ok(decodeBase64NoPad(text)?.equals(bytes));
  }
});

test('padded, non-canonical, url-safe or whitespace-laden base64 is refused', () => {
  const text = encodeBase64NoPad(Buffer.from([0xff, 0xfe])); // '//4'
  assert.equal(decodeBase64NoPad(`${text}=`), null);
  assert.equal(decodeBase64NoPad('//5'), null, 'non-zero trailing bits');
  assert.equal(decodeBase64NoPad('__4'), null);
  assert.equal(decodeBase64NoPad(' //4'), null);
  assert.equal(decodeBase64NoPad('A'), null);
});
