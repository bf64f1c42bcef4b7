import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isOrthIdError } from '../../src/core/errors.js';
import { createPasswordPolicy } from '../../src/identity/password-policy.js';

const single = { mfaEnforced: false };
const withMfa = { mfaEnforced: true };

describe('password policy (NIST SP 800-63B)', () => {
  const policy = createPasswordPolicy();

  test('a 64-character passphrase is accepted', async () => {
    const passphrase = 'lighthouse keepers polish brass lanterns before winter storms ok';
    assert.equal([...passphrase].length, 64);
    await policy.check(passphrase, single);
  });

  test('14 characters are refused as too short when the password is the only factor, naming the minimum', async () => {
    await assert.rejects(policy.check('fourteen chars', single), (e) => {
      assert.ok(isOrthIdError(e, 'password.too_short'));
      assert.equal(e.kind, 'invalid');
      assert.deepEqual(e.details, { field: 'password', minLength: 15 });
      assert.match(e.message, /at least 15 characters/);
      return true;
    });
  });

  test('8 characters are accepted when the tenant enforces MFA, 7 are not', async () => {
    await policy.check('tulip-42', withMfa);
    await assert.rejects(policy.check('tulip42', withMfa), (e) => isOrthIdError(e, 'password.too_short'));
  });

  test('no composition rules: lowercase letters and spaces alone are fine', async () => {
    await policy.check('all lowercase words here', single);
  });

  test('length counts Unicode code points after NFKC, not UTF-16 units or bytes', async () => {
    // 15 emoji are 30 UTF-16 units and 60 bytes, but 15 characters.
    await policy.check('🦊🐻🐼🐨🐯🦁🐮🐷🐸🐵🐔🐧🐦🐤🦆', single);
    // 14 precomposed "é" written as e + combining accent are 28 code points before NFKC, 14 after.
    await assert.rejects(policy.check('e\u0301'.repeat(14), single), (e) =>
      isOrthIdError(e, 'password.too_short'),
    );
  });

  test('more than 256 characters are refused as too long', async () => {
    await policy.check('a b '.repeat(64), single);
    await assert.rejects(policy.check('x'.repeat(257), single), (e) => isOrthIdError(e, 'password.too_long'));
  });

  test('entries of the bundled common-password list are refused, case-insensitively', async () => {
    for (const common of ['qwerty123456789', 'PasswordPassword', '1qaz2wsx3edc4rfv']) {
      await assert.rejects(policy.check(common, single), (e) => {
        assert.ok(isOrthIdError(e, 'password.common'), common);
        assert.deepEqual(e.details, { field: 'password' });
        return true;
      });
    }
    await assert.rejects(policy.check('password1', withMfa), (e) => isOrthIdError(e, 'password.common'));
  });

  test('the lengths are configurable, within what NIST allows', async () => {
    const strict = createPasswordPolicy({ minLength: 20, minLengthWithMfa: 12, maxLength: 128 });
    await assert.rejects(strict.check('nineteen characters', single), (e) =>
      isOrthIdError(e, 'password.too_short'),
    );
    await strict.check('twelve chars', withMfa);
    assert.throws(
      () => createPasswordPolicy({ maxLength: 32 }),
      (e) => isOrthIdError(e, 'config.invalid'),
    );
  });
});
