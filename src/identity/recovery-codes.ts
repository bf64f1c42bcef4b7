// Recovery codes: ten single-use codes a user keeps for when their second factor is lost. Each
// is 50 random bits, so a keyed hash (HMAC under the tenant's index key, in its custody) is
// enough at rest: there is no low-entropy secret for a slow hash to protect, and a dump without
// the key cannot test guesses at all. Shredding the tenant's keys makes them unverifiable too.
import { randomBytes } from 'node:crypto';
import { OrthIdError } from '../core/errors.js';
import type { TenantKeyring } from '../crypto/tenant-keys.js';

export const RECOVERY_CODE_COUNT = 10;
/** Crockford's base32 without I, L, O, U: nothing to confuse when reading a code off paper. */
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const LENGTH = 10;

/** `RECOVERY_CODE_COUNT` new codes, formatted for reading: `xxxxx-xxxxx`. */
export function newRecoveryCodes(): string[] {
  return Array.from({ length: RECOVERY_CODE_COUNT }, () => {
    const bytes = randomBytes(LENGTH);
    const chars = [...bytes].map((b) => ALPHABET[b & 31]).join('');
    return `${chars.slice(0, 5)}-${chars.slice(5)}`;
  });
}

/** A code as typed: case, spaces and dashes do not matter; I/L read as 1 and O as 0. */
export function normaliseRecoveryCode(input: string): string {
  const code = input.toLowerCase().replace(/[\s-]/g, '').replace(/[il]/g, '1').replace(/o/g, '0');
  if (code.length !== LENGTH || ![...code].every((c) => ALPHABET.includes(c))) {
    throw new OrthIdError(
      'mfa.code_malformed',
      'A recovery code has ten letters and digits, like abcde-12345. Check the code and try again.',
      { details: { field: 'recoveryCode' } },
    );
  }
  return code;
}

/** What is stored for a code: bound to its user, so a hash copied to another user matches nothing. */
export function recoveryCodeHash(keyring: TenantKeyring, userId: string, normalised: string): string {
  return keyring.index('mfa.recovery-code', `${userId}:${normalised}`);
}
