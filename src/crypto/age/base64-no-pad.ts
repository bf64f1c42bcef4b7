// The base64 dialect of age headers: standard alphabet, no padding, canonical only. Strictness
// matters because the header MAC covers the text, so two spellings of one value must not both pass.

const ALPHABET = /^[A-Za-z0-9+/]*$/;

export function encodeBase64NoPad(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64').replace(/=+$/, '');
}

/** Returns null for anything but the one canonical encoding (Buffer.from would accept much more). */
export function decodeBase64NoPad(text: string): Buffer | null {
  if (!ALPHABET.test(text) || text.length % 4 === 1) return null;
  const bytes = Buffer.from(text, 'base64');
  return encodeBase64NoPad(bytes) === text ? bytes : null;
}
