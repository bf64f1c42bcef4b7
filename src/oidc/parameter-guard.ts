// Refuses protocol input PostgreSQL cannot hold before it reaches storage: a parameter with a
// control character is the client's `invalid_request`, and a value that cannot be an id is not found.
import type Provider from 'oidc-provider';
import type { errors } from 'oidc-provider';
import { CONTROL_CHARACTER } from '../core/text.js';

/** Longer than any id the provider generates or OrthID issues (client ids, codes, tokens, uids). */
const MAX_ID_LENGTH = 512;

function offending(params: Record<string, unknown>): string[] {
  return Object.entries(params)
    .filter(([, value]) =>
      (Array.isArray(value) ? value : [value]).some(
        (v) => typeof v === 'string' && CONTROL_CHARACTER.test(v),
      ),
    )
    .map(([name]) => name);
}

/**
 * Every endpoint assembles its parameters once, into `ctx.oidc.params`, before it looks anything
 * up or stores the request; the check sits on that assignment, so it covers every endpoint
 * (authorization, token, introspection, revocation, userinfo, PAR, end session) alike.
 */
export function refuseControlCharacters(
  provider: Provider,
  InvalidRequest: typeof errors.InvalidRequest,
): void {
  const stored = new WeakMap<object, unknown>();
  Object.defineProperty(provider.OIDCContext.prototype, 'params', {
    configurable: true,
    get(this: object) {
      return stored.get(this);
    },
    set(this: object, params: Record<string, unknown> | undefined) {
      const names = params ? offending({ ...params }) : [];
      // The error handlers read the parameters too (client_id, redirect_uri, state, to send the
      // error back to a registered redirect URI), so they get them without the refused values.
      for (const name of names) params![name] = undefined;
      stored.set(this, params);
      if (names.length > 0)
        throw new InvalidRequest(`${names.join(', ')} must not contain control characters`);
    },
  });
}

/** Whether `value` can be an id the adapter stores; others are answered "not found" unread. */
export function possibleId(value: unknown): value is string {
  return typeof value === 'string' && value.length <= MAX_ID_LENGTH && !CONTROL_CHARACTER.test(value);
}

type Payload = Record<string, unknown>;

interface AdapterInstance {
  upsert(id: string, payload: Payload, expiresIn?: number): Promise<void>;
  find(id: string): Promise<Payload | undefined>;
  findByUid(uid: string): Promise<Payload | undefined>;
  findByUserCode(userCode: string): Promise<Payload | undefined>;
  consume(id: string): Promise<void>;
  destroy(id: string): Promise<void>;
  revokeByGrantId(grantId: string): Promise<void>;
}

/**
 * The adapter behind a guard on every lookup key. Keys reach it from places parameters do not
 * pass through (a client id in HTTP Basic credentials, a bearer token in a header); one that
 * cannot exist is not found, which the provider answers with its own error (invalid_client,
 * invalid_token, invalid_grant), and the database never sees it.
 */
// biome-ignore lint/suspicious/noExplicitAny: TypeScript's mixin constructor must take any[].
export function guardAdapterIds<T extends new (...args: any[]) => AdapterInstance>(Adapter: T): T {
  return class GuardedAdapter extends Adapter {
    override async find(id: string) {
      return possibleId(id) ? super.find(id) : undefined;
    }
    override async findByUid(uid: string) {
      return possibleId(uid) ? super.findByUid(uid) : undefined;
    }
    override async findByUserCode(userCode: string) {
      return possibleId(userCode) ? super.findByUserCode(userCode) : undefined;
    }
    override async consume(id: string) {
      if (possibleId(id)) await super.consume(id);
    }
    override async destroy(id: string) {
      if (possibleId(id)) await super.destroy(id);
    }
    override async revokeByGrantId(grantId: string) {
      if (possibleId(grantId)) await super.revokeByGrantId(grantId);
    }
  };
}
