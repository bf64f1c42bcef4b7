// Shamir secret sharing over GF(2^8), byte by byte, with the AES field polynomial
// x^8 + x^4 + x^3 + x + 1 (0x11b) — the scheme of HashiCorp Vault's `shamir` package. Each
// secret byte is the constant term of its own random polynomial of degree threshold − 1; a
// share is one x-coordinate byte followed by that polynomial's value at x for every byte.
import { randomBytes } from 'node:crypto';
import { OrthIdError } from '../core/errors.js';

/** exp[i] = 3^i and log[3^i] = i in GF(2^8); 3 generates the multiplicative group under 0x11b. */
const EXP = new Uint8Array(510);
const LOG = new Uint8Array(256);
{
  let value = 1;
  for (let i = 0; i < 255; i++) {
    EXP[i] = value;
    LOG[value] = i;
    // value *= 3, i.e. value ^ (value * 2), reducing by 0x11b when bit 8 is set.
    const doubled = value << 1;
    value ^= doubled & 0x100 ? doubled ^ 0x11b : doubled;
  }
  // Doubled so exp[log a + log b] needs no modulo.
  for (let i = 255; i < 510; i++) EXP[i] = EXP[i - 255]!;
}

function mul(a: number, b: number): number {
  if (a === 0 || b === 0) return 0;
  return EXP[LOG[a]! + LOG[b]!]!;
}

/** a / b for b ≠ 0. */
function div(a: number, b: number): number {
  if (a === 0) return 0;
  return EXP[LOG[a]! + 255 - LOG[b]!]!;
}

function invalid(message: string): OrthIdError {
  return new OrthIdError('keystore.shares_invalid', message);
}

/**
 * Splits `secret` into `shares` shares, any `threshold` of which rebuild it and fewer of which
 * reveal nothing about it. Share i (0-based) has x-coordinate i + 1 in its first byte, so each
 * share is one byte longer than the secret. `keystore.shares_invalid` unless
 * 2 ≤ threshold ≤ shares ≤ 255 and the secret is not empty.
 *
 * @example
 * const shares = split(key, 5, 3); // combine(shares.slice(2)) equals key
 */
export function split(secret: Buffer, shares: number, threshold: number): Buffer[] {
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

  const out = Array.from({ length: shares }, (_, i) => {
    const share = Buffer.alloc(secret.length + 1);
    share[0] = i + 1;
    return share;
  });
  // One random polynomial per secret byte: threshold − 1 random coefficients, the byte as constant.
  const degree = threshold - 1;
  const coefficients = randomBytes(degree * secret.length);
  for (let byte = 0; byte < secret.length; byte++) {
    const base = byte * degree;
    for (const share of out) {
      const x = share[0]!;
      // Horner's rule from the highest coefficient down to the secret byte.
      let y = 0;
      for (let k = degree - 1; k >= 0; k--) y = mul(y, x) ^ coefficients[base + k]!;
      share[byte + 1] = mul(y, x) ^ secret[byte]!;
    }
  }
  coefficients.fill(0);
  return out;
}

/**
 * Rebuilds the secret from shares made by `split` (Lagrange interpolation at x = 0).
 * `keystore.shares_invalid` for fewer than two shares, shares of different lengths, an
 * x-coordinate of 0 or the same x-coordinate twice. Given fewer shares than the threshold it
 * returns bytes unrelated to the secret: callers must authenticate the result.
 */
export function combine(shares: readonly Buffer[]): Buffer {
  if (shares.length < 2) {
    throw invalid(`At least two shares are needed to rebuild a secret; ${shares.length} given.`);
  }
  const length = shares[0]!.length;
  if (length < 2) throw invalid('A share must hold its x-coordinate and at least one byte.');
  const xs: number[] = [];
  for (const [i, share] of shares.entries()) {
    if (share.length !== length) {
      throw invalid(
        `Share ${i + 1} is ${share.length} bytes but share 1 is ${length}: they do not come from one split.`,
      );
    }
    const x = share[0]!;
    if (x === 0) throw invalid(`Share ${i + 1} has x-coordinate 0, which no split produces.`);
    const first = xs.indexOf(x);
    if (first !== -1) {
      throw invalid(`Shares ${first + 1} and ${i + 1} are the same share (x = ${x}); give each share once.`);
    }
    xs.push(x);
  }
  // Lagrange basis at 0: l_i = Π_{j≠i} x_j / (x_j − x_i), and subtraction is XOR in GF(2^8).
  const basis = xs.map((xi, i) => {
    let l = 1;
    for (const [j, xj] of xs.entries()) if (j !== i) l = mul(l, div(xj, xj ^ xi));
    return l;
  });
  const secret = Buffer.alloc(length - 1);
  for (let byte = 0; byte < secret.length; byte++) {
    let value = 0;
    for (const [i, share] of shares.entries()) value ^= mul(basis[i]!, share[byte + 1]!);
    secret[byte] = value;
  }
  return secret;
}
