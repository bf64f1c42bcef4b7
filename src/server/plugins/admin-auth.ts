// Bearer authentication of the admin API: access tokens (RFC 9068 JWTs) from a tenant's token
// endpoint, verified locally against that tenant's signing keys; authority is the token's scope.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createLocalJWKSet, decodeJwt, errors, type JWTPayload, jwtVerify } from 'jose';
import type { Clock } from '../../core/clock.js';
import { isOrthIdError, OrthIdError } from '../../core/errors.js';
import type { Queryable } from '../../core/sql.js';
import { SIGNING_ALGS, usableSigningKeys } from '../../crypto/signing-keys.js';
import type { TenantKeys } from '../../crypto/tenant-keys.js';
import { type Database, withTenant, withTenantStatements } from '../../storage/db/database.js';
import {
  ADMIN_PERMISSION,
  adminResourceIndicator,
  SYSTEM_TENANT_SLUG,
} from '../../tenancy/admin-resource.js';
import { hasPermission, resolveGrants } from '../../tenancy/permissions.js';
import { issuerFor, type Tenant, type Tenants } from '../../tenancy/tenants.js';

/** Who is calling, as proven by a verified access token. */
export interface AdminPrincipal {
  /** The tenant whose token endpoint issued the token. */
  issuer: Tenant;
  /** `sub`; for a client-credentials token it is the client itself. */
  subject: string | undefined;
  clientId: string | undefined;
  /** The permissions the token carries (its `scope`). */
  scopes: string[];
}

/** What a route of the admin API works with: the tenant in the path and the audit actor. */
export interface AdminRequestContext {
  principal: AdminPrincipal;
  tenant: Tenant;
  /**
   * `client:<client_id>` or `user:<sub>`; a token from another tenant (the system tenant) adds
   * `@<issuer slug>`, because its subject is not a principal of the tenant it acts on.
   */
  actor: string;
}

export interface AccessTokenVerifierDeps {
  db: Database;
  tenants: Tenants;
  tenantKeys: TenantKeys;
  clock: Clock;
  publicUrl: string;
  /** Whether a client still exists (and is enabled): its tokens stop working when it does not. */
  clientExists(tx: Queryable, clientId: string): Promise<boolean>;
  /** Whether a user still exists and is active. */
  userActive(tx: Queryable, tenantId: string, userId: string): Promise<boolean>;
  /** How long a tenant's public keys are trusted without a reload (default 60 s). */
  cacheMs?: number;
  /**
   * Least time between reloads forced by an unknown `kid` (default 1 s): junk tokens cost at most
   * one key load a second per tenant, and delay a genuinely new key by at most that long.
   */
  refreshCooldownMs?: number;
}

interface IssuerKeys {
  tenant: Tenant;
  jwks: ReturnType<typeof createLocalJWKSet>;
  loadedAt: number;
}

const SLUG = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** RFC 6750 b64token. */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

function unauthenticated(message: string, cause?: unknown): OrthIdError {
  return new OrthIdError('auth.unauthenticated', message, cause === undefined ? {} : { cause });
}

function describeJoseFailure(error: unknown): string {
  if (error instanceof errors.JWTExpired)
    return 'The access token has expired; request a new one from the token endpoint.';
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'aud')
      return 'The access token is not for the admin API: request it with resource=<public url>/api.';
    return `The access token's "${error.claim}" claim is not acceptable (${error.reason}).`;
  }
  if (error instanceof errors.JWKSNoMatchingKey)
    return "The access token was not signed by one of its issuer's current keys.";
  return 'The access token does not verify; request a new one from the token endpoint.';
}

/**
 * Verifies admin API access tokens: issuer is an existing tenant's issuer, audience includes
 * the admin API, signature by one of that tenant's usable keys (cached per tenant, reloaded once
 * on an unknown `kid` so rotated keys work at once), not expired.
 */
