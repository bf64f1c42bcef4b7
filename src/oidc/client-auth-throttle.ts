// Client secrets are checked under throttling, per client and per client address, on the same
// PostgreSQL counters as sign-ins: a blocked attempt is refused before its secret is compared,
// and every failure is an audit event. Protocol behaviour otherwise stays the provider's.
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { appendAudit } from '../audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { Queryable } from '../core/sql.js';
import type { TenantKeyring } from '../crypto/tenant-keys.js';
import type { SignInThrottle } from '../identity/sign-in-throttle.js';
import { type Database, withTenant, withTenantStatements } from '../storage/db/database.js';

export interface ClientSecretThrottleDeps {
  db: Database;
  tenantId: string;
  keyring: TenantKeyring;
  throttle: SignInThrottle;
  clock: Clock;
  /** The provider class, whose `ctx` is the request being answered (oidc-provider's AsyncLocalStorage). */
  providerClass: typeof Provider;
  /** oidc-provider's `invalid_client` error (its argument is the detail, for its debug log). */
  invalidClient: new (
    detail?: string,
  ) => Error;
  /** Constant-time comparison of the presented secret against the client's stored ones. */
  matches(client: CheckedClient, presented: string): boolean;
}

/** The provider's client whose secret is checked: its id, stored secret hash and metadata. */
export interface CheckedClient {
  clientId: string;
  clientSecret: string;
  metadata(): Record<string, unknown>;
}

/** A `Client.prototype.compareClientSecret` that throttles and audits. */
export function throttledClientSecretCheck(deps: ClientSecretThrottleDeps) {
  const { throttle, tenantId } = deps;
  const audit = (
    tx: Queryable,
    ctx: KoaContextWithOIDC | undefined,
    clientId: string,
    reason: 'invalid_secret' | 'throttled',
    retryAfterSeconds: number,
  ) =>
    appendAudit(
      tx,
      deps.keyring,
      {
        actor: 'anonymous',
        action: 'client.authenticate',
        target: `client:${clientId}`,
        outcome: 'failure',
        ip: ctx?.ip,
        userAgent: ctx?.get('user-agent') || undefined,
        details: {
          reason,
          ...(ctx?.oidc?.route ? { endpoint: ctx.oidc.route } : {}),
          ...(retryAfterSeconds > 0 ? { retryAfterSeconds } : {}),
        },
      },
      deps.clock,
    );

  return async function compareClientSecret(this: CheckedClient, presented: string): Promise<boolean> {
    const ctx = (deps.providerClass as unknown as { ctx?: KoaContextWithOIDC }).ctx;
    const keys = throttle.clientKeys(deps.keyring, this.clientId, ctx?.ip ?? '');
    const state = await withTenantStatements(deps.db, tenantId, (q) =>
      throttle.state(q, keys, deps.clock.now()),
    );
    if (state.retryAfterSeconds > 0) {
      await withTenant(deps.db, tenantId, (tx) =>
        audit(tx, ctx, this.clientId, 'throttled', state.retryAfterSeconds),
      );
      // invalid_client, as RFC 6749 names a failed client authentication, sent with 429 and
      // Retry-After (RFC 6585) so a client backs off instead of retrying at once.
      const error = new deps.invalidClient('client authentication throttled') as Error & {
        status: number;
        statusCode: number;
        error_description: string;
      };
      error.error_description = `too many failed client authentications; retry in ${state.retryAfterSeconds} seconds`;
      error.status = 429;
      error.statusCode = 429;
      ctx?.set('retry-after', String(state.retryAfterSeconds));
      throw error;
    }
    if (deps.matches(this, presented)) return true;
    await withTenant(deps.db, tenantId, async (tx) => {
      const after = await throttle.recordFailure(tx, tenantId, keys, deps.clock.now());
      await audit(tx, ctx, this.clientId, 'invalid_secret', after.retryAfterSeconds);
    });
    return false;
  };
}
