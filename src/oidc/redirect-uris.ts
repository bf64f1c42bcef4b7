// What a client may register as a redirect (or post-logout redirect) URI, and how a presented one
// is matched: exactly, as the specification requires, except that an origin-only URI with or
// without its trailing slash is one URL (WHATWG URL: `https://app.example` is `https://app.example/`).
import type Provider from 'oidc-provider';
import { OrthIdError } from '../core/errors.js';

/** Schemes a browser runs or reads locally instead of navigating to: never a redirect target. */
const REFUSED_SCHEMES = new Set(['javascript:', 'data:', 'vbscript:', 'file:', 'blob:', 'about:']);

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

function invalid(message: string, field: string): OrthIdError {
  return new OrthIdError('request.invalid', message, { details: { field } });
}

/**
 * A URI a client registers: absolute, without a fragment or credentials, https (http only on
 * loopback), or a native app's private-use scheme (RFC 8252 §7.1).
 */
export function checkRegisteredUri(uri: string, field: string): string {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw invalid(`"${uri}" is not an absolute URI.`, field);
  }
  if (REFUSED_SCHEMES.has(url.protocol)) {
    throw invalid(`"${uri}" uses the ${url.protocol} scheme, which can never receive a redirect.`, field);
  }
  if (uri.includes('#')) throw invalid(`"${uri}" must not contain a fragment.`, field);
  if (url.username || url.password) throw invalid(`"${uri}" must not contain credentials.`, field);
  if (url.protocol === 'http:' && !LOOPBACK_HOSTS.has(url.hostname)) {
    throw invalid(`"${uri}" must use https (http is allowed only for localhost).`, field);
  }
  return uri;
}

/** The same origin-only URI written the other way (with or without its slash), if it is one. */
function slashVariant(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  if (url.pathname !== '/' || url.search || url.hash || !url.host) return undefined;
  if (value === url.origin) return `${value}/`;
  if (value === `${url.origin}/`) return url.origin;
  return undefined;
}

/** Lets a redirect URI match its registration with or without an origin-only URI's trailing slash. */
export function matchOriginOnlyUris(provider: Provider): void {
  const { prototype } = provider.Client;
  const redirect = prototype.redirectUriAllowed;
  const postLogout = prototype.postLogoutRedirectUriAllowed;
  prototype.redirectUriAllowed = function (this: typeof prototype, value: string) {
    const other = slashVariant(value);
    return redirect.call(this, value) || (other !== undefined && redirect.call(this, other));
  };
  prototype.postLogoutRedirectUriAllowed = function (this: typeof prototype, value: string) {
    const other = slashVariant(value);
    return postLogout.call(this, value) || (other !== undefined && postLogout.call(this, other));
  };
}
