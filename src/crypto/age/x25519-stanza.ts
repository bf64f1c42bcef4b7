// The X25519 recipient stanza: wraps the file key to a recipient with an ephemeral key, and
// unwraps it with an identity. Header framing and the MAC live in header.ts.
import { createCipheriv, createDecipheriv, generateKeyPairSync, hkdfSync } from 'node:crypto';
import { OrthIdError } from '../../core/errors.js';
import { decodeBase64NoPad, encodeBase64NoPad } from './base64-no-pad.js';
import type { Stanza } from './header.js';
import type { X25519Identity } from './identity.js';
import type { X25519Recipient } from './recipient.js';
import { rawPublicKey, X25519_KEY_LENGTH, x25519PublicKey, x25519SharedSecret } from './x25519-key.js';

export const X25519_STANZA_TYPE = 'X25519';
const INFO = 'age-encryption.org/v1/X25519';
const FILE_KEY_LENGTH = 16;
const TAG_LENGTH = 16;
// Each wrap key is used exactly once, so a constant nonce is safe (and is what the spec fixes).
const ZERO_NONCE = Buffer.alloc(12);

function wrapKey(sharedSecret: Buffer, ephemeralShare: Buffer, recipientKey: Buffer): Buffer {
  const salt = Buffer.concat([ephemeralShare, recipientKey]);
  return Buffer.from(hkdfSync('sha256', sharedSecret, salt, INFO, 32));
}

function malformed(): OrthIdError {
  return new OrthIdError(
    'age.decrypt_failed',
    'An X25519 stanza in the age header is malformed: the file is damaged. Restore it from another copy.',
  );
}

export function wrapFileKey(fileKey: Buffer, recipient: X25519Recipient): Stanza {
  const ephemeral = generateKeyPairSync('x25519');
  const share = rawPublicKey(ephemeral.publicKey);
  const shared = x25519SharedSecret(ephemeral.privateKey, recipient.publicKey);
  // parseRecipient already rejected low-order points, so this cannot fail for a parsed recipient.
  if (shared === null)
    throw new OrthIdError('age.recipient_invalid', 'The recipient key is a low-order point.');
  const cipher = createCipheriv(
    'chacha20-poly1305',
    wrapKey(shared, share, recipient.rawPublicKey),
    ZERO_NONCE,
    {
      authTagLength: TAG_LENGTH,
    },
  );
  const body = Buffer.concat([cipher.update(fileKey), cipher.final(), cipher.getAuthTag()]);
  return { args: [X25519_STANZA_TYPE, encodeBase64NoPad(share)], body };
}

/**
 * The file key if this stanza was made for `identity`, null if it was made for someone else.
 * Throws only when the stanza cannot be a valid X25519 stanza at all.
 */
export function unwrapFileKey(stanza: Stanza, identity: X25519Identity): Buffer | null {
  if (stanza.args.length !== 2 || stanza.body.length !== FILE_KEY_LENGTH + TAG_LENGTH) throw malformed();
  const share = decodeBase64NoPad(stanza.args[1]!);
  if (share === null || share.length !== X25519_KEY_LENGTH) throw malformed();
  const shared = x25519SharedSecret(identity.privateKey, x25519PublicKey(share));
  if (shared === null) throw malformed();
  const decipher = createDecipheriv(
    'chacha20-poly1305',
    wrapKey(shared, share, identity.rawPublicKey),
    ZERO_NONCE,
    {
      authTagLength: TAG_LENGTH,
    },
  );
  decipher.setAuthTag(stanza.body.subarray(FILE_KEY_LENGTH));
  const fileKey = decipher.update(stanza.body.subarray(0, FILE_KEY_LENGTH));
  try {
    decipher.final();
    return fileKey;
  } catch {
    // Authentication failure is the normal "not addressed to this identity" case.
    return null;
  }
}
