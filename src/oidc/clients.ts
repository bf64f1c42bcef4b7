// OIDC clients of a tenant: registration with validated metadata, a high-entropy secret shown
// once and stored as a keyed HMAC, and the metadata the provider loads on each request.
import { createHash, timingSafeEqual } from 'node:crypto';
import { appendAudit } from '../audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import { OrthIdError } from '../core/errors.js';
import { randomToken } from '../core/ids.js';
import type { Queryable } from '../core/sql.js';
import { SIGNING_ALGS, type SigningAlg } from '../crypto/signing-keys.js';
import type { TenantKeyring, TenantKeys } from '../crypto/tenant-keys.js';
import { decodeCursor, encodeCursor, type Page, type PageRequest, pageOf } from '../tenancy/page.js';
import { type ClientRow, type ClientSort, createClientsQueries } from './clients.queries.js';

export { CLIENT_SORTS, type ClientSort } from './clients.queries.js';

import { checkRegisteredUri } from './redirect-uris.js';
import { announceTenantChange } from './tenant-changes.js';

/** RFC 8628's grant type: a device without a browser polls while the user approves elsewhere. */
export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
export const GRANT_TYPES = [
  'authorization_code',
  'refresh_token',
  'client_credentials',
  DEVICE_CODE_GRANT,
] as const;
export type GrantType = (typeof GRANT_TYPES)[number];

/**
 * Response types a client may register: the code flow, and for a relying party that signs in
 * with an ID token alone (express-openid-connect's default, with form_post) `id_token` or the
 * hybrid `code id_token`. Neither hands out an access token in the front channel.
 */
export const RESPONSE_TYPES = ['code', 'id_token', 'code id_token'] as const;
export type ResponseType = (typeof RESPONSE_TYPES)[number];

/** How a confidential client authenticates at the token endpoint (a public one: `none`). */
export const SECRET_AUTH_METHODS = ['client_secret_basic', 'client_secret_post'] as const;
export type SecretAuthMethod = (typeof SECRET_AUTH_METHODS)[number];

/** The ID token algorithm of a client that does not choose: the one every OpenID provider supports. */
export const DEFAULT_ID_TOKEN_ALG: SigningAlg = 'RS256';

export interface NewClient {
  name: string;
  grantTypes: GrantType[];
  redirectUris?: string[];
  postLogoutRedirectUris?: string[];
  /** Scopes the client may request, e.g. "openid profile email offline_access". */
  scope?: string;
  /** Resource indicators (API audiences) the client may request tokens for. */
  resources?: string[];
  /** A public client (SPA, native app) has no secret and must use PKCE. */
  public?: boolean;
  /** Default `code`; `id_token` and `code id_token` also need authorization_code. */
  responseTypes?: ResponseType[];
  /** Default RS256. */
  idTokenSignedResponseAlg?: SigningAlg;
  /** A confidential client's; default client_secret_basic. */
  tokenEndpointAuthMethod?: SecretAuthMethod;
  /** The tenant's own application: its users are not asked to consent to it. */
  firstParty?: boolean;
  /**
   * Every ID token says when the user signed in (`auth_time`): OrthID's account pages ask for a
   * recent sign-in before a change to how one signs in.
   */
  requireAuthTime?: boolean;
  /**
   * API resource indicators this client serves: it may introspect tokens whose audience is one
   * of them (RFC 7662 §4), besides its own. Confidential clients only.
   */
  introspects?: string[];
  // Flows a client opts in to by its metadata (the provider serves each for every tenant).
  /** RFC 9126: authorization requests are accepted only through the pushed authorization endpoint. */
  requirePushedAuthorizationRequests?: boolean;
  /** RFC 9449: access tokens are issued only bound to a DPoP key the client proves it holds. */
  dpopBoundAccessTokens?: boolean;
  /** Where the provider posts a logout token when a user's session ends (OpenID back-channel logout). */
  backchannelLogoutUri?: string;
  /** RFC 9101: the public keys that sign the client's request objects, and their algorithm. */
  requestObjectJwks?: Record<string, unknown>[];
  requestObjectSigningAlg?: RequestObjectAlg;
}

