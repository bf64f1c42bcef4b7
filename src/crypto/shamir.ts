// Shamir secret sharing over GF(2^8) through the audited `shamir-secret-sharing` package (the
// AES field polynomial x^8 + x^4 + x^3 + x + 1, HashiCorp Vault's scheme). This file only checks
// arguments with OrthID's error codes and converts the share layout: the package writes a share
// as the polynomial values ‖ one x-coordinate byte; version 1 share files (written by OrthID's
// earlier hand-written code over the same field) put the x-coordinate first.
import { combine as combineShares, split as splitSecret } from 'shamir-secret-sharing';
import { OrthIdError } from '../core/errors.js';

function invalid(message: string): OrthIdError {
  return new OrthIdError('keystore.shares_invalid', message);
}

/**
 * Splits `secret` into `shares` shares, any `threshold` of which rebuild it and fewer of which
 * reveal nothing about it. Each share is the secret's length plus one byte: its x-coordinate,
 * last, drawn at random and distinct within a split. `keystore.shares_invalid` (thrown before
 * the promise) unless 2 ≤ threshold ≤ shares ≤ 255 and the secret is not empty.
 *
 * @example
 * const shares = await split(key, 5, 3); // await combine(shares.slice(2)) equals key
 */
export function split(secret: Uint8Array, shares: number, threshold: number): Promise<Buffer[]> {
  if (!Number.isInteger(shares) || !Number.isInteger(threshold)) {
    throw invalid(`The share count (${shares}) and threshold (${threshold}) must be whole numbers.`);
  }
  if (threshold < 2) {
    throw invalid(
      `A threshold of ${threshold} would let one share rebuild the secret on its own; use a threshold of at least 2.`,
    );
  }
  if (threshold > shares) {
    throw invalid(
      `A threshold of ${threshold} with only ${shares} shares could never be met; use a threshold of at most ${shares}.`,
    );
  }
  if (shares > 255) {
    throw invalid(`GF(2^8) has room for at most 255 shares, not ${shares}.`);
  }
  if (secret.length === 0) throw invalid('There is nothing to split: the secret is empty.');
  // The package insists on a plain Uint8Array (not a Buffer subclass).
  const plain = Uint8Array.from(secret);
  return splitSecret(plain, shares, threshold)
    .then(
      (out) => out.map((share) => Buffer.from(share.buffer, share.byteOffset, share.byteLength)),
      (cause: unknown) => {
        throw invalid(`The secret could not be split: ${(cause as Error).message}.`);
      },
    )
    .finally(() => plain.fill(0));
}

/** The x-coordinate of a share in the package's layout (its last byte). */
export function shareX(share: Uint8Array): number {
  return share[share.length - 1]!;
}

/** A version 1 share (x-coordinate first) in the package's layout (x-coordinate last). */
export function fromV1Layout(share: Uint8Array): Buffer {
  return Buffer.concat([share.subarray(1), share.subarray(0, 1)]);
}

/**
 * Rebuilds the secret from shares made by `split` (Lagrange interpolation at x = 0).
 * `keystore.shares_invalid` for fewer than two shares, shares of different lengths, an
 * x-coordinate of 0 or the same x-coordinate twice. Given fewer shares than the threshold it
 * returns bytes unrelated to the secret: callers must authenticate the result.
 */
export async function combine(shares: readonly Uint8Array[]): Promise<Buffer> {
  if (shares.length < 2) {
    throw invalid(`At least two shares are needed to rebuild a secret; ${shares.length} given.`);
  }
  if (shares.length > 255) throw invalid(`GF(2^8) has room for at most 255 shares, not ${shares.length}.`);
  const length = shares[0]!.length;
  if (length < 2) throw invalid('A share must hold its x-coordinate and at least one byte.');
  const xs: number[] = [];
  for (const [i, share] of shares.entries()) {
    if (share.length !== length) {
      throw invalid(
        `Share ${i + 1} is ${share.length} bytes but share 1 is ${length}: they do not come from one split.`,
      );
    }
    const x = shareX(share);
    if (x === 0) throw invalid(`Share ${i + 1} has x-coordinate 0, which no split produces.`);
    const first = xs.indexOf(x);
    if (first !== -1) {
      throw invalid(`Shares ${first + 1} and ${i + 1} are the same share (x = ${x}); give each share once.`);
    }
    xs.push(x);
  }
  const plain = shares.map((share) => Uint8Array.from(share));
  try {
    const secret = await combineShares(plain);
    return Buffer.from(secret.buffer, secret.byteOffset, secret.byteLength);
  } finally {
    for (const share of plain) share.fill(0);
  }
}
