// Passkeys (WebAuthn): registration and assertion ceremonies on @simplewebauthn/server, with the
// challenge kept server-side and single-use, the RP ID and origin taken from the public URL, and
// sign counters and backup flags checked. Every outcome is audited; a refusal changes nothing.
import { createHash, randomBytes } from 'node:crypto';
import {
  type AuthenticationResponseJSON,
  generateAuthenticationOptions,
  generateRegistrationOptions,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
} from '@simplewebauthn/server';
import { appendAudit } from '../audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import { type ErrorCode, OrthIdError } from '../core/errors.js';
import { isUuid, newId } from '../core/ids.js';
import type { Queryable } from '../core/sql.js';
import type { TenantKeyring, TenantKeys } from '../crypto/tenant-keys.js';
import { type Database, withTenant } from '../storage/db/database.js';
import { type ChallengePurpose, createPasskeysQueries, type PasskeyRow } from './passkeys.queries.js';
import { createUsersQueries } from './users.queries.js';

export interface PasskeysDeps {
  db: Database;
  tenantKeys: TenantKeys;
  clock: Clock;
  /** ORTHID_PUBLIC_URL: its host is the RP ID, its origin the only origin accepted. */
  publicUrl: string;
}

/** What a user and an administrator see of a passkey (a factor id): never the key itself. */
export interface PasskeySummary {
  id: string;
  name: string;
  createdAt: string;
  lastUsedAt: string | null;
  /** BE: the credential may be synced to other devices (a "synced passkey"). */
  backupEligible: boolean;
  /** BS: it is backed up now. */
  backedUp: boolean;
}

/** Where a ceremony happens: its challenge is bound to this (an interaction, an account page). */
export interface CeremonyContext {
  tenantId: string;
  /** E.g. `interaction:<uid>`; one outstanding challenge per binding and purpose. */
  binding: string;
  ip?: string;
  userAgent?: string;
  clientId?: string;
}

export interface PasskeyAssertion {
  userId: string;
  passkey: PasskeySummary;
  /** The authenticator verified the user (PIN or biometric) as well as their presence. */
  userVerified: boolean;
  /**
   * RFC 8176 methods this assertion proves: `hwk` for a device-bound key, `swk` for a synced
   * one (its private key leaves the hardware), `user` for the presence test, and `mfa` when the
   * authenticator also verified the user (possession plus a PIN or biometric).
   */
  amr: string[];
}

/** Whose passkey a registration stores: an existing user's, or that of the account it makes. */
export type PasskeyOwner =
  | { userId: string }
  | {
      /** Makes the account in the registration's transaction, once the response is verified; answers its id. */
      newAccount: (tx: Queryable) => Promise<string>;
    };

/** Why a ceremony failed, as the audit log records it. */
type FailureReason =
  | 'malformed'
  | 'challenge_missing'
  | 'origin_mismatch'
  | 'rp_id_mismatch'
  | 'unknown_credential'
  | 'wrong_user'
  | 'disabled'
  | 'invalid_response'
  | 'counter_regressed'
  | 'flags_inconsistent'
  | 'already_registered';

const CHALLENGE_TTL_MS = 5 * 60 * 1000;
const NAME_MAX = 100;

const MESSAGES: Record<FailureReason, { code: ErrorCode; message: string }> = {
  malformed: {
    code: 'passkey.verification_failed',
    message: 'The passkey response could not be read. Try again, or sign in with your password.',
  },
  challenge_missing: {
    code: 'passkey.challenge_missing',
    message: 'This passkey request has expired or was already used. Try again.',
  },
  origin_mismatch: {
    code: 'passkey.origin_mismatch',
    message:
      'This passkey response was made for another website. Use a passkey on this site’s own address, or sign in with your password.',
  },
  rp_id_mismatch: {
    code: 'passkey.origin_mismatch',
    message:
      'This passkey response was made for another website. Use a passkey on this site’s own address, or sign in with your password.',
  },
  unknown_credential: {
    code: 'passkey.unknown_credential',
    message: 'This passkey is not registered here. Choose another passkey, or sign in with your password.',
  },
  wrong_user: {
    code: 'passkey.unknown_credential',
    message: 'This passkey is not registered here. Choose another passkey, or sign in with your password.',
  },
  disabled: {
    code: 'passkey.verification_failed',
    message: 'The passkey could not be verified. Try again, or sign in with your password.',
  },
  invalid_response: {
    code: 'passkey.verification_failed',
    message: 'The passkey could not be verified. Try again, or sign in with your password.',
  },
  counter_regressed: {
    code: 'passkey.counter_regressed',
    message:
      'This passkey was refused because its authenticator may have been copied. Sign in another way and remove this passkey, or ask an administrator.',
  },
  flags_inconsistent: {
    code: 'passkey.flags_inconsistent',
    message:
      'This passkey was refused because the authenticator reported changed properties. Sign in another way and register the passkey again.',
  },
  already_registered: {
    code: 'passkey.already_registered',
    message: 'This passkey is registered already. Use it to sign in, or register another authenticator.',
  },
};