/** Asymmetric only: client secrets are stored as a keyed hash, so no HMAC key exists to check one. */
export const REQUEST_OBJECT_ALGS = ['RS256', 'PS256', 'ES256', 'EdDSA', 'Ed25519'] as const;
export type RequestObjectAlg = (typeof REQUEST_OBJECT_ALGS)[number];

export interface RegisteredClient {
  clientId: string;
  name: string;
  grantTypes: GrantType[];
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  scope: string;
  resources: string[];
  public: boolean;
  responseTypes: ResponseType[];
  idTokenSignedResponseAlg: SigningAlg;
  tokenEndpointAuthMethod: SecretAuthMethod | 'none';
  firstParty: boolean;
  /** API resource indicators whose tokens the client may introspect. */
  introspects: string[];
  requirePushedAuthorizationRequests: boolean;
  dpopBoundAccessTokens: boolean;
  backchannelLogoutUri?: string;
  requestObjectSigningAlg?: string;
  /** Until when the secret replaced by the last rotation is still accepted (a grace period). */
  previousSecretExpiresAt?: string;
  disabled: boolean;
  createdAt: string;
}

/** What an edit of a client may change; the rest of its registration stays as it is. */
export interface ClientPatch {
  name?: string;
  grantTypes?: GrantType[];
  redirectUris?: string[];
  postLogoutRedirectUris?: string[];
}

/**
 * Client metadata key holding the keyed hash of the secret a rotation replaced and when it stops
 * being accepted: clients deployed with the old secret keep working while they are updated.
 */
export const PREVIOUS_SECRET_METADATA = 'orthid_previous_secret';
/** The longest an old secret may stay valid after a rotation: a week. */
export const MAX_SECRET_GRACE_SECONDS = 7 * 24 * 3600;

interface PreviousSecret {
  hash: string;
  expiresAt: string;
}

function previousSecretOf(metadata: Record<string, unknown>): PreviousSecret | undefined {
  const value = metadata[PREVIOUS_SECRET_METADATA] as Partial<PreviousSecret> | undefined;
  return typeof value?.hash === 'string' && typeof value.expiresAt === 'string'
    ? (value as PreviousSecret)
    : undefined;
}

