// oidc-provider's storage adapter for one tenant: exactly the contract the provider defines
// (upsert, find, findByUid, findByUserCode, consume, destroy, revokeByGrantId), behind RLS, and
// the request step that makes a token endpoint answer and its writes one unit. Bearer secrets
// are stored as keyed hashes (stored-secrets.ts): the adapter hashes every id it is given.
import { AsyncLocalStorage } from 'node:async_hooks';
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { isOrthIdError } from '../core/errors.js';
import type { Queryable } from '../core/sql.js';
import type { Database } from '../storage/db/database.js';
import { withTenant, withTenantStatements } from '../storage/db/database.js';
import { DB_RETRY_AFTER_SECONDS, isConnectionLoss } from '../storage/db/pg-errors.js';
import { createOidcPayloadsQueries, type PayloadRow, type PayloadWrite } from './oidc-payloads.queries.js';
import type { Lookup, StoredSecrets } from './stored-secrets.js';

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
/**
 * Rows kept past their payload's expiry, in seconds, so the provider itself sees them expired:
 * a device polling an expired code is told expired_token (RFC 8628 §3.5), and a user typing one
 * "expired", rather than both "not found".
 */
const EXPIRED_GRACE_SECONDS: Record<string, number> = { DeviceCode: 10 * 60 };
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

/**
 * The writes of one token endpoint request from its first consumption on (an authorization
 * code or a refresh token presented), held back until the answer is ready and then made in
 * one transaction: consume the presented token, store what was issued, commit, answer.
 *
 * Why: the provider consumes the presented token first and stores its successors after, each
 * write on its own. A request that failed between them (the database restarting, the process
 * killed, an error after the check) left the token consumed and nothing delivered, and the
 * client's retry of it was then taken for reuse: the grant revoked, the user signed out. Now a
 * request that does not answer 200 changes nothing, so the retry is a first use; the successor
 * that was never received was never stored. Reuse detection is untouched: presenting a token
 * consumed by an answered request revokes the grant, as does losing the race to consume it.
 */
class HeldTokenWrites {
  /** Row ids (hashed) of the tokens presented. */
  consumes: { model: string; rowId: string }[] = [];
  upserts: PayloadWrite[] = [];
  constructor(readonly ctx: KoaContextWithOIDC) {}
}

/** The request being served by a provider with providerRequestStep, in its async context. */
const serving = new AsyncLocalStorage<HeldTokenWrites>();

/** The held writes of the token endpoint request being served, if that is what runs. */
function heldWrites(): HeldTokenWrites | undefined {
  const held = serving.getStore();
  return held?.ctx.oidc?.route === 'token' ? held : undefined;
}

/** How long an answer whose commit was cut off waits for the database to say if it happened. */
const IN_DOUBT_WAIT_MS = 10_000;

/**
 * Clients are not stored here but in oidc_clients, so a lookup on the Client model goes to
 * `findClient` instead. `secrets` names rows by a keyed hash of their ids (see stored-secrets.ts).
 */
