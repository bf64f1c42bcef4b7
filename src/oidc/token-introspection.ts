// Who may introspect or revoke which token (RFC 7662 §4, RFC 7009 §2.1), and introspection and
// revocation of JWT access tokens, which the provider itself refuses: a JWT is never stored, so it
// is read back from its signature and tied to its grant by a claim, and the provider's own
// endpoint then treats it like any stored access token (grant check, policy, response).
import { randomUUID } from 'node:crypto';
import { createLocalJWKSet, decodeProtectedHeader, type JWK, type JWTPayload, jwtVerify } from 'jose';
import type Provider from 'oidc-provider';
import type { errors, KoaContextWithOIDC } from 'oidc-provider';
import type { Clock } from '../core/clock.js';
import { INTROSPECTS_METADATA } from './clients.js';

/**
 * The claim naming a JWT access token's grant. A grant id is not a credential (no endpoint
 * accepts one); it is what makes a JWT inactive once its grant is revoked.
 */
export const GRANT_CLAIM = 'orthid_grant';

/** Marks a token read from a JWT rather than found in storage. */
const STRUCTURED = Symbol('orthid.structured-token');

type Token = { clientId?: string; kind: string; aud?: string | string[]; [STRUCTURED]?: true };
type Client = { clientId: string; clientAuthMethod?: string; metadata(): Record<string, unknown> };
/** A model's static lookup, as the endpoints call it. */
type Find = (value: string, options?: { ignoreExpiration?: boolean }) => Promise<unknown>;

