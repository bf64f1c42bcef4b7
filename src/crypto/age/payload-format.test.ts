import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StreamNonce } from './payload-format.js';

test('the STREAM nonce is an 11-byte big-endian counter followed by the last-chunk flag', () => {
  const nonce = new StreamNonce();
  assert.equal(nonce.current(false).toString('hex'), '000000000000000000000000');
  assert.equal(nonce.current(true).toString('hex'), '000000000000000000000001');
  for (let i = 0; i < 258; i++) nonce.advance();
  assert.equal(nonce.counter, 258);
  assert.equal(nonce.current(false).toString('hex'), '000000000000000000010200');
  assert.equal(nonce.current(true).toString('hex'), '000000000000000000010201');
});
