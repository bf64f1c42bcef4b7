import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isOrthIdError } from '../core/errors.js';
import { newRecoveryCodes, normaliseRecoveryCode, RECOVERY_CODE_COUNT } from './recovery-codes.js';

describe('recovery codes', () => {
  test('ten distinct codes of ten characters, without letters that read like others', () => {
    const codes = newRecoveryCodes();
    assert.equal(codes.length, RECOVERY_CODE_COUNT);
    assert.equal(new Set(codes).size, RECOVERY_CODE_COUNT);
    for (const code of codes) assert.match(code, /^[0-9a-hjkmnp-tv-z]{5}-[0-9a-hjkmnp-tv-z]{5}$/);
  });

  test('case, spaces and dashes do not matter, and I, L and O read as 1 and 0', () => {
    assert.equal(normaliseRecoveryCode('ABCDE-12345'), 'abcde12345');
    assert.equal(normaliseRecoveryCode(' abcde 12345 '), 'abcde12345');
    assert.equal(normaliseRecoveryCode('abcdeIL0O5'), 'abcde11005');
  });

  test('anything else is malformed', () => {
    for (const bad of ['', 'abcde-1234', 'abcde-123456', 'abcde-1234u', 'abcde-1234!']) {
      assert.throws(
        () => normaliseRecoveryCode(bad),
        (e) => isOrthIdError(e, 'mfa.code_malformed'),
        bad,
      );
    }
  });
});
