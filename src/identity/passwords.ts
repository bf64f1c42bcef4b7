// Password hashing: argon2id on the deployment's hashing threads (never the event loop, and at a
// lower CPU priority than it: password-pool.ts), parameters passed in by wiring, PHC strings
// that say how they were made so stale ones are re-hashed at sign-in.

import { randomBytes } from 'node:crypto';
import { type Algorithm, parseOptions, type Version } from '@node-rs/argon2';
import { isOrthIdError, OrthIdError } from '../core/errors.js';
import { createPasswordPool, type PasswordPool } from './password-pool.js';

/** argon2id cost parameters; they are written into every hash, so changing them is safe. */
export interface PasswordHashing {
  /** Memory in KiB (`m=` in the PHC string). */
  memoryCost: number;
  /** Passes over memory (`t=`). */
  timeCost: number;
  /** Lanes (`p=`). */
  parallelism: number;
}

/** OWASP's argon2id recommendation: 19 MiB, 2 passes, 1 lane. */
export const OWASP_PASSWORD_HASHING: PasswordHashing = Object.freeze({
  memoryCost: 19456,
  timeCost: 2,
  parallelism: 1,
});

const ARGON2ID = 2 satisfies Algorithm;
const V0X13 = 1 satisfies Version;

export interface PasswordHasher {
  readonly parameters: PasswordHashing;
  /** A PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) of the NFKC-normalised password. */
  hash(password: string): Promise<string>;
  /** False for a wrong password and for a stored value that is not a readable hash. */
  verify(stored: string, password: string): Promise<boolean>;
  /**
   * Verifies against a fixed hash made with the current parameters, so an unknown account costs
   * the same time as a known one. Always false.
   */
  verifyDummy(password: string): Promise<false>;
  /** Whether `stored` was made with other parameters (or another algorithm) than the current ones. */
  needsRehash(stored: string): boolean;
}

/** NIST SP 800-63B asks verifiers to normalise before hashing, so "é" typed either way matches. */
export function normalisePassword(password: string): string {
  return password.normalize('NFKC');
}

function checkParameters(p: PasswordHashing): void {
  const whole = (n: number, min: number) => Number.isInteger(n) && n >= min && n <= 0xffffffff;
  if (
    !whole(p.memoryCost, 8 * p.parallelism) ||
    !whole(p.timeCost, 1) ||
    !whole(p.parallelism, 1) ||
    p.parallelism > 255
  ) {
    throw new OrthIdError(
      'config.invalid',
      'Password hashing parameters are invalid: memoryCost (KiB) must be at least 8 × parallelism, timeCost at least 1, parallelism 1-255.',
    );
  }
}

/**
 * @example
 * const passwords = createPasswordHasher(OWASP_PASSWORD_HASHING);
 * const stored = await passwords.hash('correct horse battery staple');
 * await passwords.verify(stored, 'correct horse battery staple'); // true
 */
export function createPasswordHasher(
  parameters: PasswordHashing = OWASP_PASSWORD_HASHING,
  /** The hashing threads; the wiring passes the deployment's, a hasher made alone gets its own. */
  pool: PasswordPool = createPasswordPool(),
): PasswordHasher {
  checkParameters(parameters);
  const options = { ...parameters, algorithm: ARGON2ID, version: V0X13 };
  let dummy: Promise<string> | undefined;

  const hasher: PasswordHasher = {
    parameters: Object.freeze({ ...parameters }),
    hash: (password) => pool.hash(normalisePassword(password), options),
    async verify(stored, password) {
      try {
        return await pool.verify(stored, normalisePassword(password));
      } catch (error) {
        if (isOrthIdError(error)) throw error;
        // A malformed stored value must look like a wrong password, not like a different account state.
        return false;
      }
    },
    async verifyDummy(password) {
      dummy ??= pool.hash(randomBytes(32).toString('base64url'), options);
      await hasher.verify(await dummy, password);
      return false;
    },
    needsRehash(stored) {
      try {
        const used = parseOptions(stored);
        return (
          used.algorithm !== ARGON2ID ||
          used.version !== V0X13 ||
          used.memoryCost !== parameters.memoryCost ||
          used.timeCost !== parameters.timeCost ||
          used.parallelism !== parameters.parallelism
        );
      } catch {
        return true;
      }
    },
  };
  return hasher;
}