function sameHash(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/**
 * Whether a presented secret (as its keyed hash) is the client's: its current secret, or the one
 * its last rotation replaced while that rotation's grace period lasts.
 */
export function clientSecretAccepted(
  current: string,
  metadata: Record<string, unknown>,
  presentedHash: string,
  now: Date,
): boolean {
  if (sameHash(current, presentedHash)) return true;
  const previous = previousSecretOf(metadata);
  return (
    previous !== undefined && now < new Date(previous.expiresAt) && sameHash(previous.hash, presentedHash)
  );
}

/** Client metadata key holding the resource indicators a client may ask for. */
export const RESOURCES_METADATA = 'orthid_resources';
/** Client metadata key marking the tenant's own application (no consent page). */
export const FIRST_PARTY_METADATA = 'orthid_first_party';

/** Client metadata key holding the resource indicators whose tokens a client may introspect. */
export const INTROSPECTS_METADATA = 'orthid_introspects';

/**
 * The OpenID scopes the provider serves, and so the only values a client's `scope` may hold: the
 * provider refuses every token request of a client registered with any other value.
 */
export const OIDC_SCOPES = ['openid', 'offline_access', 'profile', 'email', 'phone'] as const;

const DEFAULT_SCOPE = 'openid profile email phone offline_access';

export function hashClientSecret(keyring: TenantKeyring, secret: string): string {
  return keyring.index('oidc.client_secret', secret);
}

function invalid(message: string, field: string): OrthIdError {
  return new OrthIdError('request.invalid', message, { details: { field } });
}

/**
 * A client's scope, checked at registration. API permissions (e.g. orthid:admin) are not
 * client scopes: a client gets them through a resource it may ask for and a role it holds.
 */
function checkScope(scope: string | undefined): string {
  if (scope === undefined) return DEFAULT_SCOPE;
  const values = scope.split(' ').filter((v) => v !== '');
  if (values.length === 0) throw invalid('scope must name at least one scope, e.g. "openid".', 'scope');
  const foreign = values.filter((v) => !(OIDC_SCOPES as readonly string[]).includes(v));
  if (foreign.length > 0) {
    throw invalid(
      `scope may hold only ${OIDC_SCOPES.join(', ')}; ${foreign.map((v) => JSON.stringify(v)).join(', ')} ${foreign.length === 1 ? 'is not one' : 'are not'}. An API permission such as orthid:admin is granted through --resource <API indicator> and a client role holding the permission, then requested at the token endpoint with scope and resource.`,
      'scope',
    );
  }
  return [...new Set(values)].join(' ');
}

function metadataFor(clientId: string, input: NewClient, secretHash: string | null): Record<string, unknown> {
  const scope = checkScope(input.scope);
  const grants = [...new Set(input.grantTypes)];
  if (grants.length === 0) throw invalid('A client needs at least one grant type.', 'grantTypes');
  for (const g of grants) {
    if (!GRANT_TYPES.includes(g))
      throw invalid(`Unknown grant type "${g}"; use ${GRANT_TYPES.join(', ')}.`, 'grantTypes');
  }
  const code = grants.includes('authorization_code');
  if (grants.includes('refresh_token') && !code && !grants.includes(DEVICE_CODE_GRANT)) {
    throw invalid(`refresh_token needs authorization_code (or ${DEVICE_CODE_GRANT}) as well.`, 'grantTypes');
  }
  if (input.public && grants.includes('client_credentials')) {
    throw invalid('A public client cannot use client_credentials: it has no secret.', 'grantTypes');
  }
  const redirectUris = (input.redirectUris ?? []).map((u) => checkRegisteredUri(u, 'redirectUris'));
  const introspects = (input.introspects ?? []).map((u) => checkRegisteredUri(u, 'introspects'));
  if (input.public && introspects.length > 0) {
    throw invalid(
      'A public client cannot introspect tokens: it has no secret to authenticate with.',
      'introspects',
    );
  }
  if (code && redirectUris.length === 0)
    throw invalid('authorization_code needs at least one redirect URI.', 'redirectUris');
  const responseTypes = checkResponseTypes(input, code);
  if (responseTypes.some((t) => t !== 'code')) {
    checkFrontChannelUris(redirectUris, 'redirectUris');
    checkFrontChannelUris(input.postLogoutRedirectUris ?? [], 'postLogoutRedirectUris');
  }
  const alg = input.idTokenSignedResponseAlg ?? DEFAULT_ID_TOKEN_ALG;
  if (!SIGNING_ALGS.includes(alg)) {
    throw invalid(
      `idTokenSignedResponseAlg must be one of ${SIGNING_ALGS.join(', ')}.`,
      'idTokenSignedResponseAlg',
    );
  }
  const authMethod = input.tokenEndpointAuthMethod ?? 'client_secret_basic';
  if (!SECRET_AUTH_METHODS.includes(authMethod)) {
    throw invalid(
      `tokenEndpointAuthMethod must be one of ${SECRET_AUTH_METHODS.join(', ')}.`,
      'tokenEndpointAuthMethod',
    );
  }
  if (input.public && input.tokenEndpointAuthMethod) {
    throw invalid('A public client has no secret to authenticate with.', 'tokenEndpointAuthMethod');
  }
  return {
    client_id: clientId,
    client_name: input.name,
    ...(secretHash ? { client_secret: secretHash } : {}),
    // The provider requires `implicit` of a client whose response type returns an ID token.
    grant_types: responseTypes.some((t) => t !== 'code') ? [...grants, 'implicit'] : grants,
    response_types: responseTypes,
    redirect_uris: redirectUris,
    post_logout_redirect_uris: (input.postLogoutRedirectUris ?? []).map((u) =>
      checkRegisteredUri(u, 'postLogoutRedirectUris'),
    ),
    token_endpoint_auth_method: input.public ? 'none' : authMethod,
    id_token_signed_response_alg: alg,
    scope,
    [RESOURCES_METADATA]: (input.resources ?? []).map((u) => checkRegisteredUri(u, 'resources')),
    ...(input.firstParty ? { [FIRST_PARTY_METADATA]: true } : {}),
    ...(input.requireAuthTime ? { require_auth_time: true } : {}),
    ...(introspects.length > 0 ? { [INTROSPECTS_METADATA]: introspects } : {}),
    ...flowMetadata(input, grants),
  };
}

/**
 * An ID token sent through the browser goes only to an https URL on a real host: the provider
 * refuses http and localhost for such clients, so registering one could never sign anyone in.
 */
function checkFrontChannelUris(uris: string[], field: string): void {
  for (const uri of uris) {
    const url = new URL(uri);
    if (url.protocol !== 'https:' || url.hostname === 'localhost') {
      throw invalid(
        `"${uri}" must be an https URL on a host other than localhost: an ID token is sent there through the browser (--response-type id_token or "code id_token").`,
        field,
      );
    }
  }
}

function checkResponseTypes(input: NewClient, code: boolean): ResponseType[] {
  const types = [...new Set<string>(input.responseTypes ?? (code ? ['code'] : []))];
  for (const t of types) {
    if (!(RESPONSE_TYPES as readonly string[]).includes(t)) {
      throw invalid(
        `Unknown response type "${t}"; use ${RESPONSE_TYPES.map((r) => `"${r}"`).join(', ')}.`,
        'responseTypes',
      );
    }
  }
  if (types.length > 0 && !code) {
    throw invalid('A response type needs the authorization_code grant.', 'responseTypes');
  }
  if (code && types.length === 0) throw invalid('authorization_code needs a response type.', 'responseTypes');
  if (input.public && types.some((t) => t !== 'code')) {
    throw invalid('A public client signs in with the code flow and PKCE only.', 'responseTypes');
  }
  return types as ResponseType[];
}

const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/** The opt-in flows' metadata, each option checked here so that the provider never refuses a stored client. */
function flowMetadata(input: NewClient, grants: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const code = grants.includes('authorization_code');
  const flag = (value: unknown, field: string): boolean => {
    if (value === undefined) return false;
    if (typeof value !== 'boolean') throw invalid(`${field} must be true or false.`, field);
    return value;
  };
  if (flag(input.requirePushedAuthorizationRequests, 'requirePushedAuthorizationRequests')) {
    if (!code) {
      throw invalid(
        'requirePushedAuthorizationRequests applies to authorization requests; it needs authorization_code.',
        'requirePushedAuthorizationRequests',
      );
    }
    out.require_pushed_authorization_requests = true;
  }
  if (flag(input.dpopBoundAccessTokens, 'dpopBoundAccessTokens')) out.dpop_bound_access_tokens = true;
  if (input.backchannelLogoutUri !== undefined) {
    if (typeof input.backchannelLogoutUri !== 'string') {
      throw invalid('backchannelLogoutUri must be a URI.', 'backchannelLogoutUri');
    }
    if (!code && !grants.includes(DEVICE_CODE_GRANT)) {
      throw invalid(
        'backchannelLogoutUri needs a grant that signs a user in (authorization_code or device_code).',
        'backchannelLogoutUri',
      );
    }
    const uri = checkRegisteredUri(input.backchannelLogoutUri, 'backchannelLogoutUri');
    if (!/^https?:$/.test(new URL(uri).protocol)) {
      throw invalid(`"${uri}" must be an https URL the provider can post to.`, 'backchannelLogoutUri');
    }
    out.backchannel_logout_uri = uri;
    // The logout token names the session, so a relying party can end exactly that one.
    out.backchannel_logout_session_required = true;
  }
  const jwks = input.requestObjectJwks;
  const alg = input.requestObjectSigningAlg;
  if (jwks !== undefined || alg !== undefined) {
    if (!code) {
      throw invalid(
        'Request objects are authorization requests; they need authorization_code.',
        'requestObjectJwks',
      );
    }
    if (!alg || !(REQUEST_OBJECT_ALGS as readonly string[]).includes(alg)) {
      throw invalid(
        `requestObjectSigningAlg must be one of ${REQUEST_OBJECT_ALGS.join(', ')} (asymmetric: the client signs with its private key).`,
        'requestObjectSigningAlg',
      );
    }
    if (!Array.isArray(jwks) || jwks.length === 0 || jwks.length > 10) {
      throw invalid('requestObjectJwks must hold 1 to 10 public JWKs.', 'requestObjectJwks');
    }
    for (const jwk of jwks) {
      if (typeof jwk !== 'object' || jwk === null || !['RSA', 'EC', 'OKP'].includes(String(jwk.kty))) {
        throw invalid('Each request object key must be an RSA, EC or OKP public JWK.', 'requestObjectJwks');
      }
      if (PRIVATE_JWK_MEMBERS.some((m) => m in jwk)) {
        throw invalid(
          'requestObjectJwks must hold public keys only; the private key stays with the client.',
          'requestObjectJwks',
        );
      }
    }
    out.jwks = { keys: jwks };
    out.request_object_signing_alg = alg;
    // A client with request object keys sends only signed requests (RFC 9101 §10.5): a plain
    // authorization request naming it is refused, so its parameters cannot be altered on the way.
    out.require_signed_request_object = true;
  }
  return out;
}

function present(row: ClientRow): RegisteredClient {
  const m = row.metadata as Record<string, never>;
  return {
    clientId: row.client_id,
    name: row.name,
    // A row written without metadata (by hand, or an old test fixture) is shown with none.
    grantTypes: ((m.grant_types as string[] | undefined) ?? []).filter(
      (g) => g !== 'implicit',
    ) as GrantType[],
    redirectUris: m.redirect_uris ?? [],
    postLogoutRedirectUris: m.post_logout_redirect_uris ?? [],
    scope: m.scope ?? '',
    resources: m[RESOURCES_METADATA] ?? [],
    public: m.token_endpoint_auth_method === 'none',
    responseTypes: m.response_types ?? [],
    // Clients registered before the choice existed sign their ID tokens as the provider does by default.
    idTokenSignedResponseAlg: m.id_token_signed_response_alg ?? DEFAULT_ID_TOKEN_ALG,
    tokenEndpointAuthMethod: m.token_endpoint_auth_method ?? 'client_secret_basic',
    firstParty: m[FIRST_PARTY_METADATA] === true,
    introspects: m[INTROSPECTS_METADATA] ?? [],
    requirePushedAuthorizationRequests: m.require_pushed_authorization_requests === true,
    dpopBoundAccessTokens: m.dpop_bound_access_tokens === true,
    ...(m.backchannel_logout_uri ? { backchannelLogoutUri: m.backchannel_logout_uri } : {}),
    ...(m.request_object_signing_alg ? { requestObjectSigningAlg: m.request_object_signing_alg } : {}),
    ...(previousSecretOf(row.metadata)
      ? { previousSecretExpiresAt: previousSecretOf(row.metadata)!.expiresAt }
      : {}),
    disabled: row.disabled,
    createdAt: new Date(row.created_at).toISOString(),
  };
}

/** JSON with object keys sorted: jsonb keeps its own key order, so stored and built metadata compare by content. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * The registration a stored client was made from, so an edit is checked by the same rules as a
 * new client (metadataFor) and keeps every field it does not change.
 */
function inputOf(row: ClientRow): NewClient {
  const c = present(row);
  const m = row.metadata;
  const jwks = (m.jwks as { keys?: Record<string, unknown>[] } | undefined)?.keys;
  return {
    name: c.name,
    grantTypes: c.grantTypes,
    redirectUris: c.redirectUris,
    postLogoutRedirectUris: c.postLogoutRedirectUris,
    scope: c.scope,
    resources: c.resources,
    public: c.public,
    responseTypes: c.responseTypes,
    idTokenSignedResponseAlg: c.idTokenSignedResponseAlg,
    ...(c.public ? {} : { tokenEndpointAuthMethod: c.tokenEndpointAuthMethod as SecretAuthMethod }),
    firstParty: c.firstParty,
    ...(m.require_auth_time === true ? { requireAuthTime: true } : {}),
    introspects: c.introspects,
    requirePushedAuthorizationRequests: c.requirePushedAuthorizationRequests,
    dpopBoundAccessTokens: c.dpopBoundAccessTokens,
    ...(c.backchannelLogoutUri ? { backchannelLogoutUri: c.backchannelLogoutUri } : {}),
    ...(jwks ? { requestObjectJwks: jwks } : {}),
    ...(c.requestObjectSigningAlg
      ? { requestObjectSigningAlg: c.requestObjectSigningAlg as RequestObjectAlg }
      : {}),
  };
}

/** The registration with `patch` applied; response types follow a change of the code grant. */
function patched(before: NewClient, patch: ClientPatch): NewClient {
  const next: NewClient = { ...before };
  if (patch.name !== undefined) next.name = patch.name.trim();
  if (patch.redirectUris !== undefined) next.redirectUris = patch.redirectUris;
  if (patch.postLogoutRedirectUris !== undefined) next.postLogoutRedirectUris = patch.postLogoutRedirectUris;
  if (patch.grantTypes !== undefined) {
    next.grantTypes = patch.grantTypes;
    // Without the code grant a client has no response type; gaining it, it gets the default.
    const code = patch.grantTypes.includes('authorization_code');
    next.responseTypes = code && (before.responseTypes ?? []).length > 0 ? before.responseTypes : undefined;
  }
  return next;
}

/** Which fields an edit changed (names only: values may be URIs an operator considers private). */
function changedFields(before: NewClient, after: NewClient): string[] {
  const fields = ['name', 'grantTypes', 'redirectUris', 'postLogoutRedirectUris'] as const;
  return fields.filter((f) => canonical(before[f] ?? []) !== canonical(after[f] ?? []));
}

/**
 * The clients OrthID runs itself (the account pages, the admin console). `ensureBuiltIn` alone
 * writes them, at every start, so an edit, a rotation or a deletion through the API would be
 * undone by the next start or break the pages at once: all three are refused. Disabling one
 * stays the operator's choice.
 */
export const BUILT_IN_CLIENT_IDS = { account: 'orthid-account', console: 'orthid-console' } as const;

const BUILT_IN = new Set<string>(Object.values(BUILT_IN_CLIENT_IDS));

function refuseBuiltIn(clientId: string, what: string): void {
  if (BUILT_IN.has(clientId)) {
    throw new OrthIdError(
      'client.built_in',
      `Client ${clientId} is OrthID's own and cannot be ${what}: OrthID keeps its registration itself.`,
      { details: { field: 'clientId' } },
    );
  }
}

function clientNotFound(clientId: string): OrthIdError {
  return new OrthIdError('client.not_found', `No client ${clientId} in this tenant.`);
}

/** The sort key of a row in `sort` order, as its cursor carries it. */
function sortKey(sort: ClientSort, row: { client_id: string; created_key: string }): string[] {
  return sort.endsWith('created') ? [row.created_key, row.client_id] : [row.client_id];
}

const CREATED_KEY = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

export interface ClientsDeps {
  tenantKeys: TenantKeys;
  clock: Clock;
}

export function createClients(deps: ClientsDeps) {
  return {
    /** Registers a client; the secret is returned once and never stored in plaintext. */
    async create(
      tx: Queryable,
      tenantId: string,
      input: NewClient,
      actor: string,
    ): Promise<RegisteredClient & { clientSecret?: string }> {
      if (!input.name?.trim()) throw invalid('A client needs a name.', 'name');
      const keyring = await deps.tenantKeys.forTenant(tx, tenantId);
      const clientId = randomToken(16);
      const secret = input.public ? undefined : randomToken(32);
      const metadata = metadataFor(clientId, input, secret ? hashClientSecret(keyring, secret) : null);
      await createClientsQueries(tx).insert(tenantId, {
        client_id: clientId,
        name: input.name.trim(),
        secret_hash: (metadata.client_secret as string | undefined) ?? null,
        metadata,
      });
      await appendAudit(
        tx,
        keyring,
        { actor, action: 'client.created', target: `client:${clientId}`, outcome: 'success' },
        deps.clock,
      );
      await announceTenantChange(tx, tenantId);
      const row = (await createClientsQueries(tx).byId(clientId))!;
      return { ...present(row), ...(secret ? { clientSecret: secret } : {}) };
    },

    /**
     * Registers (or brings up to date) a client OrthID itself runs under a fixed id: the account
     * pages (confidential, with a secret the caller derives rather than stores) or the admin console
     * (public: no secret). Unchanged metadata writes and audits nothing; a disabled client stays
     * disabled, which is the operator's choice.
     */
    async ensureBuiltIn(
      tx: Queryable,
      tenantId: string,
      builtIn: { clientId: (typeof BUILT_IN_CLIENT_IDS)[keyof typeof BUILT_IN_CLIENT_IDS]; secret?: string },
      input: NewClient,
      actor: string,
    ): Promise<'created' | 'updated' | 'unchanged'> {
      const keyring = await deps.tenantKeys.forTenant(tx, tenantId);
      const secretHash = builtIn.secret === undefined ? null : hashClientSecret(keyring, builtIn.secret);
      const metadata = metadataFor(builtIn.clientId, { ...input, public: secretHash === null }, secretHash);
      const queries = createClientsQueries(tx);
      const row = await queries.byId(builtIn.clientId);
      if (row && canonical(row.metadata) === canonical(metadata) && row.name === input.name) {
        return 'unchanged';
      }
      const fields = { client_id: builtIn.clientId, name: input.name, secret_hash: secretHash, metadata };
      if (row) await queries.replace(fields);
      else await queries.insert(tenantId, fields);
      await appendAudit(
        tx,
        keyring,
        {
          actor,
          action: row ? 'client.updated' : 'client.created',
          target: `client:${builtIn.clientId}`,
          outcome: 'success',
        },
        deps.clock,
      );
      await announceTenantChange(tx, tenantId);
      return row ? 'updated' : 'created';
    },

    /**
     * A page of clients in `sort` order (client_id by default, whose cursor stays the plain
     * client id); another order's cursor names the order and the last row's key.
     */
    async list(tx: Queryable, page: PageRequest & { sort?: ClientSort }): Promise<Page<RegisteredClient>> {
      const sort = page.sort ?? 'client_id';
      let after: string[] | undefined;
      if (page.after !== undefined) {
        const byCreation = sort.endsWith('created');
        after =
          sort === 'client_id'
            ? [page.after]
            : decodeCursor(
                page.after,
                sort,
                byCreation ? 2 : 1,
                ([key]) => !byCreation || CREATED_KEY.test(key!),
              );
      }
      const rows = await createClientsQueries(tx).page(sort, after, page.limit + 1);
      return pageOf(
        rows,
        page.limit,
        (r) => (sort === 'client_id' ? r.client_id : encodeCursor(sort, sortKey(sort, r))),
        present,
      );
    },

    /**
     * The client's version: a strong entity tag over its registration (name, metadata, disabled),
     * not its secrets, so a rotation does not void an edit in progress. With `lock`, the row stays
     * locked to the end of the transaction and a change checked against it cannot interleave.
     */
    async version(tx: Queryable, clientId: string, options: { lock?: boolean } = {}): Promise<string> {
      const queries = createClientsQueries(tx);
      const row = options.lock ? await queries.lockById(clientId) : await queries.byId(clientId);
      if (!row) throw clientNotFound(clientId);
      const { client_secret: _secret, [PREVIOUS_SECRET_METADATA]: _previous, ...registration } = row.metadata;
      const digest = createHash('sha256')
        .update(canonical([row.client_id, row.name, row.disabled, registration]))
        .digest('base64url');
      return `"${digest.slice(0, 27)}"`;
    },

    /**
     * Changes a client's name, grant types or (post-logout) redirect URIs, checked as at
     * registration; the running providers reload it. Unchanged input writes and audits nothing.
     */
    async update(
      tx: Queryable,
      tenantId: string,
      clientId: string,
      patch: ClientPatch,
      actor: string,
    ): Promise<RegisteredClient> {
      refuseBuiltIn(clientId, 'edited');
      const queries = createClientsQueries(tx);
      const row = await queries.lockById(clientId);
      if (!row) throw clientNotFound(clientId);
      if (patch.name !== undefined && !patch.name.trim()) throw invalid('A client needs a name.', 'name');
      const before = inputOf(row);
      const after = patched(before, patch);
      const changed = changedFields(before, after);
      if (changed.length === 0) return present(row);
      const metadata = metadataFor(clientId, after, row.secret_hash);
      const previous = previousSecretOf(row.metadata);
      if (previous) metadata[PREVIOUS_SECRET_METADATA] = previous;
      await queries.replace({
        client_id: clientId,
        name: after.name,
        secret_hash: row.secret_hash,
        metadata,
      });
      const keyring = await deps.tenantKeys.forTenant(tx, tenantId);
      await appendAudit(
        tx,
        keyring,
        {
          actor,
          action: 'client.updated',
          target: `client:${clientId}`,
          outcome: 'success',
          details: { fields: changed },
        },
        deps.clock,
      );
      await announceTenantChange(tx, tenantId);
      return present((await queries.byId(clientId))!);
    },

    /**
     * Gives a confidential client a new secret, returned once and stored as a keyed hash. The
     * old one stops working at once, or after `gracePeriodSeconds` (at most a week) so that the
     * client's deployments can be updated first; a second rotation ends any earlier grace.
     */
    async rotateSecret(
      tx: Queryable,
      tenantId: string,
      clientId: string,
      options: { gracePeriodSeconds?: number },
      actor: string,
    ): Promise<RegisteredClient & { clientSecret: string }> {
      const grace = options.gracePeriodSeconds ?? 0;
      if (!Number.isInteger(grace) || grace < 0 || grace > MAX_SECRET_GRACE_SECONDS) {
        throw invalid(
          `gracePeriodSeconds must be a whole number from 0 to ${MAX_SECRET_GRACE_SECONDS} (a week).`,
          'gracePeriodSeconds',
        );
      }
      refuseBuiltIn(clientId, 'given a new secret');
      const queries = createClientsQueries(tx);
      const row = await queries.lockById(clientId);
      if (!row) throw clientNotFound(clientId);
      if (row.secret_hash === null) {
        throw new OrthIdError(
          'client.public_no_secret',
          `Client ${clientId} is public: it has no secret to rotate (it proves itself with PKCE).`,
          { details: { field: 'clientId' } },
        );
      }
      const keyring = await deps.tenantKeys.forTenant(tx, tenantId);
      const secret = randomToken(32);
      const hash = hashClientSecret(keyring, secret);
      const { [PREVIOUS_SECRET_METADATA]: _ended, ...kept } = row.metadata;
      const metadata: Record<string, unknown> = { ...kept, client_secret: hash };
      if (grace > 0) {
        const expiresAt = new Date(deps.clock.now().getTime() + grace * 1000).toISOString();
        metadata[PREVIOUS_SECRET_METADATA] = { hash: row.secret_hash, expiresAt } satisfies PreviousSecret;
      }
      await queries.replace({ client_id: clientId, name: row.name, secret_hash: hash, metadata });
      await appendAudit(
        tx,
        keyring,
        {
          actor,
          action: 'client.secret_rotated',
          target: `client:${clientId}`,
          outcome: 'success',
          details: { gracePeriodSeconds: grace },
        },
        deps.clock,
      );
      await announceTenantChange(tx, tenantId);
      return { ...present((await queries.byId(clientId))!), clientSecret: secret };
    },

    async get(tx: Queryable, clientId: string): Promise<RegisteredClient> {
      const row = await createClientsQueries(tx).byId(clientId);
      if (!row) throw clientNotFound(clientId);
      return present(row);
    },

    async delete(tx: Queryable, tenantId: string, clientId: string, actor: string): Promise<void> {
      refuseBuiltIn(clientId, 'deleted');
      if ((await createClientsQueries(tx).delete(clientId)) === 0) {
        throw new OrthIdError('client.not_found', `No client ${clientId} in this tenant.`);
      }
      const keyring = await deps.tenantKeys.forTenant(tx, tenantId);
      await appendAudit(
        tx,
        keyring,
        { actor, action: 'client.deleted', target: `client:${clientId}`, outcome: 'success' },
        deps.clock,
      );
      await announceTenantChange(tx, tenantId);
    },

    /** The provider's view of a client: its metadata, or undefined when unknown or disabled. */
    async metadata(tx: Queryable, clientId: string): Promise<Record<string, unknown> | undefined> {
      const row = await createClientsQueries(tx).byId(clientId);
      return row && !row.disabled ? row.metadata : undefined;
    },
  };
}

export type Clients = ReturnType<typeof createClients>;
