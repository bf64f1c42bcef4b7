// Bech32 (BIP 173, not bech32m) as age uses it for recipients and identities — no 90-character
// limit, one case per string — through the audited `@scure/base` codec. This file only keeps the
// input's case and turns the codec's failures into fixed reasons: its messages quote the input,
// which for an identity is a secret key.
import { bech32 } from '@scure/base';

export type Bech32Decoded = { ok: true; hrp: string; bytes: Buffer } | { ok: false; reason: string };

/** Encodes bytes under `hrp`; the output has the case of `hrp` (age identities are upper case). */
export function encodeBech32(hrp: string, bytes: Uint8Array): string {
  const out = bech32.encode(hrp.toLowerCase(), bech32.toWords(bytes), false);
  return hrp === hrp.toLowerCase() ? out : out.toUpperCase();
}

/** The reason for a failure of `@scure/base`'s decoder, never its message (it holds the input). */
function reasonOf(error: unknown): string {
  const message = error instanceof Error ? error.message : '';
  if (/mixed-case/i.test(message)) return 'it mixes upper and lower case';
  if (/checksum/i.test(message)) {
    return 'its checksum does not match (a character was mistyped or the text was cut)';
  }
  if (/unknown letter/i.test(message)) return 'it contains a character outside the bech32 alphabet';
  if (/printable|prefix/i.test(message)) return 'its prefix has an invalid character';
  if (/padding/i.test(message)) return 'its data has invalid padding';
  return 'it is not in bech32 form (prefix, "1", data, checksum)';
}

/** Decodes a bech32 string; `hrp` keeps the input's case so callers can insist on one. */
export function decodeBech32(text: string): Bech32Decoded {
  try {
    const { words } = bech32.decode(text as `${string}1${string}`, false);
    const bytes = bech32.fromWords(words);
    return { ok: true, hrp: text.slice(0, text.lastIndexOf('1')), bytes: Buffer.from(bytes) };
  } catch (error) {
    return { ok: false, reason: reasonOf(error) };
  }
}
