// One oidc-provider per tenant: created on first use, cached, and dropped on every replica when
// the tenant's clients or keys change (LISTEN/NOTIFY), so replicas never disagree for long.
import type Provider from 'oidc-provider';
import type { Account, KoaContextWithOIDC } from 'oidc-provider';
import { appendAudit } from '../audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import { isOrthIdError, OrthIdError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Queryable } from '../core/sql.js';
import {
  ensureSigningKeys,
  SIGNING_ALGS,
  type SigningAlg,
  usableSigningKeys,
} from '../crypto/signing-keys.js';
import type { TenantKeys } from '../crypto/tenant-keys.js';
import { createSignInThrottle, type SignInThrottle } from '../identity/sign-in-throttle.js';
import type { Users } from '../identity/users.js';
import { type Database, withTenant, withTenantStatements } from '../storage/db/database.js';
import { classifyDatabaseError } from '../storage/db/database-errors.js';
import { RBAC_CHANGES_CHANNEL } from '../tenancy/record-change.js';
import { issuerFor, type Tenant, type Tenants } from '../tenancy/tenants.js';
import { throttledClientSecretCheck } from './client-auth-throttle.js';
import { type Clients, clientSecretAccepted, hashClientSecret, RESOURCES_METADATA } from './clients.js';
import { paceDevicePolling, throttleUserCodes } from './device-flow-guards.js';
import { clarifyFlowErrors } from './flow-errors.js';
import { grantRevocationEvent } from './grant-revocation-audit.js';
import { keepOfflineAccessWithoutPrompt } from './offline-access.js';
import { guardAdapterIds, refuseControlCharacters } from './parameter-guard.js';
import { createPostgresAdapter, providerRequestStep } from './postgres-adapter.js';
import {
  type ApiResourceInfo,
  DEFAULT_LIFETIMES,
  isLoopbackUrl,
  type Lifetimes,
  type ProviderPages,
  type ResourceGrant,
  type TokenSubject,
  tenantProviderConfiguration,
} from './provider-configuration.js';
import { pinPublicOrigin } from './public-origin.js';
import { matchOriginOnlyUris } from './redirect-uris.js';
import { stepUpPolicy } from './step-up.js';
import { createStoredSecrets } from './stored-secrets.js';
import { TENANT_CHANGES_CHANNEL } from './tenant-changes.js';
import { acceptStructuredTokens } from './token-introspection.js';

export interface OidcDeps {
  db: Database;
  /** Every URL the providers build starts here, whatever Host or X-Forwarded-* a request names. */
  publicUrl: string;
  tenants: Tenants;
  tenantKeys: TenantKeys;
  users: Users;
  clients: Clients;
  clock: Clock;
  log: Logger;
  lifetimes?: Lifetimes;
  /** Counts failed client authentications (the sign-in throttle's counters; its defaults when absent). */
  signInThrottle?: SignInThrottle;
  pages: ProviderPages;
  grantsFor(tx: Queryable, subject: TokenSubject, indicator: string): Promise<ResourceGrant>;
  resourceExists(
    tx: Queryable,
    indicator: string,
  ): Promise<{ name: string; access_token_alg: SigningAlg | null } | undefined>;
}

export interface TenantProvider {
  tenant: Tenant;
  provider: Provider;
  /** The provider as a Node request handler (Koa's callback, built once). */
  handle: ReturnType<Provider['callback']>;
  /** Binds a form to its interaction: HMAC of the interaction id under a tenant key. */
  csrfToken(uid: string): string;
}

/** Safety net for a missed notification (e.g. a dropped LISTEN connection). */
const MAX_AGE_MS = 5 * 60_000;

export function signingAlgOf(tenant: { settings?: Record<string, unknown> }): SigningAlg {
  const alg = tenant.settings?.signingAlg;
  return alg === 'ES256' || alg === 'RS256' ? alg : 'EdDSA';
}

