// Drives the hosted sign-in with its second-factor steps over real HTTP, without JavaScript: a
// stock openid-client relying party starts the request, a cookie browser fills the forms.
import * as oidc from 'openid-client';
import { CookieBrowser, readForm } from './cookie-browser.js';

export interface MfaFlow {
  config: oidc.Configuration;
  browser: CookieBrowser;
  origin: string;
  verifier: string;
  state: string;
  redirectUri: string;
  /** The page OrthID served last (its status and HTML). */
  status: number;
  html: string;
  /** Where the last page came from. */
  url: string;
  /** Set once OrthID redirected to the redirect URI. */
  callback?: URL;
}

export interface StartOptions {
  issuer: string;
  client: { client_id: string; client_secret: string };
  redirectUri: string;
  browser?: CookieBrowser;
  /** Extra authorization request parameters (acr_values, max_age, prompt). */
  params?: Record<string, string>;
}

export async function discover(issuer: string, client: { client_id: string; client_secret: string }) {
  return oidc.discovery(new URL(issuer), client.client_id, client.client_secret, undefined, {
    execute: [oidc.allowInsecureRequests],
  });
}

/** Starts an authorization request and follows it to OrthID's first page (or the callback). */
export async function startFlow(options: StartOptions): Promise<MfaFlow> {
  const config = await discover(options.issuer, options.client);
  const origin = new URL(options.issuer).origin;
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: options.redirectUri,
    scope: 'openid email',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    ...options.params,
  });
  const browser = options.browser ?? new CookieBrowser();
  const flow: MfaFlow = {
    config,
    browser,
    origin,
    verifier,
    state,
    redirectUri: options.redirectUri,
    status: 0,
    html: '',
    url: url.href,
  };
  await arrive(flow, await browser.get(url.href), url.href);
  return flow;
}

async function arrive(flow: MfaFlow, response: Response, from: string): Promise<void> {
  const next = await flow.browser.follow(response, from, flow.redirectUri);
  flow.url = next.url;
  if (next.url.startsWith(flow.redirectUri)) {
    flow.callback = new URL(next.url);
    flow.status = next.response.status;
    flow.html = '';
    return;
  }
  flow.status = next.response.status;
  flow.html = await next.response.text();
}

/** Posts the page's form `id` (its hidden fields plus `fields`), and follows to the next page. */
export async function submit(flow: MfaFlow, fields: Record<string, string>, id?: string): Promise<MfaFlow> {
  const form = readForm(flow.html, id);
  const action = new URL(form.action, flow.url).href;
  await arrive(flow, await flow.browser.post(action, { ...form.fields, ...fields }), action);
  return flow;
}

export async function getPage(flow: MfaFlow, href: string): Promise<MfaFlow> {
  const url = new URL(href.replace(/&amp;/g, '&'), flow.url).href;
  await arrive(flow, await flow.browser.get(url), url);
  return flow;
}

/** Exchanges the callback's code; returns the ID token's claims. */
export async function tokens(flow: MfaFlow) {
  if (!flow.callback)
    throw new Error(`no callback yet; OrthID served ${flow.status}: ${flow.html.slice(0, 600)}`);
  const result = await oidc.authorizationCodeGrant(flow.config, flow.callback, {
    pkceCodeVerifier: flow.verifier,
    expectedState: flow.state,
  });
  return result.claims()!;
}

/** The text of the page's error alert and its stable code, if it shows one. */
export function pageError(html: string): { code: string; message: string } | undefined {
  const match = /<p class="error" role="alert"(?: data-code="([^"]*)")?>([^<]*)<\/p>/.exec(html);
  return match ? { code: match[1] ?? '', message: match[2]! } : undefined;
}

/** The secret the enrolment page shows as text (spaces removed). */
export function enrolmentSecret(html: string): string {
  const match = /<p class="code" id="secret">([^<]*)<\/p>/.exec(html);
  if (!match) throw new Error(`no enrolment secret on the page:\n${html.slice(0, 600)}`);
  return match[1]!.replace(/\s/g, '');
}

export function recoveryCodesOn(html: string): string[] {
  return [...html.matchAll(/<li><code>([^<]*)<\/code><\/li>/g)].map((m) => m[1]!);
}
