// Builds one tenant's oidc-provider configuration: storage, accounts, keys, resource servers
// and hosted pages. Protocol behaviour stays the certified library's; this file only supplies policy.

import type { JWK } from 'jose';
import type { Configuration, KoaContextWithOIDC } from 'oidc-provider';
import { SIGNING_ALGS, type SigningAlg } from '../crypto/signing-keys.js';
import { ACR_VALUES } from '../identity/mfa-factors.js';
import type { Tenant } from '../tenancy/tenants.js';
import {
  FIRST_PARTY_METADATA,
  INTROSPECTS_METADATA,
  OIDC_SCOPES,
  PREVIOUS_SECRET_METADATA,
  REQUEST_OBJECT_ALGS,
  RESOURCES_METADATA,
  RESPONSE_TYPES,
  SECRET_AUTH_METHODS,
} from './clients.js';
import {
  introspectionAllowed,
  revocationAllowed,
  revokeGrantPolicy,
  tieJwtToGrant,
} from './token-introspection.js';

/** What a token's audience grants: the permissions and roles the subject holds there. */
export interface ResourceGrant {
  permissions: string[];
  roles: string[];
  /** Organisations (ids) whose roles grant those permissions, for user tokens. */
  organisations?: string[];
}

/** What the provider needs of an API resource: its name, and the algorithm its tokens use if not the default. */
export interface ApiResourceInfo {
  name: string;
  accessTokenAlg?: SigningAlg;
}

export type TokenSubject = { kind: 'user'; userId: string } | { kind: 'client'; clientId: string };

export interface Lifetimes {
  accessTokenSeconds: number;
  idTokenSeconds: number;
  refreshTokenSeconds: number;
  sessionIdleSeconds: number;
  sessionAbsoluteSeconds: number;
}

export const DEFAULT_LIFETIMES: Lifetimes = {
  accessTokenSeconds: 15 * 60,
  idTokenSeconds: 60 * 60,
  refreshTokenSeconds: 14 * 24 * 60 * 60,
  sessionIdleSeconds: 24 * 60 * 60,
  sessionAbsoluteSeconds: 14 * 24 * 60 * 60,
};

/** What a request says about its language; the web layer chooses from it (ui_locales first). */
export interface PageLocaleChoice {
  uiLocales?: unknown;
  acceptLanguage?: string | string[];
  tenantDefault?: unknown;
}

/** Why a user code was refused; the page says it in the request's language. */
export interface DeviceCodeProblem {
  reason: 'no_code' | 'not_found' | 'expired' | 'already_used' | 'aborted' | 'other';
  retryAfterSeconds?: number;
}

/**
 * Hosted pages the provider renders itself; supplied by the web layer through the wiring. `L` is
 * the web layer's per-request language, opaque here: `locale` makes it, every page takes it.
 */
export interface ProviderPages<L = unknown, B = unknown> {
  headers: Record<string, string>;
  locale(choice: PageLocaleChoice): L;
  /** The tenant's look on the pages (its name, logo, colours), opaque here like `L`. */
  brand(tenant: Tenant): B;
  signOut(locale: L, brand: B, providerForm: string): string;
  signedOut(locale: L, brand: B): string;
  error(locale: L, brand: B, out: { error: string; error_description?: string }): string;
  /**
   * The device flow's user-code entry; `form` is the provider's (its action and xsrf token).
   * `startAgain`: the browser has no session to bind a form to, so the page links to a new one.
   */
  deviceCodeEntry(
    locale: L,
    brand: B,
    form: DeviceForm,
    problem?: DeviceCodeProblem,
    startAgain?: boolean,
  ): string;
  /** The device flow's confirmation: the code the device shows and the client asking. */
  deviceCodeConfirm(locale: L, brand: B, form: DeviceForm, clientName: string, userCode: string): string;
  /** `clientName` undefined: the provider does not know the client. */
  deviceSignedIn(locale: L, brand: B, clientName?: string): string;
}

/** What the provider's device forms carry: where they post and the token binding them to the session. */
export interface DeviceForm {
  action: string;
  xsrf: string;
}

/** The action and xsrf token of a form the provider rendered (its markup is replaced by the page's own). */
function deviceForm(providerForm: string): DeviceForm {
  const action = /action="([^"]*)"/.exec(providerForm)?.[1];
  const xsrf = /name="xsrf" value="([^"]*)"/.exec(providerForm)?.[1];
  if (!action || !xsrf)
    throw new Error('the provider rendered a device form without an action or xsrf token');
  return { action, xsrf };
}

