// The account pages' cookies: the sign-in in progress (state, PKCE verifier, nonce) and the signed-in
// session (the user, their access token and its expiry), each sealed under a key of the tenant.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { aeadOpen, aeadSeal } from '../crypto/aead.js';
import type { TenantKeyring } from '../crypto/tenant-keys.js';

export const SESSION_COOKIE = 'orthid_account';
export const FLOW_COOKIE = 'orthid_account_flow';
/** A sign-in that takes longer than this starts again. */
export const FLOW_SECONDS = 10 * 60;

/** A signed-in account session: what the access token proved at sign-in. */
export interface AccountSession {
  userId: string;
  accessToken: string;
  grantId: string;
  /** The provider session the sign-in happened in (the one "sign out elsewhere" keeps). */
  sessionUid: string;
  /** Binds the pages' forms to this session (their CSRF token is a MAC of it). */
  formKey: string;
  /** Unix seconds: the access token's expiry. */
  expiresAt: number;
  /** Unix seconds: when the user last proved who they are (the ID token's `auth_time`). */
  authTime: number;
}

export interface SignInFlow {
  state: string;
  verifier: string;
  nonce: string;
  /** The account page to show after sign-in (a path under the account pages). */
  returnTo: string;
  expiresAt: number;
}

export const randomValue = (bytes = 32) => randomBytes(bytes).toString('base64url');
export const pkceChallenge = (verifier: string) => createHash('sha256').update(verifier).digest('base64url');

export interface AccountCookies {
  seal(kind: 'session' | 'flow', value: AccountSession | SignInFlow): string;
  open<T extends AccountSession | SignInFlow>(
    kind: 'session' | 'flow',
    value: string | undefined,
  ): T | undefined;
  csrfToken(session: AccountSession): string;
  checkCsrf(session: AccountSession, presented: unknown): boolean;
}

/** `keyring`: the tenant's; the cookie key derives from its index key, so every replica agrees. */
export function accountCookies(keyring: TenantKeyring, tenantId: string, now: () => Date): AccountCookies {
  const key = createHash('sha256').update(keyring.index('account.cookie', tenantId)).digest();
  const aad = (kind: string) => Buffer.from(`orthid/account-cookie/v1|${tenantId}|${kind}`);
  const csrfToken = (session: AccountSession) =>
    createHmac('sha256', key).update(`csrf\u0000${session.formKey}`).digest('base64url');
  return {
    seal: (kind, value) => aeadSeal(key, Buffer.from(JSON.stringify(value)), aad(kind)).toString('base64url'),
    open<T extends AccountSession | SignInFlow>(kind: 'session' | 'flow', value: string | undefined) {
      if (!value || !/^[A-Za-z0-9_-]{16,8192}$/.test(value)) return undefined;
      const plain = aeadOpen(key, Buffer.from(value, 'base64url'), aad(kind));
      if (!plain) return undefined;
      const parsed = JSON.parse(plain.toString('utf8')) as T;
      return parsed.expiresAt * 1000 > now().getTime() ? parsed : undefined;
    },
    csrfToken,
    checkCsrf(session, presented) {
      if (typeof presented !== 'string') return false;
      const a = Buffer.from(presented);
      const b = Buffer.from(csrfToken(session));
      return a.length === b.length && timingSafeEqual(a, b);
    },
  };
}

/** The value of one cookie in a Cookie header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** A Set-Cookie value: HttpOnly, SameSite=Lax, Secure on https, scoped to the account pages. */
export function setCookie(
  name: string,
  value: string,
  options: { path: string; secure: boolean; maxAgeSeconds: number },
): string {
  return [
    `${name}=${value}`,
    `Path=${options.path}`,
    `Max-Age=${Math.max(0, Math.floor(options.maxAgeSeconds))}`,
    'HttpOnly',
    'SameSite=Lax',
    ...(options.secure ? ['Secure'] : []),
  ].join('; ');
}
