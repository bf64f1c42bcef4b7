// Keyed blind index (HMAC-SHA-256) for equality look-ups on sealed fields, so sign-in by email
// never needs plaintext in the database. Values are normalised first so look-ups are case-insensitive.
import { createHmac } from 'node:crypto';

export function normaliseEmail(email: string): string {
  return email.normalize('NFKC').trim().toLowerCase();
}

/** `purpose` separates indexes, so equal values in different columns do not correlate. */
export function blindIndex(indexKey: Buffer, purpose: string, normalisedValue: string): string {
  return createHmac('sha256', indexKey).update(`${purpose}\u0000${normalisedValue}`).digest('base64url');
}
