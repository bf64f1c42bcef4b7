// Which passwords a tenant accepts, after NIST SP 800-63B rev. 4: length counted in Unicode code
// points after NFKC, no composition rules, no forced rotation, and no common or breached password.
import { OrthIdError } from '../core/errors.js';
import { commonPasswordKey, commonPasswords } from './common-passwords.js';
import { normalisePassword } from './passwords.js';

export interface PasswordPolicyOptions {
  /** Minimum when the password is the only factor (NIST: 15). */
  minLength?: number;
  /** Minimum when the tenant enforces a second factor (NIST: 8). */
  minLengthWithMfa?: number;
  /** Maximum accepted; NIST asks for at least 64. */
  maxLength?: number;
}

export interface PasswordContext {
  /** Whether the tenant requires a second factor at sign-in. */
  mfaEnforced: boolean;
}

export interface PasswordPolicy {
  readonly minLength: number;
  readonly minLengthWithMfa: number;
  readonly maxLength: number;
  /** Resolves when `password` is acceptable; otherwise throws `password.*` naming what to change. */
  check(password: string, context: PasswordContext): Promise<void>;
}

export const DEFAULT_PASSWORD_POLICY = Object.freeze({ minLength: 15, minLengthWithMfa: 8, maxLength: 256 });

const ADVICE = 'A passphrase of four or more unrelated words is long, easy to remember and hard to guess.';

/**
 * @example
 * const policy = createPasswordPolicy();
 * await policy.check('correct horse battery staple', { mfaEnforced: false }); // ok
 * await policy.check('qwerty123456789', { mfaEnforced: false }); // throws password.common
 */
export function createPasswordPolicy(options: PasswordPolicyOptions = {}): PasswordPolicy {
  const minLength = options.minLength ?? DEFAULT_PASSWORD_POLICY.minLength;
  const minLengthWithMfa = options.minLengthWithMfa ?? DEFAULT_PASSWORD_POLICY.minLengthWithMfa;
  const maxLength = options.maxLength ?? DEFAULT_PASSWORD_POLICY.maxLength;
  const whole = (n: number) => Number.isInteger(n) && n >= 1;
  if (
    !whole(minLength) ||
    !whole(minLengthWithMfa) ||
    !whole(maxLength) ||
    maxLength < 64 ||
    maxLength < minLength
  ) {
    throw new OrthIdError(
      'config.invalid',
      'The password policy is invalid: lengths must be whole numbers of at least 1, and the maximum at least 64 and at least the minimum.',
    );
  }

  return {
    minLength,
    minLengthWithMfa,
    maxLength,
    async check(password, context) {
      const normalised = normalisePassword(password);
      const length = [...normalised].length;
      const min = context.mfaEnforced ? minLengthWithMfa : minLength;
      if (length < min) {
        throw new OrthIdError(
          'password.too_short',
          `The password is too short: use at least ${min} characters (it has ${length}). ${ADVICE}`,
          { details: { field: 'password', minLength: min } },
        );
      }
      if (length > maxLength) {
        throw new OrthIdError(
          'password.too_long',
          `The password is too long: use at most ${maxLength} characters (it has ${length}).`,
          { details: { field: 'password', maxLength } },
        );
      }
      if ((await commonPasswords()).has(commonPasswordKey(normalised))) {
        throw new OrthIdError(
          'password.common',
          `This password appears in a list of common or breached passwords, so it is among the first an attacker tries; choose another. ${ADVICE}`,
          { details: { field: 'password' } },
        );
      }
    },
  };
}