/** Why a user code was refused, for the page to say in words. */
function userCodeProblem(err: unknown): DeviceCodeProblem | undefined {
  if (!err) return undefined;
  const e = err as { name?: string; userCode?: string; retryAfterSeconds?: number };
  if (e.retryAfterSeconds) return { reason: 'other', retryAfterSeconds: e.retryAfterSeconds };
  switch (e.name) {
    case 'NoCodeError':
      return { reason: 'no_code' };
    case 'NotFoundError':
      return { reason: 'not_found' };
    case 'ExpiredError':
      return { reason: 'expired' };
    case 'AlreadyUsedError':
      return { reason: 'already_used' };
    case 'AbortedError':
      return { reason: 'aborted' };
    default:
      return { reason: 'other' };
  }
}

export interface TenantProviderInput {
  pages: ProviderPages;
  tenant: Tenant;
  /** The tenant's default language for hosted pages (its `defaultLocale` setting), if set. */
  defaultLocale?: string;
  /** Path of the tenant's issuer on the public URL, e.g. /t/acme: hosted pages are linked under it. */
  mountPath: string;
  /** The tenant's default algorithm: access tokens of APIs that name none, and old clients' ID tokens. */
  alg: SigningAlg;
  /** Private JWKs, each algorithm's active key before its retiring ones. */
  signingKeys: JWK[];
  /** Standard claims of the granted scopes go in the ID token too (false: userinfo only). */
  claimsInIdToken: boolean;
  cookieKeys: string[];
  lifetimes: Lifetimes;
  adapter: NonNullable<Configuration['adapter']>;
  findAccount: NonNullable<Configuration['findAccount']>;
  /**
   * The API resource behind an indicator (undefined when the tenant has none) and what the
   * subject holds there, by the one permission check shared with the admin API.
   */
  resourceGrant(
    subject: TokenSubject,
    indicator: string,
  ): Promise<{ resource: ApiResourceInfo | undefined; grant: ResourceGrant }>;
  /**
   * OrthID is served on a loopback address (a development deployment): back-channel logout may
   * then be delivered to relying parties on the same machine. Otherwise the engine's guard
   * refuses every loopback, private or other special-use address it would post to.
   */
  deliverToLoopback: boolean;
  /** Indicators a client may request; the only one is its default. */
  clientResources(client: { metadata(): Record<string, unknown> }): string[];
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/** Whether a URL names this machine by a loopback name or address. */
export function isLoopbackUrl(url: string): boolean {
  return LOOPBACK_HOSTS.has(new URL(url).hostname);
}

function subjectOf(ctx: KoaContextWithOIDC): TokenSubject {
  const { entities } = ctx.oidc;
  const accountId = entities.Account?.accountId ?? entities.Grant?.accountId ?? ctx.oidc.session?.accountId;
  if (ctx.oidc.params?.grant_type === 'client_credentials' || !accountId) {
    return { kind: 'client', clientId: ctx.oidc.client!.clientId };
  }
  return { kind: 'user', userId: accountId };
}

export function tenantProviderConfiguration(input: TenantProviderInput): Configuration {
  const { lifetimes, alg, pages } = input;
  const brand = pages.brand(input.tenant);
  // The token endpoint asks for a subject's grants twice (resource server info, then token
  // claims); one request resolves them, with the resource, once.
  type Lookup = ReturnType<TenantProviderInput['resourceGrant']>;
  const resolved = new WeakMap<object, Map<string, Lookup>>();
  const resourceGrant = (ctx: KoaContextWithOIDC, indicator: string): Lookup => {
    const perRequest = resolved.get(ctx) ?? new Map<string, Lookup>();
    resolved.set(ctx, perRequest);
    const subject = subjectOf(ctx);
    const key = `${subject.kind}:${subject.kind === 'user' ? subject.userId : subject.clientId}|${indicator}`;
    let lookup = perRequest.get(key);
    if (!lookup) {
      lookup = input.resourceGrant(subject, indicator);
      perRequest.set(key, lookup);
    }
    return lookup;
  };
  const sendPage = (ctx: KoaContextWithOIDC, body: string) => {
    ctx.set(pages.headers);
    ctx.body = body;
  };
  const clientName = (ctx: KoaContextWithOIDC) => ctx.oidc.client?.clientName ?? ctx.oidc.client?.clientId;
  // ui_locales of the request (the end-session request has one too), then the browser's, then the tenant's.
  const locale = (ctx: KoaContextWithOIDC) =>
    pages.locale({
      uiLocales: ctx.oidc?.params?.ui_locales,
      acceptLanguage: ctx.get('accept-language'),
      tenantDefault: input.defaultLocale,
    });
  return {
    adapter: input.adapter,
    findAccount: input.findAccount,
    jwks: { keys: input.signingKeys as Configuration['jwks'] extends { keys: infer K } ? K : never },
    // The session cookie is scoped to the tenant's path: one browser holds a session per tenant,
    // and signing in to one never replaces another's `_session`. Interaction and resume cookies
    // are left to the provider, which gives each the path of its own interaction (narrower still;
    // a path here would widen the interaction cookie and make two tabs share one).
    cookies: {
      keys: input.cookieKeys,
      long: { httpOnly: true, sameSite: 'lax', path: `${input.mountPath}/` },
    },
    claims: {
      // How the user signed in (RFC 8176 methods, the context class) goes in every ID token, not
      // only when a client asks for it by the claims parameter.
      openid: ['sub', 'acr', 'amr'],
      email: ['email', 'email_verified'],
      profile: ['name', 'updated_at'],
      phone: ['phone_number'],
    },
    scopes: [...OIDC_SCOPES],
    // A password alone, or with a second factor (the hosted sign-in sets one of them with amr).
    acrValues: [...ACR_VALUES],
    // Every client's metadata names these; the defaults only fill in for clients registered
    // before a choice existed, and keep what they had.
    clientDefaults: {
      grant_types: ['authorization_code'],
      id_token_signed_response_alg: alg,
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    // Discovery lists exactly these: what a client of this tenant can register and use. Client
    // secrets are stored as a keyed hash, so client_secret_jwt (which needs the secret) is not one.
    responseTypes: [...RESPONSE_TYPES],
    clientAuthMethods: [...SECRET_AUTH_METHODS, 'none'],
    // The tenant holds an active key for each (providers.ts), RS256 among them: the algorithm
    // every OpenID provider must offer (OpenID Connect Core §15.1) and what clients assume.
    enabledJWA: {
      idTokenSigningAlgValues: [...SIGNING_ALGS],
      userinfoSigningAlgValues: [...SIGNING_ALGS],
      introspectionSigningAlgValues: [...SIGNING_ALGS],
      authorizationSigningAlgValues: [...SIGNING_ALGS],
      requestObjectSigningAlgValues: [...REQUEST_OBJECT_ALGS],
    },
    // A browser app (public client) calls the token, userinfo and revocation endpoints from the
    // origins of its redirect URIs, and userinfo is called from those of any client; no other
    // origin is answered with CORS headers. The engine's default, written out.
    clientBasedCORS: (ctx, origin, client) =>
      origin !== 'null' &&
      (ctx.oidc.route === 'userinfo' || client.clientAuthMethod === 'none') &&
      (client.redirectUris ?? []).some((uri) => URL.canParse(uri) && new URL(uri).origin === origin),
    extraClientMetadata: {
      properties: [RESOURCES_METADATA, FIRST_PARTY_METADATA, INTROSPECTS_METADATA, PREVIOUS_SECRET_METADATA],
    },
    pkce: { required: () => true },
    rotateRefreshToken: true,
    // Refresh tokens outlive the browser session only when offline_access was granted.
    issueRefreshToken: async (_ctx, client, code) =>
      client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access'),
    // Off: the claims of the granted scopes are in the ID token as well as userinfo, where relying
    // parties (express-openid-connect's req.oidc.user, openid-client's claims()) look for them.
    conformIdTokenClaims: !input.claimsInIdToken,
    ttl: {
      AccessToken: () => lifetimes.accessTokenSeconds,
      ClientCredentials: () => lifetimes.accessTokenSeconds,
      AuthorizationCode: () => 60,
      IdToken: () => lifetimes.idTokenSeconds,
      RefreshToken: () => lifetimes.refreshTokenSeconds,
      Interaction: () => 60 * 60,
      // RFC 8628 §3.2: the time a user has to enter the code a device shows.
      DeviceCode: () => 10 * 60,
      Grant: () => lifetimes.refreshTokenSeconds,
      // Idle timeout, capped by the absolute lifetime counted from sign-in.
      Session: (_ctx, session) => {
        const loginTs = (session as unknown as { loginTs?: number }).loginTs;
        if (!loginTs) return lifetimes.sessionIdleSeconds;
        const left = loginTs + lifetimes.sessionAbsoluteSeconds - Math.floor(Date.now() / 1000);
        return Math.max(1, Math.min(lifetimes.sessionIdleSeconds, left));
      },
    },
    interactions: {
      url: (_ctx, interaction) => `${input.mountPath}/interaction/${interaction.uid}`,
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      // Only within this tenant (one provider per tenant); who else may is token-introspection's.
      introspection: { enabled: true, allowedPolicy: introspectionAllowed },
      revocation: { enabled: true, allowedPolicy: revocationAllowed },
      userinfo: { enabled: true },
      // Flows the engine certifies, served for every tenant; a client opts in by its metadata
      // (clients.ts): the device_code grant, require_pushed_authorization_requests,
      // dpop_bound_access_tokens, request object keys, backchannel_logout_uri.
      deviceFlow: {
        enabled: true,
        // RFC 8628 §6.1: base-20 without vowels, 8 characters (about 34 bits), typed as XXXX-XXXX.
        charset: 'base-20',
        mask: '****-****',
        userCodeInputSource: async (ctx, form, _out, err) => {
          const retryAfter = (err as { retryAfterSeconds?: number } | undefined)?.retryAfterSeconds;
          if (retryAfter) ctx.set('retry-after', String(retryAfter));
          // A request refused before its browser had a session (a form posted without the
          // cookie, a first request with bad parameters) leaves a session the engine would
          // then fail to save (a 500): it stays unsaved, and the page links to a fresh start.
          const session = ctx.oidc.session as unknown as { exp?: unknown; touched?: boolean } | undefined;
          const startAgain = !!err && !!session && typeof session.exp !== 'number';
          if (startAgain) session.touched = false;
          sendPage(
            ctx,
            pages.deviceCodeEntry(locale(ctx), brand, deviceForm(form), userCodeProblem(err), startAgain),
          );
        },
        userCodeConfirmSource: async (ctx, form, client, _deviceInfo, userCode) =>
          sendPage(
            ctx,
            pages.deviceCodeConfirm(
              locale(ctx),
              brand,
              deviceForm(form),
              client.clientName ?? client.clientId,
              userCode,
            ),
          ),
        successSource: async (ctx) =>
          sendPage(ctx, pages.deviceSignedIn(locale(ctx), brand, clientName(ctx))),
      },
      pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: false },
      dPoP: { enabled: true },
      requestObjects: { enabled: true, requireSignedRequestObject: false },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx, form) => sendPage(ctx, pages.signOut(locale(ctx), brand, form)),
        postLogoutSuccessSource: async (ctx) => sendPage(ctx, pages.signedOut(locale(ctx), brand)),
      },
      resourceIndicators: {
        enabled: true,
        // A machine client with one API gets it by default. An OpenID request without `resource`
        // gets an opaque token for userinfo, as relying parties expect.
        defaultResource: async (ctx, client, oneOf) => {
          if (oneOf) return oneOf;
          const scope = String(ctx.oidc.params?.scope ?? '');
          if (scope.split(' ').includes('openid')) return undefined;
          const allowed = input.clientResources(client as never);
          return allowed.length === 1 ? allowed[0] : undefined;
        },
        useGrantedResource: async () => true,
        getResourceServerInfo: async (ctx, indicator, client) => {
          const allowed = input.clientResources(client as never).includes(indicator);
          const { resource, grant } = allowed
            ? await resourceGrant(ctx, indicator)
            : { resource: undefined, grant: undefined };
          if (!resource || !grant) {
            // Loaded only to refuse: a dynamic import goes through the module loader, too dear per token.
            const { InvalidTarget } = (await import('oidc-provider')).errors;
            throw new InvalidTarget(`this client may not request tokens for ${indicator}`);
          }
          // A machine client that asked only for permissions it does not hold would get a token
          // that can do nothing, and a response that could not say so (RFC 6749 §3.3).
          const requested = String(ctx.oidc.params?.scope ?? '')
            .split(' ')
            .filter(Boolean);
          if (
            ctx.oidc.params?.grant_type === 'client_credentials' &&
            requested.length > 0 &&
            !requested.some((p) => grant.permissions.includes(p))
          ) {
            const { InvalidScope } = (await import('oidc-provider')).errors;
            throw new InvalidScope(
              `this client holds none of the requested permissions at ${indicator}; grant it a role that holds them`,
              requested.join(' '),
            );
          }
          return {
            audience: indicator,
            scope: grant.permissions.join(' '),
            accessTokenTTL: lifetimes.accessTokenSeconds,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: resource.accessTokenAlg ?? alg } },
          };
        },
      },
    },
    revokeGrantPolicy,
    formats: { customizers: { jwt: tieJwtToGrant } },
    fetch: (url, init) => {
      const target = new URL(url instanceof Request ? url.url : url);
      if (input.deliverToLoopback && LOOPBACK_HOSTS.has(target.hostname)) {
        // Without the engine's dispatcher, which would refuse the loopback connection.
        const { dispatcher: _guard, ...rest } = (init ?? {}) as RequestInit & { dispatcher?: unknown };
        return fetch(url, rest);
      }
      return fetch(url, init);
    },
    extraTokenClaims: async (ctx, token) => {
      const audience = (token as unknown as { resourceServer?: { audience?: string } }).resourceServer
        ?.audience;
      if (!audience) return undefined;
      const { grant } = await resourceGrant(ctx, audience);
      return { roles: grant.roles, ...(grant.organisations ? { organisations: grant.organisations } : {}) };
    },
    renderError: async (ctx, out) => {
      sendPage(ctx, pages.error(locale(ctx), brand, out));
    },
  };
}