export function createAccessTokenVerifier(deps: AccessTokenVerifierDeps) {
  const cacheMs = deps.cacheMs ?? 60_000;
  const cooldownMs = deps.refreshCooldownMs ?? 1000;
  const audience = adminResourceIndicator(deps.publicUrl);
  const issuerPrefix = issuerFor(deps.publicUrl, '');
  const cache = new Map<string, Promise<IssuerKeys>>();
  const forcedAt = new Map<string, number>();

  async function load(slug: string): Promise<IssuerKeys> {
    const tenant = await deps.tenants.get(slug);
    if (tenant.status !== 'active')
      throw unauthenticated(`The tenant "${slug}" that issued this token is disabled.`);
    const keys = await withTenant(deps.db, tenant.id, async (tx) =>
      usableSigningKeys(tx, await deps.tenantKeys.forTenant(tx, tenant.id), deps.clock.now()),
    );
    return {
      tenant,
      jwks: createLocalJWKSet({ keys: keys.map((k) => k.publicJwk) }),
      loadedAt: deps.clock.now().getTime(),
    };
  }

  async function keysFor(slug: string, force: boolean): Promise<IssuerKeys> {
    const now = deps.clock.now().getTime();
    const cached = cache.get(slug);
    if (cached && !force) {
      const entry = await cached.catch(() => undefined);
      if (entry && now - entry.loadedAt < cacheMs) return entry;
    }
    // One load per tenant at a time: concurrent requests share it.
    const loading = load(slug);
    cache.set(slug, loading);
    try {
      return await loading;
    } catch (error) {
      if (cache.get(slug) === loading) cache.delete(slug);
      if (isOrthIdError(error, 'tenant.not_found'))
        throw unauthenticated('The access token names an issuer that is not a tenant here.');
      throw error;
    }
  }

  function mayForceRefresh(slug: string): boolean {
    const now = deps.clock.now().getTime();
    const last = forcedAt.get(slug);
    if (last !== undefined && now - last < cooldownMs) return false;
    forcedAt.set(slug, now);
    return true;
  }

  async function verifyWith(token: string, keys: IssuerKeys): Promise<JWTPayload> {
    const { payload } = await jwtVerify(token, keys.jwks, {
      issuer: issuerFor(deps.publicUrl, keys.tenant.slug),
      audience,
      algorithms: [...SIGNING_ALGS],
      typ: 'at+jwt',
      currentDate: deps.clock.now(),
      clockTolerance: 5,
      requiredClaims: ['exp'],
    });
    return payload;
  }

  return {
    async verify(token: string): Promise<AdminPrincipal> {
      let unverified: JWTPayload;
      try {
        unverified = decodeJwt(token);
      } catch (cause) {
        throw unauthenticated('The bearer token is not a JWT access token.', cause);
      }
      const iss = typeof unverified.iss === 'string' ? unverified.iss : '';
      const slug = iss.startsWith(issuerPrefix) ? iss.slice(issuerPrefix.length) : '';
      if (!SLUG.test(slug))
        throw unauthenticated('The access token was not issued by a tenant of this OrthID.');

      let keys = await keysFor(slug, false);
      let payload: JWTPayload;
      try {
        payload = await verifyWith(token, keys);
      } catch (error) {
        if (!(error instanceof errors.JWKSNoMatchingKey) || !mayForceRefresh(slug)) {
          throw unauthenticated(describeJoseFailure(error), error);
        }
        keys = await keysFor(slug, true);
        try {
          payload = await verifyWith(token, keys);
        } catch (retryError) {
          throw unauthenticated(describeJoseFailure(retryError), retryError);
        }
      }
      return {
        issuer: keys.tenant,
        subject: typeof payload.sub === 'string' ? payload.sub : undefined,
        clientId: typeof payload.client_id === 'string' ? payload.client_id : undefined,
        scopes: typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : [],
      };
    },

    /**
     * Refuses a verified token whose principal no longer holds what it carries: its client was
     * deleted or disabled, its user deleted or disabled (401), or `orthid:admin` was revoked from
     * its roles (403). Read from the database on every request, uncached, so a revocation holds
     * from the next request on, on every replica.
     */
    async assertStanding(principal: AdminPrincipal): Promise<void> {
      const issuer = principal.issuer;
      const isClient =
        principal.clientId !== undefined &&
        (principal.subject === undefined || principal.subject === principal.clientId);
      const standing = await withTenantStatements(deps.db, issuer.id, async (q) => {
        if (principal.clientId !== undefined && !(await deps.clientExists(q, principal.clientId)))
          return 'client_gone';
        if (!isClient && !(principal.subject && (await deps.userActive(q, issuer.id, principal.subject))))
          return 'user_gone';
        const grants = await resolveGrants(
          q,
          isClient
            ? { kind: 'client', clientId: principal.clientId! }
            : { kind: 'user', userId: principal.subject! },
          audience,
        );
        return hasPermission(grants, ADMIN_PERMISSION) ? 'ok' : 'revoked';
      });
      if (standing === 'client_gone')
        throw unauthenticated('The client this access token was issued to was deleted or disabled.');
      if (standing === 'user_gone')
        throw unauthenticated('The user this access token was issued to was deleted or disabled.');
      if (standing === 'revoked')
        throw new OrthIdError(
          'auth.forbidden',
          `The ${ADMIN_PERMISSION} permission was revoked from this token's principal; grant it a role with it again, then request a new token.`,
        );
    },

    /** Forgets cached keys (all tenants, or one), e.g. after a rotation this process made. */
    invalidate(slug?: string): void {
      if (slug === undefined) cache.clear();
      else cache.delete(slug);
    },
  };
}

