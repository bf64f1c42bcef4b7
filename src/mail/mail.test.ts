import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseSender } from './address.js';
import { backoffMs, DEFAULT_RETRY } from './delivery-worker.js';

describe('senders', () => {
  test('"Name <address>" and a bare address parse; header syntax does not', () => {
    assert.deepEqual(parseSender('Acme Accounts <accounts@acme.test>'), {
      name: 'Acme Accounts',
      address: 'accounts@acme.test',
    });
    assert.deepEqual(parseSender('accounts@acme.test'), { name: undefined, address: 'accounts@acme.test' });
    for (const bad of [
      'Acme <a@acme.test>\r\nBcc: x@y.test',
      '"Acme" <a@acme.test>',
      'a@acme.test, b@acme.test',
      '<>',
    ]) {
      assert.equal(parseSender(bad), undefined, bad);
    }
  });
});

describe('retry back-off', () => {
  test('doubles from 30 s after each failure and stops growing at an hour', () => {
    assert.deepEqual(
      [1, 2, 3, 8, 20].map((n) => backoffMs(DEFAULT_RETRY, n) / 1000),
      [30, 60, 120, 3600, 3600],
    );
  });
});