/** Resource indicators whose tokens a client may introspect as their resource server. */
function introspectedAudiences(client: Client): string[] {
  const value = client.metadata()[INTROSPECTS_METADATA];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/**
 * RFC 7662 §4: the client a token was issued to, or a resource server of its audience, learns
 * that it is active; every other caller gets `active: false`, as for an unknown token.
 */
export async function introspectionAllowed(
  ctx: KoaContextWithOIDC,
  client: Client,
  token: Token,
): Promise<boolean> {
  // Refused before any lookup (acceptStructuredTokens); kept here so a public client never
  // learns about a token even if that step is bypassed.
  if (client.clientAuthMethod === 'none') return false;
  if (token.clientId === client.clientId) return true;
  const audiences = token.aud === undefined ? [] : [token.aud].flat();
  const served = introspectedAudiences(client);
  if (!audiences.some((audience) => served.includes(audience))) return false;
  // A deleted or disabled client's tokens are not active for its APIs either (and the provider
  // reads the token's client to answer).
  return !!token.clientId && !!(await ctx.oidc.provider.Client.find(token.clientId));
}

/** RFC 7009 §2.1: a client revokes only the tokens issued to it. */
export async function revocationAllowed(_ctx: unknown, client: Client, token: Token): Promise<boolean> {
  const { errors } = await import('oidc-provider');
  if (token.clientId !== client.clientId) {
    // A public client's id proves nothing, so it is told nothing either way.
    if (client.clientAuthMethod === 'none') return false;
    throw new errors.InvalidRequest(
      'this token was not issued to the authenticated client; a client revokes only its own tokens',
    );
  }
  if (token[STRUCTURED] && token.kind === 'ClientCredentials') {
    throw new errors.UnsupportedTokenType(
      'a client-credentials JWT access token has no grant to revoke; it stays valid until its exp, so keep access token lifetimes short or disable the client',
    );
  }
  return true;
}

/**
 * Revoking an opaque access token removes the grant's tokens but keeps the grant (the provider's
 * default). A JWT cannot be removed, so revoking one revokes its grant: that is what makes it,
 * and every token of the grant, inactive.
 */
export function revokeGrantPolicy(ctx: KoaContextWithOIDC): boolean {
  const accessToken = ctx.oidc.entities.AccessToken as Token | undefined;
  return !(ctx.oidc.route === 'revocation' && accessToken && !accessToken[STRUCTURED]);
}

/** formats.customizers.jwt: a user's JWT access token names its grant. */
export function tieJwtToGrant(
  _ctx: unknown,
  token: { kind: string; grantId?: string },
  parts: { payload: Record<string, unknown> },
): void {
  if (token.kind === 'AccessToken' && token.grantId) parts.payload[GRANT_CLAIM] = token.grantId;
}

function looksLikeJwt(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  try {
    return !!decodeProtectedHeader(value);
  } catch {
    return false;
  }
}

/** Claims the provider's introspection response sets itself; every other claim is `extra`. */
const REGISTERED = new Set([
  'jti',
  'sub',
  'iat',
  'exp',
  'nbf',
  'iss',
  'aud',
  'scope',
  'client_id',
  'cnf',
  'authorization_details',
  GRANT_CLAIM,
]);

function tokenFields(payload: JWTPayload) {
  const extra = Object.fromEntries(Object.entries(payload).filter(([claim]) => !REGISTERED.has(claim)));
  const cnf = (payload.cnf ?? {}) as { jkt?: unknown; 'x5t#S256'?: unknown };
  return {
    jti: payload.jti,
    clientId: payload.client_id,
    iat: payload.iat,
    exp: payload.exp,
    scope: payload.scope,
    aud: payload.aud,
    ...(Object.keys(extra).length > 0 ? { extra } : {}),
    ...(typeof cnf.jkt === 'string' ? { jkt: cnf.jkt } : {}),
    ...(typeof cnf['x5t#S256'] === 'string' ? { 'x5t#S256': cnf['x5t#S256'] } : {}),
  };
}

export interface StructuredTokenDeps {
  /** The tenant's signing keys as the provider holds them (private JWKs; only public parts are used). */
  signingKeys: JWK[];
  clock: Clock;
  InvalidClient: typeof errors.InvalidClient;
}

const PUBLIC_MEMBERS = ['kty', 'crv', 'x', 'y', 'n', 'e', 'kid', 'alg', 'use'] as const;

/**
 * Lets the provider's introspection and revocation endpoints take JWT access tokens, and refuses
 * public clients at introspection whatever token they present.
 *
 * The provider refuses a JWT at both endpoints before looking it up. Once the caller's client is
 * known, a JWT parameter is wrapped in a prefix no client can know, which the provider does not
 * take for a JWT; only the token lookups of these two endpoints ever see it, and they read the
 * token back from its signature, issuer, type and expiry. A user's token comes back as an
 * access token of the grant its claim names (without that claim it is not found), a machine
 * client's as its client credentials token.
 */
export function acceptStructuredTokens(provider: Provider, deps: StructuredTokenDeps): void {
  const keys = createLocalJWKSet({
    keys: deps.signingKeys.map((key) =>
      Object.fromEntries(PUBLIC_MEMBERS.filter((m) => key[m] !== undefined).map((m) => [m, key[m]])),
    ),
  });
  const prefix = `orthid-structured~${randomUUID()}~`;
  const read = async (value: string): Promise<JWTPayload | undefined> => {
    try {
      const { payload } = await jwtVerify(value.slice(prefix.length), keys, {
        issuer: provider.issuer,
        typ: 'at+jwt',
        currentDate: deps.clock.now(),
      });
      return typeof payload.client_id === 'string' && typeof payload.jti === 'string' ? payload : undefined;
    } catch {
      return undefined;
    }
  };
  const structured = <T extends object>(token: T): T => Object.assign(token, { [STRUCTURED]: true });

  const { AccessToken, ClientCredentials, RefreshToken } = provider;
  const replaceFind = (model: object, find: (value: string, stored: Find) => Promise<unknown>) => {
    const target = model as { find: Find };
    const stored = target.find.bind(model) as Find;
    target.find = (value, options) =>
      typeof value === 'string' && value.startsWith(prefix) ? find(value, stored) : stored(value, options);
  };
  replaceFind(AccessToken, async (value) => {
    const payload = await read(value);
    const grantId = payload?.[GRANT_CLAIM];
    if (!payload || typeof grantId !== 'string' || typeof payload.sub !== 'string') return undefined;
    return structured(new AccessToken({ ...tokenFields(payload), accountId: payload.sub, grantId } as never));
  });
  replaceFind(ClientCredentials, async (value) => {
    const payload = await read(value);
    if (!payload || payload[GRANT_CLAIM] !== undefined || payload.sub !== payload.client_id) return undefined;
    return structured(new ClientCredentials(tokenFields(payload) as never));
  });
  // A JWT is never a refresh token: not looked up at all.
  replaceFind(RefreshToken, async () => undefined);

  // Client authentication assigns the client, then the endpoint checks the token: the one point
  // where both the route and the client are known and the token is not looked at yet.
  const { entity } = provider.OIDCContext.prototype;
  provider.OIDCContext.prototype.entity = function (this: KoaContextWithOIDC['oidc'], key, value) {
    entity.call(this, key, value);
    if (key !== 'Client' || (this.route !== 'introspection' && this.route !== 'revocation')) return;
    if (this.route === 'introspection' && (value as Client).clientAuthMethod === 'none') {
      throw new deps.InvalidClient(
        'public clients (token_endpoint_auth_method none) cannot introspect tokens; introspect from a confidential client registered with --introspect <API indicator>, or verify the JWT with the JWKS',
      );
    }
    const params = this.params as { token?: unknown } | undefined;
    if (params && looksLikeJwt(params.token)) params.token = prefix + params.token;
  };
}
