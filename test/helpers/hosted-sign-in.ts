// Drives a stock openid-client relying party through OrthID's hosted sign-in form over real HTTP:
// discovery, an authorization request with PKCE, the form post, and (optionally) the consent page.
import * as oidc from 'openid-client';
import { CookieBrowser, readForm } from './cookie-browser.js';

export interface HostedSignInOptions {
  /** The tenant's issuer, e.g. `http://127.0.0.1:4000/t/acme`. */
  issuer: string;
  client: { client_id: string; client_secret: string };
  redirectUri: string;
  email: string;
  password: string;
  scope?: string;
  /** A resource indicator (an API registered with the tenant): the access token is a JWT for it. */
  resource?: string;
  /** Send every request here instead of the issuer's origin (one replica behind a load balancer). */
  origin?: string;
  /** Continue in this browser (its cookies), e.g. to sign in to a second tenant; a new one by default. */
  browser?: CookieBrowser;
}

export interface HostedSignIn {
  config: oidc.Configuration;
  browser: CookieBrowser;
  /** The response to the sign-in form post: 303 on success, 401 or 429 on failure. */
  posted: Response;
  verifier: string;
  state: string;
  /** Where the requests went. */
  origin: string;
}

/** Starts an authorization request and submits the hosted sign-in form with email and password. */
export async function submitHostedSignIn(options: HostedSignInOptions): Promise<HostedSignIn> {
  const config = await oidc.discovery(
    new URL(options.issuer),
    options.client.client_id,
    options.client.client_secret,
    undefined,
    { execute: [oidc.allowInsecureRequests] },
  );
  const origin = options.origin ?? new URL(options.issuer).origin;
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: options.redirectUri,
    scope: options.scope ?? 'openid email offline_access',
    ...(options.resource ? { resource: options.resource } : {}),
    prompt: 'consent',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
  });
  const target = url.href.replace(new URL(options.issuer).origin, origin);
  const browser = options.browser ?? new CookieBrowser();
  const login = await browser.follow(await browser.get(target), origin);
  const form = readForm(await login.response.text());
  const posted = await browser.post(new URL(form.action, origin).href, {
    ...form.fields,
    email: options.email,
    password: options.password,
  });
  return { config, browser, posted, verifier, state, origin };
}

/** After a successful form post: allows the consent page (when shown) and returns the callback URL. */
export async function consentToCallback(signIn: HostedSignIn, redirectUri: string): Promise<URL> {
  const { browser, origin } = signIn;
  const next = await browser.follow(signIn.posted, origin, redirectUri);
  if (next.url.startsWith(redirectUri)) return new URL(next.url);
  const form = readForm(await next.response.text());
  const done = await browser.follow(
    await browser.post(new URL(form.action, origin).href, form.fields),
    origin,
    redirectUri,
  );
  return new URL(done.url);
}

export interface ThroughHostedPages {
  /** The app's first page that is not a redirect, or the redirect to `stopAt` (not fetched). */
  response: Response;
  url: string;
  /** Whether the consent page was shown (and allowed) on the way. */
  consented: boolean;
}

/**
 * Drives a browser from a response of the app (e.g. its /login redirect) through OrthID's hosted
 * pages as a person would: signs in with the form, allows the consent page when it is shown,
 * submits a form_post callback as its script would, and returns once the app serves a page (or,
 * with `stopAt`, once OrthID redirects there: a redirect URI no server listens on).
 */
export async function throughHostedPages(
  browser: CookieBrowser,
  start: { response: Response; url: string },
  credentials: { email: string; password: string },
  appOrigin: string,
  stopAt?: string,
): Promise<ThroughHostedPages> {
  let consented = false;
  let current = await browser.follow(start.response, start.url, stopAt);
  for (let step = 0; step < 10; step++) {
    if (new URL(current.url).origin === appOrigin) return { ...current, consented };
    const page = await current.response.text();
    if (!/<form/.test(page)) {
      const main = page.slice(page.indexOf('<main'), page.indexOf('</main>'));
      throw new Error(
        `OrthID served no form at ${current.url} (${current.response.status}): ${main || page.slice(0, 800)}`,
      );
    }
    const form = readForm(page);
    const action = new URL(form.action, current.url).href;
    let posted: Response;
    if (/name="password"/.test(page)) {
      posted = await browser.post(action, { ...form.fields, ...credentials });
    } else if (/<h1>Allow /.test(page)) {
      consented = true;
      posted = await browser.post(action, form.fields);
    } else if (new URL(action).origin === appOrigin) {
      posted = await browser.post(action, form.fields);
    } else {
      throw new Error(
        `unexpected page at ${current.url} (${current.response.status}):\n${page.slice(0, 800)}`,
      );
    }
    current = await browser.follow(posted, action, stopAt);
    if (current.response.status >= 400 && new URL(current.url).origin !== appOrigin) {
      throw new Error(
        `OrthID answered ${current.response.status} at ${current.url}:\n${await current.response.text()}`,
      );
    }
  }
  throw new Error('still on OrthID after ten pages');
}
