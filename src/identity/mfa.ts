// Second factors of a tenant's users: TOTP enrolment bound to the sign-in that began it, code
// verification (each code accepted once, guessing throttled with the sign-in counters), recovery
// codes, and the administrator's view and changes. Every outcome, failures too, is audited.
import QRCode from 'qrcode';
import { appendAudit } from '../audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import { OrthIdError } from '../core/errors.js';
import { isUuid, newId } from '../core/ids.js';
import type { Queryable } from '../core/sql.js';
import type { TenantKeyring, TenantKeys } from '../crypto/tenant-keys.js';
import { type Database, withTenant } from '../storage/db/database.js';
import { createMfaQueries, type FactorRow } from './mfa.queries.js';
import type { FactorKind, SecondFactorMethod } from './mfa-factors.js';
import { type MfaPolicy, type MfaRequirement, mfaPolicyOf, requiredForEveryone } from './mfa-policy.js';
import { newRecoveryCodes, normaliseRecoveryCode, recoveryCodeHash } from './recovery-codes.js';
import type { SignInThrottle, ThrottleKeys } from './sign-in-throttle.js';
import { matchTotpStep, newTotpSecret, normaliseTotpCode, totpUri } from './totp.js';

export interface MfaDeps {
  db: Database;
  tenantKeys: TenantKeys;
  /** The sign-in throttle: a second factor's guesses count per account and per address like passwords. */
  throttle: SignInThrottle;
  clock: Clock;
}

/** A factor as an administrator or its user sees it: never its secret. */
export interface Factor {
  id: string;
  kind: string;
  name: string | null;
  createdAt: string;
  lastUsedAt: string | null;
}

/** Who is at the keyboard: the audit log records where each attempt came from. */
export interface Attempt {
  tenantId: string;
  userId: string;
  ip: string;
  userAgent?: string;
  clientId?: string;
}

export interface TotpEnrolment {
  factorId: string;
  /** Base32, for typing into an app that cannot scan. */
  secret: string;
  uri: string;
  /** The URI as a QR code, an SVG element to inline (no script, no external resource). */
  qrSvg: string;
}

/** `recoveryCodes`: the user's new set, shown once; undefined when they kept their unused codes. */
export interface TotpEnrolled {
  recoveryCodes: string[] | undefined;
}

const FACTORS = 'user_factors';
/** As long as a sign-in interaction lives (oidc-provider's Interaction TTL). */
const PENDING_MS = 60 * 60 * 1000;
const SECRET = 'secret';

const iso = (value: Date | null) => (value === null ? null : new Date(value).toISOString());

function present(row: FactorRow): Factor {
  return {
    id: row.id,
    kind: row.kind,
    name: row.name,
    createdAt: new Date(row.created_at).toISOString(),
    lastUsedAt: iso(row.last_used_at),
  };
}

function throttled(retryAfterSeconds: number): OrthIdError {
  return new OrthIdError(
    'auth.throttled',
    `Too many incorrect codes. Wait ${retryAfterSeconds} second${retryAfterSeconds === 1 ? '' : 's'} before trying again.`,
    { details: { retryAfterSeconds } },
  );
}

const invalidCode = () =>
  new OrthIdError(
    'mfa.code_invalid',
    'That code is not correct or has expired. Enter the code your authenticator app shows now.',
  );
const replayedCode = () =>
  new OrthIdError(
    'mfa.code_replayed',
    'That code was already used. Wait for your authenticator app to show a new code, then enter it.',
  );
const factorNotFound = () =>
  new OrthIdError(
    'mfa.factor_not_found',
    'No such factor for this user; list the user’s factors to see them.',
  );