function failure(reason: FailureReason): OrthIdError {
  const { code, message } = MESSAGES[reason];
  return new OrthIdError(code, message, { details: { reason } });
}

export function summarise(row: PasskeyRow): PasskeySummary {
  return {
    id: row.id,
    name: row.name,
    createdAt: row.created_at.toISOString(),
    lastUsedAt: row.last_used_at?.toISOString() ?? null,
    backupEligible: row.backup_eligible,
    backedUp: row.backed_up,
  };
}

/** A user-given label: trimmed, 1 to 100 characters, no control characters. */
export function checkedPasskeyName(name: string | undefined): string {
  const trimmed = (name ?? '').trim();
  if (trimmed === '') return 'Passkey';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
  if (trimmed.length > NAME_MAX || /[\u0000-\u001f\u007f]/.test(trimmed)) {
    throw new OrthIdError(
      'passkey.name_invalid',
      `A passkey name is at most ${NAME_MAX} characters, without control characters. Choose a shorter name.`,
      { details: { field: 'name' } },
    );
  }
  return trimmed;
}

const B64URL = /^[A-Za-z0-9_-]*$/;
const isB64 = (v: unknown): v is string => typeof v === 'string' && B64URL.test(v);

/** The browser's JSON (from the page's hidden field), checked for shape before any library sees it. */
function parseResponse(raw: unknown, kind: 'create' | 'get'): Record<string, unknown> | undefined {
  let value: unknown = raw;
  if (typeof raw === 'string') {
    if (raw.length > 64 * 1024) return undefined;
    try {
      value = JSON.parse(raw);
    } catch {
      return undefined;
    }
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const r = v.response as Record<string, unknown> | undefined;
  if (!isB64(v.id) || v.id === '' || !isB64(v.rawId) || v.type !== 'public-key') return undefined;
  if (typeof r !== 'object' || r === null || !isB64(r.clientDataJSON)) return undefined;
  if (kind === 'create' && !isB64(r.attestationObject)) return undefined;
  if (kind === 'get' && (!isB64(r.authenticatorData) || !isB64(r.signature))) return undefined;
  if (kind === 'get' && r.userHandle !== undefined && r.userHandle !== null && !isB64(r.userHandle))
    return undefined;
  return v;
}

function clientData(
  response: Record<string, unknown>,
): { origin?: unknown; challenge?: unknown } | undefined {
  try {
    const json = Buffer.from(
      (response.response as { clientDataJSON: string }).clientDataJSON,
      'base64url',
    ).toString('utf8');
    const parsed = JSON.parse(json) as unknown;
    return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export function createPasskeys(deps: PasskeysDeps) {
  const url = new URL(deps.publicUrl);
  const rpId = url.hostname;
  const origin = url.origin;
  const rpIdHash = createHash('sha256').update(rpId).digest();

  const audit = (
    tx: Queryable,
    keyring: TenantKeyring,
    ctx: CeremonyContext,
    event: { action: string; userId?: string; reason?: FailureReason; details?: Record<string, unknown> },
  ) =>
    appendAudit(
      tx,
      keyring,
      {
        actor: event.reason || !event.userId ? 'anonymous' : `user:${event.userId}`,
        action: event.action,
        target: event.userId ? `user:${event.userId}` : undefined,
        outcome: event.reason ? 'failure' : 'success',
        ip: ctx.ip,
        userAgent: ctx.userAgent,
        details: {
          method: 'passkey',
          ...(event.reason ? { reason: event.reason } : {}),
          ...(ctx.clientId ? { clientId: ctx.clientId } : {}),
          ...event.details,
        },
      },
      deps.clock,
    );

  /** Origin and RP ID checks of our own, so a phishing site's response is named as such. */
  function originFailure(response: Record<string, unknown>, authData?: string): FailureReason | undefined {
    const data = clientData(response);
    if (!data) return 'malformed';
    if (data.origin !== origin) return 'origin_mismatch';
    if (authData !== undefined) {
      const bytes = Buffer.from(authData, 'base64url');
      if (bytes.length < 37 || !bytes.subarray(0, 32).equals(rpIdHash)) return 'rp_id_mismatch';
    }
    return undefined;
  }

  async function putChallenge(
    tx: Queryable,
    ctx: CeremonyContext,
    purpose: ChallengePurpose,
    challenge: string,
    owner: { userId: string | null; userHandle?: string },
  ) {
    await createPasskeysQueries(tx).putChallenge(
      ctx.tenantId,
      ctx.binding,
      purpose,
      challenge,
      owner,
      new Date(deps.clock.now().getTime() + CHALLENGE_TTL_MS),
    );
  }

  return {
    rpId,
    origin,

    /**
     * Options for navigator.credentials.create(); stores their challenge for `register`. Without
     * `user.id` they are for an account `register` is to make (`newAccount`): its random handle
     * waits with the challenge, and nothing of the account is stored before the response is verified.
     */
    async registrationOptions(
      ctx: CeremonyContext,
      user: { id?: string; name: string; displayName: string },
      rpName: string,
      /**
       * The account's only credential (a passkey sign-up): a discoverable key that verifies its
       * user, so passwordless sign-in can find it and it stands for two factors.
       */
      kind: { firstFactor?: boolean } = {},
    ): Promise<PublicKeyCredentialCreationOptionsJSON> {
      return withTenant(deps.db, ctx.tenantId, async (tx) => {
        const queries = createPasskeysQueries(tx);
        const fresh = randomBytes(32).toString('base64url');
        const handle =
          user.id === undefined ? fresh : await queries.ensureUserHandle(ctx.tenantId, user.id, fresh);
        const existing = user.id === undefined ? [] : await queries.forUser(user.id);
        const options = await generateRegistrationOptions({
          rpName,
          rpID: rpId,
          userName: user.name,
          userDisplayName: user.displayName,
          userID: new Uint8Array(Buffer.from(handle, 'base64url')),
          attestationType: 'none',
          timeout: CHALLENGE_TTL_MS,
          excludeCredentials: existing.map((c) => ({ id: c.credential_id, transports: c.transports })),
          authenticatorSelection: kind.firstFactor
            ? { residentKey: 'required', userVerification: 'required' }
            : { residentKey: 'preferred', userVerification: 'preferred' },
        });
        await putChallenge(
          tx,
          ctx,
          'register',
          options.challenge,
          user.id === undefined ? { userId: null, userHandle: handle } : { userId: user.id },
        );
        return options;
      });
    },

    /**
     * Verifies a registration response against the stored challenge and stores the passkey, for
     * `userId` or for the account `newAccount` makes (options made without a user id): it runs
     * only once the response is verified, in the same transaction, and answers the account's id.
     * `requireUserVerification` for a first factor; `within` runs in the same transaction once
     * the passkey is stored (what it or `newAccount` throws undoes the registration).
     */
    async register(
      ctx: CeremonyContext,
      input: PasskeyOwner & {
        response: unknown;
        name?: string;
        requireUserVerification?: boolean;
        within?: (tx: Queryable, userId: string) => Promise<void>;
      },
    ): Promise<PasskeySummary & { userId: string }> {
      const name = checkedPasskeyName(input.name);
      const known = 'userId' in input ? input.userId : undefined;
      const outcome = await withTenant(deps.db, ctx.tenantId, async (tx) => {
        const keyring = await deps.tenantKeys.forTenant(tx, ctx.tenantId);
        const queries = createPasskeysQueries(tx);
        const refuse = async (reason: FailureReason) => {
          await audit(tx, keyring, ctx, { action: 'passkey.registered', userId: known, reason });
          return failure(reason);
        };
        const challenge = await queries.takeChallenge(ctx.binding, 'register', deps.clock.now());
        // A challenge serves the registration it was made for: this user's, or a new account's.
        if (!challenge || (challenge.user_id ?? undefined) !== known) return refuse('challenge_missing');
        if (known === undefined && !challenge.user_handle) return refuse('challenge_missing');
        const response = parseResponse(input.response, 'create');
        if (!response) return refuse('malformed');
        const mismatch = originFailure(response);
        if (mismatch) return refuse(mismatch);
        let verified: Awaited<ReturnType<typeof verifyRegistrationResponse>>;
        try {
          verified = await verifyRegistrationResponse({
            response: response as unknown as RegistrationResponseJSON,
            expectedChallenge: challenge.challenge,
            expectedOrigin: origin,
            expectedRPID: rpId,
            requireUserVerification: input.requireUserVerification ?? false,
          });
        } catch {
          return refuse('invalid_response');
        }
        if (!verified.verified) return refuse('invalid_response');
        const info = verified.registrationInfo;
        let userId: string;
        if ('newAccount' in input) {
          // Refused before the account is made, so the refusal (and only it) is kept.
          if (await queries.byCredentialId(info.credential.id)) return refuse('already_registered');
          userId = await input.newAccount(tx);
          await queries.ensureUserHandle(ctx.tenantId, userId, challenge.user_handle!);
        } else {
          userId = input.userId;
        }
        const row = await queries.insert(
          {
            tenant_id: ctx.tenantId,
            id: newId(),
            user_id: userId,
            credential_id: info.credential.id,
            public_key: info.credential.publicKey,
            sign_count: info.credential.counter,
            transports: (info.credential.transports ?? []).filter((t) => /^[a-z-]{1,32}$/.test(t)),
            backup_eligible: info.credentialDeviceType === 'multiDevice',
            backed_up: info.credentialBackedUp,
            aaguid: info.aaguid,
            name,
          },
          deps.clock.now(),
        );
        if (!row) {
          // Registered by a concurrent request since the check: the new account goes back with it.
          if (known === undefined) throw failure('already_registered');
          return refuse('already_registered');
        }
        await audit(tx, keyring, ctx, {
          action: 'passkey.registered',
          userId,
          details: { passkey: row.id, backupEligible: row.backup_eligible, backedUp: row.backed_up },
        });
        await input.within?.(tx, userId);
        return { ...summarise(row), userId };
      });
      if (outcome instanceof OrthIdError) throw outcome;
      return outcome;
    },

    /**
     * Options for navigator.credentials.get(). Without `userId` (passwordless) no credentials are
     * listed, so the browser offers the discoverable ones and nothing tells whether an account
     * has passkeys; with it (a second factor) the user's own are listed.
     */
    async authenticationOptions(
      ctx: CeremonyContext,
      userId?: string,
    ): Promise<PublicKeyCredentialRequestOptionsJSON> {
      return withTenant(deps.db, ctx.tenantId, async (tx) => {
        const mine = userId ? await createPasskeysQueries(tx).forUser(userId) : [];
        const options = await generateAuthenticationOptions({
          rpID: rpId,
          timeout: CHALLENGE_TTL_MS,
          userVerification: userId ? 'preferred' : 'required',
          allowCredentials: mine.map((c) => ({ id: c.credential_id, transports: c.transports })),
        });
        await putChallenge(tx, ctx, 'authenticate', options.challenge, { userId: userId ?? null });
        return options;
      });
    },

    /**
     * Verifies an assertion against the stored challenge: a passwordless sign-in when the
     * challenge named no user (user verification required), else a second factor for that user.
     */
    async authenticate(
      ctx: CeremonyContext,
      input: { response: unknown /** The second factor's user; absent: passwordless. */; userId?: string },
    ): Promise<PasskeyAssertion> {
      const outcome = await withTenant(deps.db, ctx.tenantId, async (tx) => {
        const keyring = await deps.tenantKeys.forTenant(tx, ctx.tenantId);
        const queries = createPasskeysQueries(tx);
        const refuse = async (reason: FailureReason, userId?: string, details?: Record<string, unknown>) => {
          await audit(tx, keyring, ctx, { action: 'user.sign_in', userId, reason, details });
          return failure(reason);
        };
        const challenge = await queries.takeChallenge(ctx.binding, 'authenticate', deps.clock.now());
        // A challenge serves the ceremony it was made for: a second factor for that user, or a
        // passwordless sign-in, never the one in place of the other.
        if (!challenge || (challenge.user_id ?? undefined) !== input.userId)
          return refuse('challenge_missing', input.userId);
        const expectedUser = input.userId;
        const response = parseResponse(input.response, 'get');
        if (!response) return refuse('malformed', expectedUser);
        const r = response.response as { authenticatorData: string; userHandle?: string | null };
        const mismatch = originFailure(response, r.authenticatorData);
        if (mismatch) return refuse(mismatch, expectedUser);
        const row = await queries.byCredentialId(response.id as string, true);
        if (!row) return refuse('unknown_credential', expectedUser);
        if (expectedUser && row.user_id !== expectedUser) return refuse('wrong_user', expectedUser);
        // The authenticator's user handle, when it sends one, must be the credential owner's.
        if (r.userHandle) {
          const owner = await queries.userByHandle(r.userHandle);
          if (owner !== row.user_id) return refuse('wrong_user', expectedUser);
        } else if (!expectedUser) {
          return refuse('malformed');
        }
        const user = await createUsersQueries(tx).byId(row.user_id);
        // An account waiting for its address signs in with nothing (a passkey sign-up stores its
        // passkey only as it activates the account; this holds should one get there otherwise).
        if (user?.status !== 'active' || user.locked_at !== null || user.awaiting_verification)
          return refuse('disabled', row.user_id);

        let verified: Awaited<ReturnType<typeof verifyAuthenticationResponse>>;
        try {
          verified = await verifyAuthenticationResponse({
            response: response as unknown as AuthenticationResponseJSON,
            expectedChallenge: challenge.challenge,
            expectedOrigin: origin,
            expectedRPID: rpId,
            // The counter is compared below, after the signature, so a regression is named.
            credential: { id: row.credential_id, publicKey: new Uint8Array(row.public_key), counter: 0 },
            requireUserVerification: !expectedUser,
          });
        } catch {
          return refuse('invalid_response', row.user_id, { passkey: row.id });
        }
        if (!verified.verified) return refuse('invalid_response', row.user_id, { passkey: row.id });
        const info = verified.authenticationInfo;
        const stored = Number(row.sign_count);
        // A counter that does not move forward means a second copy of the key signs as well.
        if ((info.newCounter > 0 || stored > 0) && info.newCounter <= stored) {
          return refuse('counter_regressed', row.user_id, {
            passkey: row.id,
            storedCount: stored,
            presentedCount: info.newCounter,
          });
        }
        // Backup eligibility is fixed when a credential is made; a change is not the same key's.
        const backupEligible = info.credentialDeviceType === 'multiDevice';
        if (backupEligible !== row.backup_eligible) {
          return refuse('flags_inconsistent', row.user_id, { passkey: row.id });
        }
        const now = deps.clock.now();
        await queries.recordUse(row.id, info.newCounter, info.credentialBackedUp, now);
        if (!expectedUser) await createUsersQueries(tx).recordSignIn(row.user_id, now);
        await audit(tx, keyring, ctx, {
          action: 'user.sign_in',
          userId: row.user_id,
          details: {
            passkey: row.id,
            userVerified: info.userVerified,
            ...(expectedUser ? { step: 'second_factor' } : {}),
          },
        });
        const amr = [row.backup_eligible ? 'swk' : 'hwk', 'user', ...(info.userVerified ? ['mfa'] : [])];
        return {
          userId: row.user_id,
          passkey: summarise({ ...row, backed_up: info.credentialBackedUp, last_used_at: now }),
          userVerified: info.userVerified,
          amr,
        } satisfies PasskeyAssertion;
      });
      if (outcome instanceof OrthIdError) throw outcome;
      return outcome;
    },

    async list(tx: Queryable, userId: string): Promise<PasskeySummary[]> {
      if (!isUuid(userId)) return [];
      return (await createPasskeysQueries(tx).forUser(userId)).map(summarise);
    },
  };
}

export type Passkeys = ReturnType<typeof createPasskeys>;