export function createOidcProviders(deps: OidcDeps) {
  const lifetimes = deps.lifetimes ?? DEFAULT_LIFETIMES;
  const signInThrottle = deps.signInThrottle ?? createSignInThrottle();
  const cache = new Map<string, { tenantId?: string; created: number; value: Promise<TenantProvider> }>();
  const grantCaches = new Map<string, LookupCache<ResourceLookup>>();
  // Caching is safe only while change notifications arrive: until subscribe(), every lookup
  // reads the database, as in-process tools and tests expect.
  const subscribed = { now: false };

  async function build(slug: string): Promise<TenantProvider> {
    const tenant = await deps.tenants.get(slug);
    const alg = signingAlgOf(tenant);
    const { keyring, signingKeys } = await withTenant(deps.db, tenant.id, async (tx) => {
      const ring = await deps.tenantKeys.forTenant(tx, tenant.id);
      if (ring.shredded) {
        throw new OrthIdError(
          'crypto.shredded',
          `Tenant ${slug} was crypto-shredded; it no longer signs in anyone.`,
        );
      }
      // Every algorithm a client may choose has a key before the provider offers it.
      await ensureSigningKeys(tx, ring, SIGNING_ALGS, deps.clock.now());
      return { keyring: ring, signingKeys: await usableSigningKeys(tx, ring, deps.clock.now()) };
    });
    const inTenant = <T>(fn: (tx: Queryable) => Promise<T>) => withTenant(deps.db, tenant.id, fn);
    // A new provider starts with an empty cache, so MAX_AGE_MS bounds a missed notification here too.
    const grants = new LookupCache<ResourceLookup>(subscribed);
    grantCaches.set(tenant.id, grants);

    const issuer = issuerFor(deps.publicUrl, tenant.slug);
    // Its own purpose, never rotated: a new key would orphan every stored token and session.
    const secrets = createStoredSecrets(keyring.index('oidc.token-ids', 'v1'));
    const adapter = guardAdapterIds(
      createPostgresAdapter(
        deps.db,
        tenant.id,
        cachedClientMetadata(inTenant, deps.clients, subscribed),
        secrets,
      ),
    );
    const configuration = tenantProviderConfiguration({
      pages: deps.pages,
      tenant,
      defaultLocale:
        typeof tenant.settings.defaultLocale === 'string' ? tenant.settings.defaultLocale : undefined,
      mountPath: new URL(issuer).pathname,
      alg,
      signingKeys: signingKeys.map((k) => k.privateJwk),
      claimsInIdToken: tenant.settings.claimsInIdToken !== false,
      cookieKeys: [keyring.index('oidc.cookies', 'v1')],
      lifetimes,
      adapter,
      findAccount: async (_ctx, sub): Promise<Account | undefined> => {
        // Reads only (the user's row; the keyring when not cached): no transaction needed.
        const user = await withTenantStatements(deps.db, tenant.id, (q) =>
          deps.users.get(q, tenant.id, sub),
        ).catch((error) => {
          if (isOrthIdError(error, 'user.not_found')) return undefined;
          throw error;
        });
        if (user?.status !== 'active') return undefined;
        return {
          accountId: user.id,
          claims: async () => ({
            sub: user.id,
            email: user.email,
            email_verified: user.emailVerified,
            name: user.name ?? undefined,
            phone_number: user.phone ?? undefined,
          }),
        };
      },
      // One transaction for both lookups, remembered until the tenant's RBAC data changes.
      resourceGrant: (subject, indicator) =>
        grants.get(
          `${subject.kind}:${subject.kind === 'user' ? subject.userId : subject.clientId}|${indicator}`,
          () =>
            inTenant(async (tx) => {
              const resource = await deps.resourceExists(tx, indicator);
              return {
                resource: resource && {
                  name: resource.name,
                  ...(resource.access_token_alg ? { accessTokenAlg: resource.access_token_alg } : {}),
                },
                grant: await deps.grantsFor(tx, subject, indicator),
              };
            }),
        ),
      deliverToLoopback: isLoopbackUrl(deps.publicUrl),
      clientResources: (client) => (client.metadata()[RESOURCES_METADATA] as string[] | undefined) ?? [],
    });

    // Loaded on first use, so CLI commands that never serve OIDC do not load the provider.
    const { default: ProviderClass, errors, interactionPolicy } = await import('oidc-provider');
    configuration.interactions = { ...configuration.interactions, policy: stepUpPolicy(interactionPolicy) };
    const provider = new ProviderClass(issuer, configuration);
    pinPublicOrigin(provider, issuer);
    refuseControlCharacters(provider, errors.InvalidRequest);
    keepOfflineAccessWithoutPrompt(provider);
    matchOriginOnlyUris(provider);
    providerRequestStep(provider, adapter);
    acceptStructuredTokens(provider, {
      signingKeys: signingKeys.map((k) => k.privateJwk),
      clock: deps.clock,
      InvalidClient: errors.InvalidClient,
    });
    // Secrets are stored as a keyed HMAC; the presented secret's HMAC is compared in constant
    // time, and only when neither the client nor the address is blocked by failures.
    const throttling = {
      db: deps.db,
      tenantId: tenant.id,
      keyring,
      throttle: signInThrottle,
      clock: deps.clock,
      providerClass: ProviderClass,
    };
    provider.Client.prototype.compareClientSecret = throttledClientSecretCheck({
      ...throttling,
      invalidClient: errors.InvalidClientAuth,
      matches: (client, actual) =>
        clientSecretAccepted(
          client.clientSecret,
          client.metadata(),
          hashClientSecret(keyring, actual),
          deps.clock.now(),
        ),
    });
    throttleUserCodes(provider, throttling);
    paceDevicePolling(provider, {
      providerClass: ProviderClass,
      rowId: (id) => secrets.rowId('DeviceCode', id),
      SlowDown: errors.SlowDown,
    });
    clarifyFlowErrors(provider);
    auditProviderEvents(provider, tenant.id);
    return {
      tenant,
      provider,
      handle: provider.callback(),
      csrfToken: (uid) => keyring.index('oidc.csrf', uid),
    };
  }

  function auditProviderEvents(provider: Provider, tenantId: string): void {
    const record = (action: string, ctx: KoaContextWithOIDC, target?: string) => {
      const actor = ctx.oidc?.session?.accountId ? `user:${ctx.oidc.session.accountId}` : 'anonymous';
      inTenantAudit(tenantId, {
        actor,
        action,
        target,
        outcome: 'success',
        ip: ctx.ip,
        userAgent: ctx.get('user-agent'),
      }).catch((err) => deps.log.error({ err, action }, 'could not audit a provider event'));
    };
    provider.on('end_session.success', (ctx) => record('session.ended', ctx));
    provider.on('grant.revoked', (ctx, grantId) => {
      const event = grantRevocationEvent(ctx, grantId);
      inTenantAudit(tenantId, { ...event, ip: ctx.ip, userAgent: ctx.get('user-agent') }).catch((err) =>
        deps.log.error({ err, action: event.action }, 'could not audit a provider event'),
      );
    });
    // A relying party that did not hear of a logout keeps its session: the operator must know.
    provider.on('backchannel.error', (_ctx, err, client) =>
      deps.log.warn(
        {
          clientId: (client as { clientId?: string }).clientId,
          reason: String((err as Error).cause ?? (err as Error).message),
        },
        'back-channel logout could not be delivered',
      ),
    );
    provider.on('server_error', (_ctx, err) => {
      // A database environment problem is named by its code and the fix, not only a stack; an
      // outage is answered 503 (providerRequestStep) and is a warning, not a bug.
      const environment = isOrthIdError(err) ? err : classifyDatabaseError(err);
      if (environment?.kind === 'unavailable') deps.log.warn({ code: environment.code }, environment.message);
      else if (environment?.code.startsWith('db.'))
        deps.log.error({ code: environment.code }, environment.message);
      else deps.log.error({ err }, 'oidc provider error');
    });
  }

  async function inTenantAudit(tenantId: string, event: Parameters<typeof appendAudit>[2]): Promise<void> {
    await withTenant(deps.db, tenantId, async (tx) =>
      appendAudit(tx, await deps.tenantKeys.forTenant(tx, tenantId), event, deps.clock),
    );
  }

  return {
    /** The tenant's provider; `tenant.not_found` for an unknown slug. */
    get(slug: string): Promise<TenantProvider> {
      const hit = cache.get(slug);
      if (hit && Date.now() - hit.created < MAX_AGE_MS) return hit.value;
      const entry: { tenantId?: string; created: number; value: Promise<TenantProvider> } = {
        created: Date.now(),
        value: build(slug),
      };
      cache.set(slug, entry);
      entry.value.then(
        (p) => {
          entry.tenantId = p.tenant.id;
        },
        () => cache.delete(slug),
      );
      return entry.value;
    },

    invalidate(tenantId: string): void {
      for (const [slug, entry] of cache) if (entry.tenantId === tenantId) cache.delete(slug);
      deps.tenantKeys.invalidate(tenantId);
      this.invalidateGrants(tenantId);
    },

    /** Forgets every cached provider, keyring and grant (after a gap in change notices). */
    invalidateAll(): void {
      cache.clear();
      deps.tenantKeys.invalidate();
      for (const grants of grantCaches.values()) grants.clear();
    },

    /** Forgets what tokens of this tenant grant (its roles, permissions or resources changed). */
    invalidateGrants(tenantId: string): void {
      grantCaches.get(tenantId)?.clear();
    },

    /** Starts listening for changes (this replica's and others'); returns the unsubscribe function. */
    async subscribe(): Promise<() => Promise<void>> {
      // Caches are trusted only while both subscriptions are up; across a gap, changes may
      // have been missed, so everything cached is dropped when the connection comes back.
      const up = { tenants: true, rbac: true };
      const onConnection = (which: keyof typeof up) => (connected: boolean) => {
        up[which] = connected;
        this.invalidateAll();
        subscribed.now = up.tenants && up.rbac;
      };
      const stopTenants = await deps.db.listen(
        TENANT_CHANGES_CHANNEL,
        (tenantId) => this.invalidate(tenantId),
        onConnection('tenants'),
      );
      const stopRbac = await deps.db
        .listen(RBAC_CHANGES_CHANNEL, (tenantId) => this.invalidateGrants(tenantId), onConnection('rbac'))
        .catch(async (error) => {
          await stopTenants();
          throw error;
        });
      subscribed.now = true;
      return async () => {
        subscribed.now = false;
        for (const grants of grantCaches.values()) grants.clear();
        await Promise.all([stopTenants(), stopRbac()]);
      };
    },
  };
}

