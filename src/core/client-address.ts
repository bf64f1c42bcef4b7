// One spelling per client address, so that counters keyed by address (sign-in and client
// authentication throttling) cannot be dodged by writing the same address another way in a
// forwarded header: a port, brackets, leading zeros, the integer or hex form, IPv4-mapped IPv6.
import { isIP } from 'node:net';

/** What every spelling that names no address is counted as: such spellings share one counter. */
export const UNRECOGNISED_ADDRESS = 'unrecognised';

/**
 * The address in its canonical form (IPv4 dotted decimal; IPv6 compressed, lower case, IPv4-mapped
 * unwrapped), or undefined when `text` names no IP address. IPv4 is read as the operating system's
 * inet_aton and the WHATWG URL parser read it: a leading 0 is octal, 0x is hex, and one to four
 * parts (`3405803797` is 203.0.113.21). A port (`1.2.3.4:80`, `[::1]:80`) and a zone are dropped.
 */
export function canonicalAddress(text: string): string | undefined {
  let host = text.trim().toLowerCase();
  let v6: boolean;
  const bracketed = /^\[([^\]]*)\](?::\d{1,5})?$/.exec(host);
  if (bracketed) {
    host = bracketed[1]!;
    v6 = host.includes(':');
  } else {
    const colons = host.split(':').length - 1;
    // One colon is IPv4 with a port; IPv6 has at least two (and a port only inside brackets).
    if (colons === 1) {
      const [address = '', port = ''] = host.split(':');
      if (!/^\d{1,5}$/.test(port)) return undefined;
      host = address;
    }
    v6 = colons > 1;
  }
  if (v6) {
    host = host.replace(/%[^%]*$/, '');
    if (!/^[0-9a-f:.]+$/.test(host) || isIP(host) !== 6) return undefined;
    const canonical = new URL(`http://[${host}]/`).hostname.slice(1, -1);
    const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(canonical);
    if (!mapped) return canonical;
    const n = (Number.parseInt(mapped[1]!, 16) << 16) | Number.parseInt(mapped[2]!, 16);
    return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
  }
  // Only digits, dots and hex: anything else (a name, userinfo, a path) is no address.
  if (!/^[0-9a-fx.]+$/.test(host)) return undefined;
  let parsed: string;
  try {
    parsed = new URL(`http://${host}/`).hostname;
  } catch {
    return undefined;
  }
  return isIP(parsed) === 4 ? parsed : undefined;
}

/**
 * The unit an attacker controls, for counting: an IPv4 address, or an IPv6 address's /64 (one
 * subscriber usually holds a whole /64). Every spelling that names no address is one unit.
 */
export function addressUnit(text: string): string {
  const address = canonicalAddress(text);
  if (address === undefined) return UNRECOGNISED_ADDRESS;
  if (isIP(address) !== 6) return address;
  const [head = '', tail = ''] = address.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const groups = address.includes('::')
    ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right]
    : left;
  return `${groups
    .slice(0, 4)
    .map((g) => Number.parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}
