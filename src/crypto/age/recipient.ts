// Parses and names age X25519 recipients (`age1…`, the public half of an identity). Validation
// happens here, before anything is written, so a typo fails fast instead of producing an unreadable backup.
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { OrthIdError } from '../../core/errors.js';
import { decodeBech32 } from './bech32.js';
import { X25519_KEY_LENGTH, x25519PublicKey, x25519SharedSecret } from './x25519-key.js';

export interface X25519Recipient {
  /** The canonical `age1…` text. */
  readonly recipient: string;
  readonly publicKey: KeyObject;
  readonly rawPublicKey: Buffer;
}

const HRP = 'age';
const FIX =
  'Use the recipient printed by `age-keygen` (or `age-keygen -y IDENTITY_FILE`): "age1" followed by 58 characters.';

function invalid(what: string, problem: string): OrthIdError {
  return new OrthIdError('age.recipient_invalid', `${what} is not a valid age recipient: ${problem}. ${FIX}`);
}

/**
 * Validates an `age1…` X25519 recipient (bech32 checksum, key length, not a low-order point).
 * Messages never repeat the input: a secret identity pasted by mistake must not reach a log.
 *
 * @example
 * const { rawPublicKey } = parseRecipient('age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p');
 */
export function parseRecipient(text: string, what = 'The recipient'): X25519Recipient {
  const trimmed = text.trim();
  if (/^AGE-SECRET-KEY-/i.test(trimmed)) {
    throw new OrthIdError(
      'age.recipient_invalid',
      `${what} is a secret identity, not a recipient; never share it. Derive its recipient with \`age-keygen -y IDENTITY_FILE\` and use that.`,
    );
  }
  if (/^(ssh-|ecdsa-)/.test(trimmed))
    throw invalid(what, 'SSH keys are not supported, only X25519 recipients');
  if (/^age1[a-z0-9]+1/i.test(trimmed)) {
    throw invalid(what, 'plugin and post-quantum recipients are not supported, only X25519 recipients');
  }
  const decoded = decodeBech32(trimmed);
  if (!decoded.ok) throw invalid(what, decoded.reason);
  if (decoded.hrp !== HRP) {
    throw invalid(
      what,
      decoded.hrp === HRP.toUpperCase()
        ? 'recipients are written in lower case'
        : 'it does not start with "age1"',
    );
  }
  if (decoded.bytes.length !== X25519_KEY_LENGTH) {
    throw invalid(what, `it holds ${decoded.bytes.length} bytes instead of ${X25519_KEY_LENGTH}`);
  }
  const publicKey = x25519PublicKey(decoded.bytes);
  if (x25519SharedSecret(generateKeyPairSync('x25519').privateKey, publicKey) === null) {
    throw invalid(what, 'its key is a low-order point that would expose the file key');
  }
  return { recipient: trimmed, publicKey, rawPublicKey: decoded.bytes };
}

/**
 * Names a recipient without storing it: `sha256:` and the first 16 hex digits of SHA-256 of the
 * recipient text. Backup manifests use it to say which key can open a backup.
 *
 * @example
 * recipientFingerprint('age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p'); // 'sha256:…'
 */
export function recipientFingerprint(recipient: string): string {
  const { recipient: canonical } = parseRecipient(recipient);
  return `sha256:${createHash('sha256').update(canonical).digest('hex').slice(0, 16)}`;
}
