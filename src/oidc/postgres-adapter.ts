// oidc-provider's storage adapter for one tenant: exactly the contract the provider defines
// (upsert, find, findByUid, findByUserCode, consume, destroy, revokeByGrantId), behind RLS.
import type { Database } from '../storage/db/database.js';
import { withTenantStatements } from '../storage/db/database.js';
import { createOidcPayloadsQueries, type PayloadRow } from './oidc-payloads.queries.js';

type Payload = Record<string, unknown>;

/** Models whose payload names a grant that the provider reads right after them. */
const GRANT_BOUND = new Set([
  'AccessToken',
  'RefreshToken',
  'AuthorizationCode',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
  'PreAuthorizedCode',
]);
/** A grant read with its token answers the provider's next Grant.find within one request only. */
const PREFETCH_TTL_MS = 1000;
const PREFETCH_MAX = 1000;

/**
 * Grants read together with a token, each handed out once to the Grant.find that follows: one
 * round trip fewer per token, refresh, introspection and userinfo request. The token and its
 * grant then come from one snapshot, which is stricter than two lookups, not looser.
 */
class PrefetchedGrants {
  readonly #entries = new Map<string, { payload: Payload; at: number }>();

  put(grantId: string, payload: Payload): void {
    this.#entries.delete(grantId);
    // Bounded: a token lookup that is not followed by its grant's (a refused request) leaves
    // an entry behind; the oldest goes first.
    if (this.#entries.size >= PREFETCH_MAX) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(grantId, { payload, at: Date.now() });
  }

  take(grantId: string): Payload | undefined {
    const entry = this.#entries.get(grantId);
    if (!entry) return undefined;
    this.#entries.delete(grantId);
    return Date.now() - entry.at <= PREFETCH_TTL_MS ? entry.payload : undefined;
  }

  forget(grantId: string): void {
    this.#entries.delete(grantId);
  }
}

function present(row: PayloadRow | undefined): Payload | undefined {
  if (!row) return undefined;
  return row.consumed_at
    ? { ...row.payload, consumed: Math.floor(new Date(row.consumed_at).getTime() / 1000) }
    : row.payload;
}

/**
 * Clients are not stored here but in oidc_clients, so a lookup on the Client model goes to
 * `findClient` instead.
 */
export function createPostgresAdapter(
  db: Database,
  tenantId: string,
  findClient: (clientId: string) => Promise<Payload | undefined>,
) {
  // Every adapter operation is one statement, so each runs as its own transaction: one round
  // trip to PostgreSQL instead of BEGIN / tenant / statement / COMMIT.
  const run = <T>(fn: (q: ReturnType<typeof createOidcPayloadsQueries>) => Promise<T>) =>
    withTenantStatements(db, tenantId, (q) => fn(createOidcPayloadsQueries(q)));
  const prefetched = new PrefetchedGrants();

  return class PostgresAdapter {
    constructor(readonly model: string) {}

    async upsert(id: string, payload: Payload, expiresIn?: number): Promise<void> {
      const str = (key: string) => (typeof payload[key] === 'string' ? (payload[key] as string) : null);
      if (this.model === 'Grant') prefetched.forget(id);
      await run((q) =>
        q.upsert(tenantId, {
          model: this.model,
          id,
          payload,
          grantId: str('grantId'),
          uid: str('uid'),
          userCode: str('userCode'),
          accountId: str('accountId'),
          expiresAt: expiresIn ? new Date(Date.now() + expiresIn * 1000) : null,
        }),
      );
    }

    async find(id: string): Promise<Payload | undefined> {
      if (this.model === 'Client') return findClient(id);
      if (this.model === 'Grant') {
        const grant = prefetched.take(id);
        if (grant) return grant;
      }
      if (!GRANT_BOUND.has(this.model)) return present(await run((q) => q.find(this.model, id)));
      const row = await run((q) => q.findWithGrant(this.model, id));
      const token = present(row);
      if (row?.grant_payload && typeof token?.grantId === 'string') {
        prefetched.put(
          token.grantId,
          present({ payload: row.grant_payload, consumed_at: row.grant_consumed_at })!,
        );
      }
      return token;
    }

    async findByUid(uid: string): Promise<Payload | undefined> {
      return present(await run((q) => q.findBy(this.model, 'uid', uid)));
    }

    async findByUserCode(userCode: string): Promise<Payload | undefined> {
      return present(await run((q) => q.findBy(this.model, 'user_code', userCode)));
    }

    /**
     * Consuming is the single-use check itself. The provider checks `consumed` when it finds a
     * code or refresh token and consumes it later, so two requests presenting it at once would
     * both pass; only one marks it here. The other is a replay and is answered as the provider
     * answers one it catches: the grant and everything issued under it are revoked.
     */
    async consume(id: string): Promise<void> {
      if (await run((q) => q.consumeOnce(this.model, id))) return;
      const { default: Provider, errors } = await import('oidc-provider');
      if (!GRANT_BOUND.has(this.model)) {
        throw new errors.InvalidRequestUri('request_uri is invalid, expired, or was already used');
      }
      const grantId = (await this.find(id))?.grantId;
      if (typeof grantId === 'string') {
        await this.revokeByGrantId(grantId);
        await new PostgresAdapter('Grant').destroy(grantId);
        // The provider's own event for a revoked grant, so the audit log records this one too.
        const ctx = Provider.ctx;
        ctx?.oidc.provider.emit('grant.revoked', ctx, grantId);
      }
      throw new errors.InvalidGrant('already used');
    }

    async destroy(id: string): Promise<void> {
      if (this.model === 'Grant') prefetched.forget(id);
      await run((q) => q.destroy(this.model, id));
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      prefetched.forget(grantId);
      await run((q) => q.revokeByGrantId(grantId));
    }
  };
}