export function createMfa(deps: MfaDeps) {
  const { clock, throttle } = deps;

  const audit = (
    tx: Queryable,
    keyring: TenantKeyring,
    entry: {
      actor: string;
      action: string;
      userId: string;
      failure?: string;
      details?: Record<string, unknown>;
      attempt?: Attempt;
    },
  ) =>
    appendAudit(
      tx,
      keyring,
      {
        actor: entry.actor,
        action: entry.action,
        target: `user:${entry.userId}`,
        outcome: entry.failure ? 'failure' : 'success',
        ip: entry.attempt?.ip,
        userAgent: entry.attempt?.userAgent,
        details: {
          ...entry.details,
          ...(entry.failure ? { reason: entry.failure } : {}),
          ...(entry.attempt?.clientId ? { clientId: entry.attempt.clientId } : {}),
        },
      },
      clock,
    );

  const openSecret = (keyring: TenantKeyring, row: FactorRow) =>
    keyring.open(row.secret!, { table: FACTORS, column: SECRET, rowId: row.id });

  /** Binds a pending enrolment to the interaction that began it (its id is a bearer secret: hashed). */
  const bindingOf = (keyring: TenantKeyring, interactionUid: string) =>
    keyring.index('mfa.enrolment', interactionUid);

  /**
   * Runs one guess at a code: refused unthrottled when the counters block, otherwise `verify`
   * inside the transaction that records its outcome. A failure's counters and audit event commit;
   * the error is thrown after.
   */
  async function guarded<T>(
    attempt: Attempt,
    action: string,
    details: Record<string, unknown>,
    verify: (
      tx: Queryable,
      keyring: TenantKeyring,
      now: Date,
    ) => Promise<{ ok: T; audit?: Record<string, unknown> } | { error: OrthIdError; reason: string }>,
  ): Promise<T> {
    const outcome = await withTenant(deps.db, attempt.tenantId, async (tx) => {
      const keyring = await deps.tenantKeys.forTenant(tx, attempt.tenantId);
      const keys: ThrottleKeys = throttle.secondFactorKeys(keyring, attempt.userId, attempt.ip);
      const now = clock.now();
      const state = await throttle.state(tx, keys, now, true);
      const actor = `user:${attempt.userId}`;
      if (state.retryAfterSeconds > 0) {
        await audit(tx, keyring, {
          actor,
          action,
          userId: attempt.userId,
          failure: 'throttled',
          attempt,
          details: { ...details, retryAfterSeconds: state.retryAfterSeconds },
        });
        return throttled(state.retryAfterSeconds);
      }
      const result = await verify(tx, keyring, now);
      if (!('error' in result)) {
        if (state.accountFailures > 0) await throttle.resetAccount(tx, keys.account);
        await audit(tx, keyring, {
          actor,
          action,
          userId: attempt.userId,
          attempt,
          details: { ...details, ...result.audit },
        });
        return { value: result.ok };
      }
      const after = await throttle.recordFailure(tx, attempt.tenantId, keys, now);
      await audit(tx, keyring, {
        actor,
        action,
        userId: attempt.userId,
        failure: result.reason,
        attempt,
        details:
          after.retryAfterSeconds > 0 ? { ...details, retryAfterSeconds: after.retryAfterSeconds } : details,
      });
      return result.error;
    });
    if (outcome instanceof OrthIdError) throw outcome;
    return outcome.value;
  }

  /** A malformed code is refused before it counts as a guess, but still audited. */
  async function malformed(
    attempt: Attempt,
    action: string,
    details: Record<string, unknown>,
    error: unknown,
  ): Promise<never> {
    await withTenant(deps.db, attempt.tenantId, async (tx) =>
      audit(tx, await deps.tenantKeys.forTenant(tx, attempt.tenantId), {
        actor: `user:${attempt.userId}`,
        action,
        userId: attempt.userId,
        failure: 'malformed',
        attempt,
        details,
      }),
    );
    throw error;
  }

  /** A new set of recovery codes, stored only as keyed hashes; the old set stops working. */
  async function replaceRecoveryCodes(
    tx: Queryable,
    keyring: TenantKeyring,
    tenantId: string,
    userId: string,
  ): Promise<string[]> {
    const codes = newRecoveryCodes();
    await createMfaQueries(tx).replaceRecoveryCodes(
      tenantId,
      userId,
      codes.map((c) => recoveryCodeHash(keyring, userId, normaliseRecoveryCode(c))),
      clock.now(),
    );
    return codes;
  }

  async function regenerateRecoveryCodes(
    tx: Queryable,
    tenantId: string,
    userId: string,
    actor: string,
  ): Promise<string[]> {
    const keyring = await deps.tenantKeys.forTenant(tx, tenantId);
    if ((await createMfaQueries(tx).ofUser(userId, 'active')).length === 0) throw factorNotFound();
    const codes = await replaceRecoveryCodes(tx, keyring, tenantId, userId);
    await audit(tx, keyring, {
      actor,
      action: 'user.mfa_recovery_codes_regenerated',
      userId,
      details: { factor: 'recovery_code', count: codes.length },
    });
    return codes;
  }

  function parse<T>(parse: () => T, onError: (error: unknown) => Promise<never>): Promise<T> {
    try {
      return Promise.resolve(parse());
    } catch (error) {
      return onError(error);
    }
  }

  return {
    /** The tenant's policy as stored (off when never set). */
    policyOf: mfaPolicyOf,

    /**
     * What the tenant asks of this user at sign-in: `required` (enrol if they have no factor),
     * `optional` (offer it) or `off`. An administrator's "must re-enrol" makes it `required`.
     */
    async requirement(tx: Queryable, tenantId: string, userId: string): Promise<MfaRequirement> {
      const queries = createMfaQueries(tx);
      if (await queries.reenrolFlag(userId)) return 'required';
      // Read in the transaction, not from a cached tenant: a policy change applies at once.
      const policy = mfaPolicyOf({ settings: await queries.tenantSettings(tenantId) });
      if (policy.mode !== 'required') return policy.mode;
      if (requiredForEveryone(policy)) return 'required';
      return (await queries.inScope(userId, policy.organisations, policy.roles)) ? 'required' : 'off';
    },

    /**
     * Whether a second factor is enforced for this user (or, without one, for every user of the
     * tenant), so the password policy's shorter minimum applies.
     */
    async enforcedFor(tx: Queryable, tenantId: string, userId?: string): Promise<boolean> {
      const policy = mfaPolicyOf({ settings: await createMfaQueries(tx).tenantSettings(tenantId) });
      if (requiredForEveryone(policy)) return true;
      if (policy.mode !== 'required' || userId === undefined) return false;
      return createMfaQueries(tx).inScope(userId, policy.organisations, policy.roles);
    },

    /** The kinds of the user's confirmed factors (what the second-factor step can offer). */
    async activeKinds(tx: Queryable, userId: string): Promise<FactorKind[]> {
      const rows = await createMfaQueries(tx).ofUser(userId, 'active');
      return [...new Set(rows.map((r) => r.kind as FactorKind))];
    },

    async unusedRecoveryCodes(tx: Queryable, userId: string): Promise<number> {
      return createMfaQueries(tx).unusedRecoveryCodes(userId);
    },

    /**
     * Starts (or, from the same interaction, shows again) a TOTP enrolment: a pending factor
     * with a new sealed secret, confirmable only from `interactionUid`.
     */
    async beginTotpEnrolment(input: {
      tenantId: string;
      userId: string;
      interactionUid: string;
      issuer: string;
      account: string;
      /** Show this pending enrolment again (after a wrong code) instead of starting another. */
      factorId?: string;
    }): Promise<TotpEnrolment> {
      const { factorId, secret } = await withTenant(deps.db, input.tenantId, async (tx) => {
        const keyring = await deps.tenantKeys.forTenant(tx, input.tenantId);
        const queries = createMfaQueries(tx);
        const binding = bindingOf(keyring, input.interactionUid);
        if (input.factorId) {
          const row = await queries.byId(input.factorId);
          if (row && row.user_id === input.userId && row.status === 'pending' && row.binding === binding) {
            return { factorId: row.id, secret: openSecret(keyring, row) };
          }
        }
        // Enrolments abandoned longer ago than an interaction lives can never be confirmed.
        await queries.deletePending(input.userId, { before: new Date(clock.now().getTime() - PENDING_MS) });
        const id = newId();
        const secret = newTotpSecret();
        await queries.insertPending({
          tenant_id: input.tenantId,
          id,
          user_id: input.userId,
          kind: 'totp',
          name: 'Authenticator app',
          secret: keyring.seal(secret, { table: FACTORS, column: SECRET, rowId: id }),
          binding,
        });
        await audit(tx, keyring, {
          actor: `user:${input.userId}`,
          action: 'user.mfa_enrolment_started',
          userId: input.userId,
          details: { factor: 'totp', factorId: id },
        });
        return { factorId: id, secret };
      });
      const uri = totpUri(secret, input.issuer, input.account);
      const qrSvg = await QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
      return { factorId, secret, uri, qrSvg };
    },

    /**
     * Confirms a pending TOTP enrolment with a correct code from the interaction that began it. A
     * user without unused recovery codes gets a new set (shown once, stored only as hashes); one who
     * has them keeps them, so a factor added beside another does not void the codes they saved.
     * A code for another interaction's enrolment is refused (`mfa.enrolment_foreign`) and changes nothing.
     */
    async confirmTotpEnrolment(
      attempt: Attempt & { factorId: string; interactionUid: string; code: string },
    ): Promise<TotpEnrolled> {
      const action = 'user.mfa_enrolled';
      const details = { factor: 'totp' };
      const code = await parse(
        () => normaliseTotpCode(attempt.code),
        (e) => malformed(attempt, action, details, e),
      );
      return guarded<TotpEnrolled>(attempt, action, details, async (tx, keyring, now) => {
        const queries = createMfaQueries(tx);
        const row = isUuid(attempt.factorId) ? await queries.byId(attempt.factorId, true) : undefined;
        if (!row || row.user_id !== attempt.userId || row.status !== 'pending') {
          return {
            reason: 'no_pending_enrolment',
            error: new OrthIdError(
              'mfa.step_expired',
              'This enrolment is no longer open. Sign in again to set up your authenticator app.',
            ),
          };
        }
        if (row.binding !== bindingOf(keyring, attempt.interactionUid)) {
          return {
            reason: 'foreign_enrolment',
            error: new OrthIdError(
              'mfa.enrolment_foreign',
              'This enrolment was started in another sign-in. Finish it there, or set up your authenticator app again here.',
            ),
          };
        }
        const step = matchTotpStep(openSecret(keyring, row), code, now);
        if (step === null) return { reason: 'invalid_code', error: invalidCode() };
        await queries.confirm(row.id, step, now);
        await queries.deletePending(attempt.userId, { keep: row.id });
        await queries.setReenrolFlag(attempt.userId, false);
        if ((await queries.unusedRecoveryCodes(attempt.userId)) > 0) {
          return { ok: { recoveryCodes: undefined }, audit: { factorId: row.id, recoveryCodes: 0 } };
        }
        const recoveryCodes = await replaceRecoveryCodes(tx, keyring, attempt.tenantId, attempt.userId);
        return { ok: { recoveryCodes }, audit: { factorId: row.id, recoveryCodes: recoveryCodes.length } };
      });
    },

    /**
     * Checks a code from the user's authenticator app at sign-in. Each code is accepted once:
     * a code for a step at or before the last accepted one is `mfa.code_replayed`.
     */
    async verifyTotp(
      attempt: Attempt & { code: string },
      /** Checks the code without spending it (the deployment's own canary check, run at any rate). */
      options: { probe?: boolean } = {},
    ): Promise<{ factorId: string; method: SecondFactorMethod }> {
      const action = 'user.mfa_verified';
      const details = options.probe ? { factor: 'totp', probe: true } : { factor: 'totp' };
      const code = await parse(
        () => normaliseTotpCode(attempt.code),
        (e) => malformed(attempt, action, details, e),
      );
      return guarded<{ factorId: string; method: SecondFactorMethod }>(
        attempt,
        action,
        details,
        async (tx, keyring, now) => {
          const queries = createMfaQueries(tx);
          const factors = (await queries.ofUser(attempt.userId, 'active', true)).filter(
            (f) => f.kind === 'totp',
          );
          for (const factor of factors) {
            const step = matchTotpStep(openSecret(keyring, factor), code, now);
            if (step === null) continue;
            if (options.probe) return { ok: { factorId: factor.id, method: 'totp' as const } };
            if (factor.last_step !== null && step <= Number(factor.last_step)) {
              return { reason: 'replayed_code', error: replayedCode() };
            }
            await queries.recordUse(factor.id, step, now);
            return { ok: { factorId: factor.id, method: 'totp' as const }, audit: { factorId: factor.id } };
          }
          return { reason: factors.length === 0 ? 'no_factor' : 'invalid_code', error: invalidCode() };
        },
      );
    },

    /**
     * Records a sign-in completed by its second step (a factor proved, or an optional enrolment
     * declined) after a password recorded as `user.password_verified`: `user.sign_in`, with the
     * methods that made it (amr) and the context class it earned (acr).
     */
    async recordSignIn(
      attempt: Attempt,
      /** `passwordless`: the passkey was the whole proof (a passkey sign-up's first sign-in). */
      outcome: { method?: SecondFactorMethod; amr: string[]; acr: string; passwordless?: boolean },
    ): Promise<void> {
      await withTenant(deps.db, attempt.tenantId, async (tx) =>
        audit(tx, await deps.tenantKeys.forTenant(tx, attempt.tenantId), {
          actor: `user:${attempt.userId}`,
          action: 'user.sign_in',
          userId: attempt.userId,
          attempt,
          details: {
            ...(outcome.passwordless
              ? { method: outcome.method }
              : { method: 'password', ...(outcome.method ? { secondFactor: outcome.method } : {}) }),
            amr: outcome.amr,
            acr: outcome.acr,
          },
        }),
      );
    },

    /** Spends one recovery code in place of the second factor; says how many remain. */
    async useRecoveryCode(attempt: Attempt & { code: string }): Promise<{ remaining: number }> {
      const action = 'user.mfa_recovery_code_used';
      const details = { factor: 'recovery_code' };
      const code = await parse(
        () => normaliseRecoveryCode(attempt.code),
        (e) => malformed(attempt, action, details, e),
      );
      return guarded<{ remaining: number }>(attempt, action, details, async (tx, keyring, now) => {
        const spent = await createMfaQueries(tx).spendRecoveryCode(
          attempt.userId,
          recoveryCodeHash(keyring, attempt.userId, code),
          now,
        );
        if (spent.outcome === 'spent')
          return { ok: { remaining: spent.remaining }, audit: { remaining: spent.remaining } };
        if (spent.outcome === 'used') {
          return {
            reason: 'recovery_code_reused',
            error: new OrthIdError(
              'mfa.recovery_code_used',
              'That recovery code was already used; each works once. Enter another of your codes.',
            ),
          };
        }
        return {
          reason: 'invalid_recovery_code',
          error: new OrthIdError(
            'mfa.code_invalid',
            'That recovery code is not correct. Check it and try again.',
          ),
        };
      });
    },

    /**
     * Gives a user a confirmed TOTP factor without an enrolment, inside the caller's transaction:
     * for a factor whose secret an operator holds (the backup canary's), never for people.
     */
    async provisionTotp(tx: Queryable, tenantId: string, userId: string, actor: string): Promise<string> {
      const keyring = await deps.tenantKeys.forTenant(tx, tenantId);
      const queries = createMfaQueries(tx);
      const id = newId();
      const secret = newTotpSecret();
      await queries.insertPending({
        tenant_id: tenantId,
        id,
        user_id: userId,
        kind: 'totp',
        name: 'Provisioned',
        secret: keyring.seal(secret, { table: FACTORS, column: SECRET, rowId: id }),
        binding: 'provisioned',
      });
      await queries.confirm(id, null, clock.now());
      await audit(tx, keyring, {
        actor,
        action: 'user.mfa_enrolled',
        userId,
        details: { factor: 'totp', factorId: id },
      });
      return secret;
    },

    /** A new set of recovery codes for a user with a factor; the old set stops working. */
    regenerateRecoveryCodes,

    /**
     * The recovery codes an account's first factor brings, shown once: undefined when the user
     * has unused codes, which stay valid (a factor added beside another keeps them).
     */
    async firstRecoveryCodes(
      tx: Queryable,
      tenantId: string,
      userId: string,
      actor: string,
    ): Promise<string[] | undefined> {
      if ((await createMfaQueries(tx).unusedRecoveryCodes(userId)) > 0) return undefined;
      return regenerateRecoveryCodes(tx, tenantId, userId, actor);
    },

    /** The user's confirmed factors, never their secrets; `user.not_found` for no such user. */
    async listFactors(
      tx: Queryable,
      userId: string,
    ): Promise<{ factors: Factor[]; recoveryCodesLeft: number; mustReenrol: boolean }> {
      const queries = createMfaQueries(tx);
      const flag = isUuid(userId) ? await queries.reenrolFlag(userId) : undefined;
      if (flag === undefined) throw new OrthIdError('user.not_found', `No user ${userId} in this tenant.`);
      return {
        factors: (await queries.ofUser(userId, 'active')).map(present),
        recoveryCodesLeft: await queries.unusedRecoveryCodes(userId),
        mustReenrol: flag,
      };
    },

    /** Removes a (lost) factor; with the user's last factor go their recovery codes. `mfa.factor_not_found` otherwise. */
    async removeFactor(tx: Queryable, tenantId: string, userId: string, factorId: string, actor: string) {
      const keyring = await deps.tenantKeys.forTenant(tx, tenantId);
      const queries = createMfaQueries(tx);
      const removed = isUuid(userId) && isUuid(factorId) ? await queries.delete(userId, factorId) : undefined;
      // Refused like every admin request that names nothing: not audited, nothing written.
      if (!removed) throw factorNotFound();
      const left = await queries.ofUser(userId, 'active');
      const codes = left.length === 0 ? await queries.deleteRecoveryCodes(userId) : 0;
      await audit(tx, keyring, {
        actor,
        action: 'user.mfa_factor_removed',
        userId,
        details: { factor: removed.kind, factorId, recoveryCodesRemoved: codes },
      });
      return present(removed);
    },

    /**
     * Removes every factor and recovery code of the user and walks them through enrolment at
     * their next sign-in, whatever the tenant's policy.
     */
    async requireReenrolment(tx: Queryable, tenantId: string, userId: string, actor: string) {
      const keyring = await deps.tenantKeys.forTenant(tx, tenantId);
      const queries = createMfaQueries(tx);
      if (!isUuid(userId) || !(await queries.setReenrolFlag(userId, true))) {
        throw new OrthIdError('user.not_found', `No user ${userId} in this tenant.`);
      }
      const removed = await queries.deleteAll(userId);
      await queries.deleteRecoveryCodes(userId);
      await audit(tx, keyring, {
        actor,
        action: 'user.mfa_reenrolment_required',
        userId,
        details: { factorsRemoved: removed.map((f) => f.kind) },
      });
      return { mustReenrol: true, factorsRemoved: removed.length };
    },

    /** Organisation and role names (or ids) as the ids a policy stores; unknown ones are refused. */
    async resolveScope(
      tx: Queryable,
      scope: { organisations: string[]; roles: string[] },
    ): Promise<Pick<MfaPolicy, 'organisations' | 'roles'>> {
      const queries = createMfaQueries(tx);
      const resolve = async (
        names: string[],
        found: { id: string; name: string }[],
        what: string,
      ): Promise<string[]> => {
        const missing = names.filter((n) => !found.some((f) => f.id === n || f.name === n));
        if (missing.length > 0) {
          throw new OrthIdError(
            'mfa.policy_invalid',
            `No ${what} named ${missing.map((m) => `"${m}"`).join(', ')}.`,
            {
              details: { field: what === 'organisation' ? 'organisations' : 'roles' },
            },
          );
        }
        return [...new Set(found.map((f) => f.id))].sort();
      };
      return {
        organisations:
          scope.organisations.length === 0
            ? []
            : await resolve(
                scope.organisations,
                await queries.organisationIdsByName(scope.organisations),
                'organisation',
              ),
        roles:
          scope.roles.length === 0
            ? []
            : await resolve(scope.roles, await queries.roleIdsByName(scope.roles), 'role'),
      };
    },
  };
}

export type Mfa = ReturnType<typeof createMfa>;
