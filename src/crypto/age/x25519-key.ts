// Raw 32-byte X25519 keys (as age encodes them) to and from node:crypto KeyObjects, and the
// Diffie-Hellman step. Knows nothing of bech32 or of the age format around the keys.
import { createPrivateKey, createPublicKey, diffieHellman, type KeyObject } from 'node:crypto';

// DER prefixes of PKCS#8 and SPKI for OID 1.3.101.110 (X25519); the raw key follows them.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

export const X25519_KEY_LENGTH = 32;

export function x25519PrivateKey(raw: Uint8Array): KeyObject {
  const der = Buffer.concat([PKCS8_PREFIX, raw]);
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } finally {
    der.fill(0);
  }
}

export function x25519PublicKey(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

/** The raw public key of a private or public X25519 KeyObject. */
export function rawPublicKey(key: KeyObject): Buffer {
  const spki = (key.type === 'private' ? createPublicKey(key) : key).export({ format: 'der', type: 'spki' });
  return spki.subarray(SPKI_PREFIX.length);
}

export function rawPrivateKey(key: KeyObject): Buffer {
  return key.export({ format: 'der', type: 'pkcs8' }).subarray(PKCS8_PREFIX.length);
}

/**
 * The shared secret, or null when the peer's key is a low-order point: OpenSSL refuses the
 * all-zero result, which age also requires to be rejected.
 */
export function x25519SharedSecret(privateKey: KeyObject, publicKey: KeyObject): Buffer | null {
  try {
    return diffieHellman({ privateKey, publicKey });
  } catch {
    return null;
  }
}
