// Signing the operator in: authorization code + PKCE at a tenant's hosted sign-in with the public
// client `orthid-console`; the access token (for the admin API) lives in this tab's sessionStorage.

export const CLIENT_ID = 'orthid-console';
export const SYSTEM_TENANT = 'system';

/** The deployment's public URL as the browser sees it: everything before /console. */
export const BASE = location.href.slice(0, location.href.indexOf('/console'));
export const CONSOLE = `${BASE}/console`;
const REDIRECT_URI = `${CONSOLE}/callback`;
const RESOURCE = `${BASE}/api`;

const TOKEN_KEY = 'orthid.console.token';
const PENDING_KEY = 'orthid.console.pending';
const ISSUER_KEY = 'orthid.console.issuer';

export interface Session {
  accessToken: string;
  /** Milliseconds since the epoch. */
  expiresAt: number;
  /** The tenant whose sign-in issued the token. */
  issuer: string;
  /** When the console got it (milliseconds since the epoch). */
  obtainedAt: number;
}

interface Pending {
  state: string;
  verifier: string;
  issuer: string;
  /** The console path to return to after signing in. */
  returnTo: string;
}

function random(bytes: number): string {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

function base64url(data: Uint8Array): string {
  let text = '';
  for (const byte of data) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function currentSession(): Session | undefined {
  const raw = sessionStorage.getItem(TOKEN_KEY);
  if (!raw) return undefined;
  const session = JSON.parse(raw) as Session;
  return session.expiresAt > Date.now() ? session : undefined;
}

/** The tenant of a token this tab held that has expired since, if any. */
export function expiredIssuer(): string | undefined {
  const raw = sessionStorage.getItem(TOKEN_KEY);
  return raw && !currentSession() ? (JSON.parse(raw) as Session).issuer : undefined;
}

/** The tenant the operator last signed in at (the system tenant by default). */
export function lastIssuer(): string {
  return localStorage.getItem(ISSUER_KEY) ?? SYSTEM_TENANT;
}

let leaving = false;

/** Leaves for the tenant's sign-in page; comes back to `returnTo` (a path under /console). */
export async function signIn(issuer: string, returnTo: string): Promise<never> {
  // Several requests refused at once start one sign-in, whose state is the one kept.
  if (leaving) return new Promise<never>(() => {});
  leaving = true;
  const verifier = random(32);
  const challenge = base64url(
    new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))),
  );
  const pending: Pending = { state: random(16), verifier, issuer, returnTo };
  sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending));
  sessionStorage.removeItem(TOKEN_KEY);
  const url = new URL(`${BASE}/t/${encodeURIComponent(issuer)}/auth`);
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: CLIENT_ID,
    redirect_uri: REDIRECT_URI,
    scope: 'openid orthid:admin',
    resource: RESOURCE,
    state: pending.state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }).toString();
  location.assign(url.href);
  return new Promise<never>(() => {});
}

export class SignInError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/** Finishes a sign-in at /console/callback; returns the path to go back to. */
export async function completeSignIn(params: URLSearchParams): Promise<string> {
  const raw = sessionStorage.getItem(PENDING_KEY);
  sessionStorage.removeItem(PENDING_KEY);
  const pending = raw ? (JSON.parse(raw) as Pending) : undefined;
  if (params.get('error')) {
    throw new SignInError(
      params.get('error_description') ?? 'The sign-in was refused.',
      params.get('error')!,
    );
  }
  if (!pending || params.get('state') !== pending.state) {
    throw new SignInError('This sign-in was not started here, or was already used; sign in again.', 'state');
  }
  const response = await fetch(`${BASE}/t/${encodeURIComponent(pending.issuer)}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: params.get('code') ?? '',
      redirect_uri: REDIRECT_URI,
      client_id: CLIENT_ID,
      code_verifier: pending.verifier,
      resource: RESOURCE,
    }),
  });
  const body = (await response.json()) as {
    access_token?: string;
    expires_in?: number;
    error?: string;
    error_description?: string;
  };
  if (!response.ok || !body.access_token) {
    throw new SignInError(body.error_description ?? 'The token request failed.', body.error ?? 'token');
  }
  const session: Session = {
    accessToken: body.access_token,
    expiresAt: Date.now() + (body.expires_in ?? 300) * 1000,
    issuer: pending.issuer,
    obtainedAt: Date.now(),
  };
  sessionStorage.setItem(TOKEN_KEY, JSON.stringify(session));
  localStorage.setItem(ISSUER_KEY, pending.issuer);
  return pending.returnTo.startsWith('/console') ? pending.returnTo : '/console/';
}

/** Forgets the token and ends the hosted session too. */
export function signOut(session: Session | undefined): void {
  sessionStorage.removeItem(TOKEN_KEY);
  const url = new URL(`${BASE}/t/${encodeURIComponent(session?.issuer ?? lastIssuer())}/session/end`);
  url.search = new URLSearchParams({
    client_id: CLIENT_ID,
    post_logout_redirect_uri: `${CONSOLE}/`,
  }).toString();
  location.assign(url.href);
}

/** The path under /console to come back to (screen and query). */
export function here(): string {
  return location.pathname + location.search;
}
