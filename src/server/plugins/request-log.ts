// What the request log says about a request: method, path, query values only for parameters
// known to carry nothing secret or personal, and the client's address as configured. Tokens,
// codes, hints and e-mail addresses travel in query strings; they never reach a log line.
import { isIP } from 'node:net';
import type { FastifyRequest } from 'fastify';
import type { LogClientAddress } from '../../config/config.js';

/**
 * Query parameters whose values are logged: protocol switches and public identifiers. Every
 * other value (login_hint, id_token_hint, access_token, code, state, nonce, …) is replaced, so a
 * parameter nobody thought of is redacted until it is named here.
 */
export const LOGGED_QUERY_PARAMETERS: ReadonlySet<string> = new Set([
  'client_id',
  'response_type',
  'response_mode',
  'scope',
  'prompt',
  'redirect_uri',
  'post_logout_redirect_uri',
  'code_challenge_method',
  'grant_type',
  'resource',
  'ui_locales',
  'claims_locales',
  'max_age',
  'display',
  'acr_values',
  'token_type_hint',
  'limit',
  'after',
  'organisationId',
]);

export const REDACTED = '[redacted]';

/**
 * A name that reads as a parameter name (shorter than any token or code OrthID issues); anything
 * else, such as a token sent as the whole query, is replaced whole.
 */
const PARAMETER_NAME = /^[A-Za-z_][A-Za-z0-9_.[\]-]{0,39}$/;

function decoded(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return text;
  }
}

/** The URL with every query value not in LOGGED_QUERY_PARAMETERS replaced by [redacted]. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q === -1) return url;
  const pairs = url
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      if (pair === '') return pair;
      const eq = pair.indexOf('=');
      const name = decoded(eq === -1 ? pair : pair.slice(0, eq));
      if (LOGGED_QUERY_PARAMETERS.has(name)) return pair;
      if (eq === -1 || !PARAMETER_NAME.test(name)) return REDACTED;
      return `${name}=${REDACTED}`;
    });
  return `${url.slice(0, q)}?${pairs.join('&')}`;
}

/** The eight 16-bit groups of an IPv6 address (an embedded IPv4 tail becomes two). */
function ipv6Groups(address: string): number[] {
  const [head = '', tail] = address.split('::');
  const parts = (text: string) =>
    text === ''
      ? []
      : text.split(':').flatMap((part) => {
          if (!part.includes('.')) return [Number.parseInt(part, 16)];
          const [a, b, c, d] = part.split('.').map(Number) as [number, number, number, number];
          return [(a << 8) | b, (c << 8) | d];
        });
  const first = parts(head);
  const last = tail === undefined ? [] : parts(tail);
  return [...first, ...new Array(8 - first.length - last.length).fill(0), ...last];
}

/**
 * An address cut to its network, as far as the log needs it: IPv4 to /24 and IPv6 to /48
 * (IPv4-mapped IPv6 as IPv4). What does not parse as an address is not logged at all.
 */
export function truncateAddress(address: string): string {
  const plain = address.replace(/%.*$/, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(plain)?.[1];
  const v4 = mapped ?? plain;
  if (isIP(v4) === 4) return `${v4.split('.').slice(0, 3).join('.')}.0/24`;
  if (isIP(plain) === 6) {
    const [a, b, c] = ipv6Groups(plain.toLowerCase());
    return `${[a, b, c].map((g) => g!.toString(16)).join(':')}::/48`;
  }
  return REDACTED;
}

export function addressForLog(address: string | undefined, mode: LogClientAddress): string | undefined {
  if (!address || mode === 'omit') return undefined;
  return mode === 'full' ? address : truncateAddress(address);
}

/** Serializers for the server's logger; they replace Fastify's default `req`, which logs the full URL and address. */
export function requestLogSerializers(mode: LogClientAddress) {
  return {
    req(request: FastifyRequest) {
      return {
        method: request.method,
        url: redactUrl(request.url),
        host: request.headers.host,
        remoteAddress: addressForLog(request.ip, mode),
      };
    },
  };
}
