// Bech32 (BIP 173, not bech32m) as age uses it for recipients and identities: no 90-character
// limit, one case per string. Pure functions; callers turn a failure into their own typed error.

const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const GENERATOR = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3] as const;
const CHECKSUM_LENGTH = 6;

export type Bech32Decoded = { ok: true; hrp: string; bytes: Buffer } | { ok: false; reason: string };

function polymod(values: readonly number[]): number {
  let chk = 1;
  for (const value of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ value;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= GENERATOR[i]!;
  }
  return chk >>> 0;
}

function expandHrp(hrp: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < hrp.length; i++) out.push(hrp.charCodeAt(i) >>> 5);
  out.push(0);
  for (let i = 0; i < hrp.length; i++) out.push(hrp.charCodeAt(i) & 31);
  return out;
}

/** Regroups bits; `pad` is true when encoding, and decoding rejects non-zero padding bits. */
function convertBits(data: ArrayLike<number>, from: number, to: number, pad: boolean): number[] | null {
  let acc = 0;
  let bits = 0;
  const out: number[] = [];
  const maxValue = (1 << to) - 1;
  for (let i = 0; i < data.length; i++) {
    acc = (acc << from) | data[i]!;
    bits += from;
    while (bits >= to) {
      bits -= to;
      out.push((acc >>> bits) & maxValue);
    }
    acc &= (1 << bits) - 1;
  }
  if (pad) {
    if (bits > 0) out.push((acc << (to - bits)) & maxValue);
  } else if (bits >= from || acc !== 0) {
    return null;
  }
  return out;
}

/** Encodes bytes under `hrp`; the output has the case of `hrp` (age identities are upper case). */
export function encodeBech32(hrp: string, bytes: Uint8Array): string {
  const lowerHrp = hrp.toLowerCase();
  const data = convertBits(bytes, 8, 5, true)!;
  const mod = polymod([...expandHrp(lowerHrp), ...data, 0, 0, 0, 0, 0, 0]) ^ 1;
  let out = `${lowerHrp}1`;
  for (const value of data) out += CHARSET[value];
  for (let i = 0; i < CHECKSUM_LENGTH; i++) out += CHARSET[(mod >>> (5 * (5 - i))) & 31];
  return hrp === lowerHrp ? out : out.toUpperCase();
}

/** Decodes a bech32 string; `hrp` keeps the input's case so callers can insist on one. */
export function decodeBech32(text: string): Bech32Decoded {
  const lower = text.toLowerCase();
  if (text !== lower && text !== text.toUpperCase()) {
    return { ok: false, reason: 'it mixes upper and lower case' };
  }
  const separator = lower.lastIndexOf('1');
  if (separator < 1 || separator + CHECKSUM_LENGTH + 1 > lower.length) {
    return { ok: false, reason: 'it is not in bech32 form (prefix, "1", data, checksum)' };
  }
  const hrp = lower.slice(0, separator);
  for (let i = 0; i < hrp.length; i++) {
    const code = hrp.charCodeAt(i);
    if (code < 33 || code > 126) return { ok: false, reason: 'its prefix has an invalid character' };
  }
  const data: number[] = [];
  for (const char of lower.slice(separator + 1)) {
    const value = CHARSET.indexOf(char);
    if (value === -1) return { ok: false, reason: 'it contains a character outside the bech32 alphabet' };
    data.push(value);
  }
  if (polymod([...expandHrp(hrp), ...data]) !== 1) {
    return {
      ok: false,
      reason: 'its checksum does not match (a character was mistyped or the text was cut)',
    };
  }
  const bytes = convertBits(data.slice(0, -CHECKSUM_LENGTH), 5, 8, false);
  if (bytes === null) return { ok: false, reason: 'its data has invalid padding' };
  return { ok: true, hrp: text.slice(0, separator), bytes: Buffer.from(bytes) };
}
