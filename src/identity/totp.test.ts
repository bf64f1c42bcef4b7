import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isOrthIdError } from '../core/errors.js';
import { matchTotpStep, newTotpSecret, normaliseTotpCode, totpCode, totpStep, totpUri } from './totp.js';

// RFC 6238 appendix B: the SHA-1 seed "12345678901234567890" (ASCII), as base32.
const RFC_SECRET = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';

describe('TOTP', () => {
  test('codes match the RFC 6238 test vectors (their last six digits)', () => {
    for (const [seconds, code] of [
      [59, '287082'],
      [1111111109, '081804'],
      [1234567890, '005924'],
      [2000000000, '279037'],
    ] as const) {
      assert.equal(totpCode(RFC_SECRET, new Date(seconds * 1000)), code, `at ${seconds}`);
    }
  });

  test('a code matches its own step and one step either side, and nothing further', () => {
    const at = new Date(1_700_000_000_000);
    const step = totpStep(at);
    const codeAt = (n: number) => totpCode(RFC_SECRET, new Date((step + n) * 30_000));
    assert.equal(matchTotpStep(RFC_SECRET, codeAt(0), at), step);
    assert.equal(matchTotpStep(RFC_SECRET, codeAt(-1), at), step - 1);
    assert.equal(matchTotpStep(RFC_SECRET, codeAt(1), at), step + 1);
    assert.equal(matchTotpStep(RFC_SECRET, codeAt(2), at), null);
    assert.equal(matchTotpStep(RFC_SECRET, codeAt(-2), at), null);
  });

  test('a typed code may hold spaces and dashes; anything but six digits is malformed', () => {
    assert.equal(normaliseTotpCode(' 123 456 '), '123456');
    assert.equal(normaliseTotpCode('123-456'), '123456');
    for (const bad of ['', '12345', '1234567', '12a456', '１２３４５６']) {
      assert.throws(
        () => normaliseTotpCode(bad),
        (e) => isOrthIdError(e, 'mfa.code_malformed'),
        bad,
      );
    }
  });

  test('a new secret is 160 random bits, and the URI names issuer, account and parameters', () => {
    const secret = newTotpSecret();
    assert.match(secret, /^[A-Z2-7]{32}$/);
    assert.notEqual(newTotpSecret(), secret);
    const uri = new URL(totpUri(secret, 'Acme Corp', 'ann@acme.test'));
    assert.equal(uri.protocol, 'otpauth:');
    assert.equal(uri.host, 'totp');
    assert.equal(decodeURIComponent(uri.pathname), '/Acme Corp:ann@acme.test');
    assert.equal(uri.searchParams.get('secret'), secret);
    assert.equal(uri.searchParams.get('issuer'), 'Acme Corp');
    assert.equal(uri.searchParams.get('digits'), '6');
    assert.equal(uri.searchParams.get('period'), '30');
  });
});
