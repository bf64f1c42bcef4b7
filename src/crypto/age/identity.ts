// age X25519 identities (`AGE-SECRET-KEY-1…`): generate, parse, derive the recipient. The
// secret never appears in an error message, not even in part.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { OrthIdError } from '../../core/errors.js';
import { decodeBech32, encodeBech32 } from './bech32.js';
import { rawPrivateKey, rawPublicKey, X25519_KEY_LENGTH, x25519PrivateKey } from './x25519-key.js';

export interface X25519Identity {
  readonly privateKey: KeyObject;
  /** The public key, used to check whether a header stanza could be ours. */
  readonly rawPublicKey: Buffer;
}

const HRP = 'AGE-SECRET-KEY-';
const RECIPIENT_HRP = 'age';

/**
 * Validates an `AGE-SECRET-KEY-1…` identity. `what` names it in messages (e.g. "The identity on
 * line 3 of keys.txt"), because the text itself is secret.
 */
export function parseIdentity(text: string, what = 'The identity'): X25519Identity {
  const fail = (problem: string) =>
    new OrthIdError(
      'age.identity_invalid',
      `${what} is not a valid age identity: ${problem}. Use a line starting with AGE-SECRET-KEY-1 from a file made by \`age-keygen\`.`,
    );
  const trimmed = text.trim();
  if (/^age1/i.test(trimmed)) {
    throw new OrthIdError(
      'age.identity_invalid',
      `${what} is a recipient (public key), not an identity. Decryption needs the secret identity file it was derived from.`,
    );
  }
  if (/^AGE-PLUGIN-|^AGE-SECRET-KEY-PQ-/i.test(trimmed)) {
    throw fail('plugin and post-quantum identities are not supported, only X25519 identities');
  }
  const decoded = decodeBech32(trimmed);
  if (!decoded.ok) throw fail(decoded.reason);
  if (decoded.hrp !== HRP) {
    throw fail(
      decoded.hrp === HRP.toLowerCase()
        ? 'identities are written in upper case'
        : 'it does not start with AGE-SECRET-KEY-1',
    );
  }
  if (decoded.bytes.length !== X25519_KEY_LENGTH) {
    throw fail(`it holds ${decoded.bytes.length} bytes instead of ${X25519_KEY_LENGTH}`);
  }
  const privateKey = x25519PrivateKey(decoded.bytes);
  decoded.bytes.fill(0);
  return { privateKey, rawPublicKey: rawPublicKey(privateKey) };
}

/**
 * A fresh X25519 identity and its recipient, in the same text forms as `age-keygen`.
 *
 * @example
 * const { identity, recipient } = generateIdentity(); // 'AGE-SECRET-KEY-1…', 'age1…'
 */
export function generateIdentity(): { identity: string; recipient: string } {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  const secret = rawPrivateKey(privateKey);
  const identity = encodeBech32(HRP, secret);
  secret.fill(0);
  return { identity, recipient: encodeBech32(RECIPIENT_HRP, rawPublicKey(publicKey)) };
}

/** The `age1…` recipient of an identity, as `age-keygen -y` prints it. */
export function recipientOf(identity: string): string {
  return encodeBech32(RECIPIENT_HRP, parseIdentity(identity).rawPublicKey);
}