export type OidcProviders = ReturnType<typeof createOidcProviders>;

type ResourceLookup = { resource: ApiResourceInfo | undefined; grant: ResourceGrant };

/** Past this many entries (clients, or subjects × resources) a cache starts over rather than grow. */
const MAX_CACHED_LOOKUPS = 10_000;

/**
 * Lookups shared while in flight and kept until cleared. A lookup started before a change
 * commits is removed by the clear that change's notification causes, so it is never kept.
 */
class LookupCache<V> {
  readonly #entries = new Map<string, Promise<V>>();

  constructor(
    readonly enabled: { now: boolean },
    readonly keep: (value: V) => boolean = () => true,
  ) {}

  get(key: string, load: () => Promise<V>): Promise<V> {
    if (!this.enabled.now) return load();
    const hit = this.#entries.get(key);
    if (hit) return hit;
    if (this.#entries.size >= MAX_CACHED_LOOKUPS) this.#entries.clear();
    const value = load();
    this.#entries.set(key, value);
    const forget = () => {
      if (this.#entries.get(key) === value) this.#entries.delete(key);
    };
    value.then((v) => {
      if (!this.keep(v)) forget();
    }, forget);
    return value;
  }

  clear(): void {
    this.#entries.clear();
  }
}

/**
 * Client metadata for the adapter, read once per provider: every token request looks its
 * client up, and the provider (with this cache) is rebuilt whenever a client changes
 * (announceTenantChange → LISTEN/NOTIFY → invalidate). Unknown clients are not remembered.
 */
function cachedClientMetadata(
  inTenant: <T>(fn: (tx: Queryable) => Promise<T>) => Promise<T>,
  clients: Clients,
  subscribed: { now: boolean },
): (clientId: string) => Promise<Record<string, unknown> | undefined> {
  const cache = new LookupCache<Record<string, unknown> | undefined>(subscribed, (metadata) => !!metadata);
  return (clientId) => cache.get(clientId, () => inTenant((tx) => clients.metadata(tx, clientId)));
}

/** The longest a token signed by a key can live: a retired key stays in JWKS at least this long. */
export function maxTokenSeconds(lifetimes: Lifetimes): number {
  return Math.max(lifetimes.accessTokenSeconds, lifetimes.idTokenSeconds);
}