export function createPostgresAdapter(
  db: Database,
  tenantId: string,
  findClient: (clientId: string) => Promise<Payload | undefined>,
  secrets: StoredSecrets,
) {
  /** The payload the provider stored, given what it was found by. */
  function present(model: string, lookup: Lookup, row: PayloadRow | undefined): Payload | undefined {
    if (!row) return undefined;
    const payload = secrets.reveal(model, lookup, row.payload);
    if (!payload) return undefined;
    return row.consumed_at
      ? { ...payload, consumed: Math.floor(new Date(row.consumed_at).getTime() / 1000) }
      : payload;
  }

  // Every adapter operation is one statement, so each runs as its own transaction: one round
  // trip to PostgreSQL instead of BEGIN / tenant / statement / COMMIT.
  const run = <T>(fn: (q: ReturnType<typeof createOidcPayloadsQueries>) => Promise<T>) =>
    withTenantStatements(db, tenantId, (q) => fn(createOidcPayloadsQueries(q)));
  const prefetched = new PrefetchedGrants();

  /** A replay caught while consuming: the grant and everything issued under it are revoked. */
  async function revokeReplayed(model: string, rowId: string, ctx: KoaContextWithOIDC | undefined) {
    const grantId = (await run((q) => q.find(model, rowId)))?.payload.grantId;
    if (typeof grantId === 'string') {
      await new PostgresAdapter(model).revokeByGrantId(grantId);
      await new PostgresAdapter('Grant').destroy(grantId);
      // The provider's own event for a revoked grant, so the audit log records this one too.
      ctx?.oidc.provider.emit('grant.revoked', ctx, grantId);
    }
  }

  class PostgresAdapter {
    constructor(readonly model: string) {}

    async upsert(id: string, payload: Payload, expiresIn?: number): Promise<void> {
      const str = (key: string) => (typeof payload[key] === 'string' ? (payload[key] as string) : null);
      if (this.model === 'Grant') prefetched.forget(id);
      const userCode = str('userCode');
      const write: PayloadWrite = {
        model: this.model,
        id: secrets.rowId(this.model, id),
        payload: secrets.conceal(this.model, id, payload),
        grantId: str('grantId'),
        uid: str('uid'),
        userCode: userCode === null ? null : secrets.userCode(userCode),
        accountId: str('accountId'),
        expiresAt: expiresIn
          ? new Date(Date.now() + (expiresIn + (EXPIRED_GRACE_SECONDS[this.model] ?? 0)) * 1000)
          : null,
      };
      const held = heldWrites();
      if (held && held.consumes.length > 0) held.upserts.push(write);
      else await run((q) => q.upsert(tenantId, write));
    }

    async find(id: string): Promise<Payload | undefined> {
      if (this.model === 'Client') return findClient(id);
      if (this.model === 'Grant') {
        const grant = prefetched.take(id);
        if (grant) return grant;
      }
      const rowId = secrets.rowId(this.model, id);
      if (!GRANT_BOUND.has(this.model))
        return present(this.model, { id }, await run((q) => q.find(this.model, rowId)));
      const row = await run((q) => q.findWithGrant(this.model, rowId));
      const token = present(this.model, { id }, row);
      if (row?.grant_payload && typeof token?.grantId === 'string') {
        prefetched.put(
          token.grantId,
          present(
            'Grant',
            { id: token.grantId },
            {
              payload: row.grant_payload,
              consumed_at: row.grant_consumed_at,
            },
          )!,
        );
      }
      return token;
    }

    async findByUid(uid: string): Promise<Payload | undefined> {
      // A session's uid names it to administrators and in tokens; it opens nothing by itself.
      return present(this.model, undefined, await run((q) => q.findBy(this.model, 'uid', uid)));
    }

    async findByUserCode(userCode: string): Promise<Payload | undefined> {
      const hashed = secrets.userCode(userCode);
      return present(this.model, { userCode }, await run((q) => q.findBy(this.model, 'user_code', hashed)));
    }

    /**
     * Consuming is the single-use check itself. The provider checks `consumed` when it finds a
     * code or refresh token and consumes it later, so two requests presenting it at once would
     * both pass; only one marks it here. The other is a replay and is answered as the provider
     * answers one it catches: the grant and everything issued under it are revoked.
     */
    async consume(id: string): Promise<void> {
      const rowId = secrets.rowId(this.model, id);
      const held = GRANT_BOUND.has(this.model) ? heldWrites() : undefined;
      if (held) {
        // Checked by the provider already (found, not consumed); made final with the answer.
        held.consumes.push({ model: this.model, rowId });
        return;
      }
      if (await run((q) => q.consumeOnce(this.model, rowId))) return;
      const { default: ProviderClass, errors } = await import('oidc-provider');
      if (!GRANT_BOUND.has(this.model)) {
        throw new errors.InvalidRequestUri('request_uri is invalid, expired, or was already used');
      }
      await revokeReplayed(this.model, rowId, ProviderClass.ctx);
      throw new errors.InvalidGrant('already used');
    }

    async destroy(id: string): Promise<void> {
      if (this.model === 'Grant') prefetched.forget(id);
      await run((q) => q.destroy(this.model, secrets.rowId(this.model, id)));
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      prefetched.forget(grantId);
      await run((q) => q.revokeByGrantId(grantId));
    }

    /**
     * Makes a token request's held writes, in one transaction, once its answer is a success.
     * `consumed` false: a presented token was consumed meanwhile by another request (a replay
     * racing the first use); nothing was written, and the grant has been revoked.
     */
    static async commitHeld(held: HeldTokenWrites): Promise<{ consumed: boolean }> {
      let statementsDone = false;
      const replayed = Symbol('replayed');
      try {
        await withTenant(db, tenantId, async (tx: Queryable) => {
          const q = createOidcPayloadsQueries(tx);
          for (const c of held.consumes) if (!(await q.consumeOnce(c.model, c.rowId))) throw replayed;
          for (const w of held.upserts) await q.upsert(tenantId, w);
          statementsDone = true;
        });
        return { consumed: true };
      } catch (error) {
        if (error === replayed) {
          for (const c of held.consumes) await revokeReplayed(c.model, c.rowId, held.ctx);
          return { consumed: false };
        }
        // Cut off at COMMIT: PostgreSQL may have made it durable before it went away. The
        // answer is sent only if it did, so a client never holds tokens that do not exist and
        // never gets a 503 for a rotation that happened (its retry would count as reuse).
        if (statementsDone && isConnectionLoss(error) && (await PostgresAdapter.#committed(held))) {
          return { consumed: true };
        }
        throw error;
      }
    }

    static async #committed(held: HeldTokenWrites): Promise<boolean> {
      // A new row exists only if the commit happened; without one, the consumption tells.
      const last = held.upserts.at(-1);
      const consumed = held.consumes.at(-1)!;
      const deadline = Date.now() + IN_DOUBT_WAIT_MS;
      for (;;) {
        try {
          if (last) return !!(await run((q) => q.find(last.model, last.id)));
          return !!(await run((q) => q.find(consumed.model, consumed.rowId)))?.consumed_at;
        } catch (error) {
          if (!isConnectionLoss(error) || Date.now() > deadline) return false;
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      }
    }
  }

  return PostgresAdapter;
}

export type PostgresAdapterClass = ReturnType<typeof createPostgresAdapter>;

function isUnavailable(error: unknown): boolean {
  return isConnectionLoss(error) || (isOrthIdError(error) && error.kind === 'unavailable');
}

/**
 * The step every request to a tenant's provider passes through (before the provider's own):
 * a token request's held writes are made when its answer is ready (see HeldTokenWrites), and a
 * request that failed because the database (or another service) is unavailable is answered
 * 503 with Retry-After, not the provider's 500 `server_error`, so clients retry and monitors
 * see an outage rather than a bug.
 */
export function providerRequestStep(provider: Provider, adapter: PostgresAdapterClass): void {
  const unavailable = new WeakSet<object>();
  provider.on('server_error', (ctx: KoaContextWithOIDC, error: unknown) => {
    if (isUnavailable(error)) unavailable.add(ctx);
  });
  const answerUnavailable = (ctx: KoaContextWithOIDC) => {
    ctx.status = 503;
    ctx.set('Retry-After', String(DB_RETRY_AFTER_SECONDS));
    // A JSON error keeps OAuth's shape; an HTML page (rendered by renderError) stays as it is.
    if (typeof ctx.body !== 'string') {
      ctx.body = {
        error: 'temporarily_unavailable',
        error_description: `the service is temporarily unavailable; retry in ${DB_RETRY_AFTER_SECONDS} seconds`,
      };
    }
  };
  provider.use(async (ctx, next) => {
    const oidcCtx = ctx as KoaContextWithOIDC;
    const held = new HeldTokenWrites(oidcCtx);
    try {
      await serving.run(held, next);
    } catch (error) {
      // Past the engine's error handlers: it saves a changed session once more after its
      // handler has answered (around every endpoint), so a session write the outage cut off
      // is tried again and fails again. Koa would answer that 500; it is the same outage.
      // Nothing held is written: the request did not succeed.
      if (!isUnavailable(error) || ctx.headerSent) throw error;
      answerUnavailable(oidcCtx);
      return;
    }
    // Any other answer drops what was held: nothing consumed, nothing issued.
    if (held.consumes.length > 0 && ctx.status >= 200 && ctx.status < 300) {
      try {
        const { consumed } = await adapter.commitHeld(held);
        if (!consumed) {
          ctx.status = 400;
          ctx.body = { error: 'invalid_grant', error_description: 'grant request is invalid' };
        }
      } catch (error) {
        if (!isUnavailable(error)) throw error;
        answerUnavailable(oidcCtx);
      }
    }
    if (unavailable.has(ctx)) answerUnavailable(oidcCtx);
  });
}
