// The device flow's two limits (RFC 8628) the provider leaves to its host: guessing of user
// codes (§5.1), and devices polling faster than the interval (§3.5, slow_down).
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { appendAudit } from '../audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import type { TenantKeyring } from '../crypto/tenant-keys.js';
import type { SignInThrottle } from '../identity/sign-in-throttle.js';
import { type Database, withTenant, withTenantStatements } from '../storage/db/database.js';

export interface UserCodeThrottleDeps {
  db: Database;
  tenantId: string;
  keyring: TenantKeyring;
  throttle: SignInThrottle;
  clock: Clock;
  providerClass: typeof Provider;
}

/**
 * Raised instead of a lookup while the address is blocked; the user-code page shows the wait
 * (it reads `retryAfterSeconds`) with 429 and Retry-After, and nothing is looked up or stored.
 */
export class UserCodeThrottled extends Error {
  readonly status = 429;
  readonly statusCode = 429;
  readonly expose = true;
  readonly error_description: string;
  constructor(readonly retryAfterSeconds: number) {
    super('slow_down');
    this.name = 'UserCodeThrottled';
    this.error_description = `too many incorrect user codes from this address; retry in ${retryAfterSeconds} seconds`;
  }
}

/**
 * A user code is short, so wrong codes entered from an address are counted on the sign-in
 * throttle's PostgreSQL counters, and an address past its free failures waits before its next
 * code is even looked up. Wraps DeviceCode.findByUserCode: only the code entry page calls it.
 */
export function throttleUserCodes(provider: Provider, deps: UserCodeThrottleDeps): void {
  const DeviceCode = provider.DeviceCode as unknown as {
    findByUserCode(userCode: string, options?: unknown): Promise<unknown>;
  };
  const find = DeviceCode.findByUserCode.bind(DeviceCode);
  DeviceCode.findByUserCode = async (userCode, options) => {
    const ctx = (deps.providerClass as unknown as { ctx?: KoaContextWithOIDC }).ctx;
    const key = deps.throttle.userCodeKey(deps.keyring, ctx?.ip ?? '');
    const now = deps.clock.now();
    const wait = await withTenantStatements(deps.db, deps.tenantId, (q) =>
      deps.throttle.addressRetryAfter(q, key, now),
    );
    if (wait > 0) throw new UserCodeThrottled(wait);
    const code = await find(userCode, options);
    if (code) return code;
    await withTenant(deps.db, deps.tenantId, async (tx) => {
      const blocked = await deps.throttle.recordAddressFailure(tx, deps.tenantId, key, now);
      await appendAudit(
        tx,
        deps.keyring,
        {
          actor: 'anonymous',
          action: 'device.user_code',
          outcome: 'failure',
          ip: ctx?.ip,
          userAgent: ctx?.get('user-agent') || undefined,
          details: { reason: 'not_found', ...(blocked > 0 ? { retryAfterSeconds: blocked } : {}) },
        },
        deps.clock,
      );
    });
    return undefined;
  };
}

/** The polling interval a device is told to keep (RFC 8628 §3.2's default when none is sent). */
export const DEVICE_POLL_INTERVAL_SECONDS = 5;
const MAX_TRACKED_CODES = 10_000;

/**
 * A device polling its pending code sooner than the interval allows is answered slow_down (RFC
 * 8628 §3.5) and must add 5 seconds to its interval. The last poll is remembered per replica, in
 * memory, by the code's stored row id (never the code): the pace is a courtesy to the server,
 * not a secret's protection, so a device spread over replicas only polls a little faster.
 */
export function paceDevicePolling(
  provider: Provider,
  deps: { providerClass: typeof Provider; rowId(id: string): string; SlowDown: new () => Error },
): void {
  const DeviceCode = provider.DeviceCode as unknown as {
    find(id: string, options?: unknown): Promise<{ accountId?: string; error?: string } | undefined>;
  };
  const find = DeviceCode.find.bind(DeviceCode);
  const lastPoll = new Map<string, number>();
  DeviceCode.find = async (id, options) => {
    const code = await find(id, options);
    const ctx = (deps.providerClass as unknown as { ctx?: KoaContextWithOIDC }).ctx;
    if (!code || ctx?.oidc?.route !== 'token' || code.accountId || code.error) return code;
    const key = deps.rowId(id);
    const now = Date.now();
    const last = lastPoll.get(key);
    lastPoll.delete(key);
    if (lastPoll.size >= MAX_TRACKED_CODES) lastPoll.delete(lastPoll.keys().next().value!);
    lastPoll.set(key, now);
    if (last !== undefined && now - last < DEVICE_POLL_INTERVAL_SECONDS * 1000) throw new deps.SlowDown();
    return code;
  };
}