export type AccessTokenVerifier = ReturnType<typeof createAccessTokenVerifier>;

const contexts = new WeakMap<FastifyRequest, AdminRequestContext>();

/** The verified caller and tenant of an admin API request; only routes behind registerAdminAuth have one. */
export function adminContextOf(request: FastifyRequest): AdminRequestContext {
  const context = contexts.get(request);
  if (!context) throw new OrthIdError('internal.unexpected', 'An admin route ran without authentication.');
  return context;
}

function actorOf(principal: AdminPrincipal, tenant: Tenant): string {
  const isClient =
    principal.clientId !== undefined &&
    (principal.subject === undefined || principal.subject === principal.clientId);
  const actor = isClient ? `client:${principal.clientId}` : `user:${principal.subject ?? 'unknown'}`;
  return principal.issuer.id === tenant.id ? actor : `${actor}@${principal.issuer.slug}`;
}

function challenge(reply: FastifyReply, error?: { code: string; description: string }): void {
  const params = ['realm="orthid"'];
  if (error)
    params.push(`error="${error.code}"`, `error_description="${error.description.replace(/["\\]/g, '')}"`);
  if (error?.code === 'insufficient_scope') params.push(`scope="${ADMIN_PERMISSION}"`);
  void reply.header('WWW-Authenticate', `Bearer ${params.join(', ')}`);
}

/**
 * Guards every route of `scope` (whose prefix has a `:tenant` slug, or none: the system tenant): 401 `auth.unauthenticated`
 * without a valid token, 403 `auth.forbidden` without `orthid:admin` or when the token's tenant
 * is neither the one in the path nor the system tenant. Runs before body validation.
 */
export function registerAdminAuth(
  scope: FastifyInstance,
  tenants: Tenants,
  verifier: AccessTokenVerifier,
): void {
  scope.addHook('onRequest', async (request, reply) => {
    const match = BEARER.exec(request.headers.authorization ?? '');
    if (!match) {
      challenge(reply);
      throw unauthenticated('Send an access token for the admin API as "Authorization: Bearer <token>".');
    }
    let principal: AdminPrincipal;
    try {
      principal = await verifier.verify(match[1]!);
    } catch (error) {
      if (isOrthIdError(error, 'auth.unauthenticated'))
        challenge(reply, { code: 'invalid_token', description: error.message });
      throw error;
    }
    if (!principal.scopes.includes(ADMIN_PERMISSION)) {
      challenge(reply, { code: 'insufficient_scope', description: `The token lacks ${ADMIN_PERMISSION}.` });
      throw new OrthIdError(
        'auth.forbidden',
        `The access token does not carry the ${ADMIN_PERMISSION} permission; grant its principal a role with it on the admin API resource.`,
      );
    }
    // A route outside any tenant's path (the tenant list, backups) acts for the deployment: the
    // system tenant's, so only its administrators pass.
    const slug = (request.params as { tenant?: string }).tenant ?? SYSTEM_TENANT_SLUG;
    const sameTenant = principal.issuer.slug === slug;
    if (!sameTenant && principal.issuer.slug !== SYSTEM_TENANT_SLUG) {
      throw new OrthIdError(
        'auth.forbidden',
        `A token from tenant "${principal.issuer.slug}" may manage only that tenant; managing others needs ${ADMIN_PERMISSION} on a token from "${SYSTEM_TENANT_SLUG}".`,
      );
    }
    try {
      await verifier.assertStanding(principal);
    } catch (error) {
      if (isOrthIdError(error, 'auth.unauthenticated'))
        challenge(reply, { code: 'invalid_token', description: error.message });
      else if (isOrthIdError(error, 'auth.forbidden'))
        challenge(reply, { code: 'insufficient_scope', description: error.message });
      throw error;
    }
    const tenant = sameTenant ? principal.issuer : await tenants.get(slug);
    contexts.set(request, { principal, tenant, actor: actorOf(principal, tenant) });
  });
}
