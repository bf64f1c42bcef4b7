// Self sign-up and invitations: a new account from the hosted page waits until a mailed link or
// code proves its address; an invitation's link proves it up front. Never says whether an address has an account.
//
// An invitation accepted with a passkey has its address proved already, so nothing waits: the
// account, its membership and the invitation's use are made in the transaction that stores the
// passkey, once its registration is verified (`acceptInvitationWithPasskey`); a failed ceremony
// leaves no account and a link that still works.
//
// A passkey sign-up proves the address first and registers the passkey after, as the account's
// only credential: the account is created awaiting verification with no password (and expires
// like any unverified one), the mailed code or link proves the address without activating it,
// and the passkey's registration activates it in the same transaction (`activateWithPasskey`).
// The other order (a passkey stored on an account whose address nobody proved) would leave a
// credential that signs in for an address its holder may not own; this order never stores a
// credential before the proof, and never leaves an active account that nothing can sign in to.
import { appendAudit } from '../audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import { isOrthIdError, OrthIdError } from '../core/errors.js';
import { isUuid } from '../core/ids.js';
import type { Queryable } from '../core/sql.js';
import { normaliseEmail } from '../crypto/blind-index.js';
import type { TenantKeys } from '../crypto/tenant-keys.js';
import type { InlineImageRef, Mail } from '../mail/mail.js';
import { type Database, withTenant } from '../storage/db/database.js';
import type { Memberships } from '../tenancy/memberships.js';
import { createOrganisationsQueries } from '../tenancy/organisations.queries.js';
import type { AccountToken, AccountTokens } from './account-tokens.js';
import { wrongCode } from './account-tokens.js';
import { type SignInThrottle, throttledAddress } from './sign-in-throttle.js';
import type { Users } from './users.js';
import { createUsersQueries } from './users.queries.js';

/** A tenant's sign-up settings as stored in its `settings` (off unless turned on). */
export interface SignUpSettings {
  enabled: boolean;
  /** Allowed e-mail domains, lower case; empty: any. */
  domains: string[];
}

export function signUpSettingsOf(tenant: { settings: Readonly<Record<string, unknown>> }): SignUpSettings {
  const domains = tenant.settings.signUpDomains;
  return {
    enabled: tenant.settings.signUp === true,
    domains: Array.isArray(domains) ? domains.filter((d): d is string => typeof d === 'string') : [],
  };
}

/** What a mail is about; the words, language and look are the composer's (src/web/mails). */
export interface AccountMailRequest {
  kind: 'verify-email' | 'account-exists' | 'invitation';
  /** The reader's language (a BCP 47 tag); absent: the tenant's default. */
  language?: string;
  tenant: { displayName: string; settings: Readonly<Record<string, unknown>> };
  /** The mail's one link: verify or accept the invitation (none for an existing account). */
  url?: string;
  code?: string;
  /** How long the link works, in hours. */
  validHours?: number;
  organisation?: string;
}

export type ComposeAccountMail = (request: AccountMailRequest) => {
  subject: string;
  text: string;
  html: string;
  /** The images the HTML shows (the tenant's logo). */
  inline?: readonly InlineImageRef[];
};

/** The tenant as the flows need it: the shape of `Tenant`, not its module. */
export interface SignUpTenant {
  id: string;
  slug: string;
  displayName: string;
  settings: Readonly<Record<string, unknown>>;
}

export interface SignUpDeps {
  db: Database;
  tenantKeys: TenantKeys;
  clock: Clock;
  users: Users;
  tokens: AccountTokens;
  mail: Mail;
  throttle: SignInThrottle;
  memberships: Pick<Memberships, 'add'>;
  /** Whether the tenant requires a second factor (the password policy's shorter minimum). */
  mfaEnforced(tx: Queryable, tenantId: string): Promise<boolean>;
  compose: ComposeAccountMail;
  publicUrl: string;
}

export interface SignUpRequest {
  email: string;
  name: string;
  password: string;
  /** The client's address (after trusted proxies), for the throttle and the audit log. */
  ip: string;
  userAgent?: string;
  language?: string;
  /** The authorization request the page belongs to: the verified page leads back to it. */
  interaction?: string;
}

/** A proved address: an account ready, or (`passkeyNeeded`) a passkey sign-up's next step. */
export interface Verified {
  userId: string;
  interaction?: string;
  passkeyNeeded: boolean;
  method: 'link' | 'code';
}

/** What the "check your mail" page needs: the token its code form names (real or not). */
export interface MailSent {
  tokenId: string;
}

export interface Invitation {
  id: string;
  organisationId: string | null;
  expiresAt: string;
}

const VERIFY_TTL_SECONDS = 24 * 3600;
const INVITATION_TTL_SECONDS = 7 * 24 * 3600;
/** Verification mails an address may be sent per window, whoever asks (sign-up and resend together). */
export const MAILS_PER_ADDRESS = 3;
export const ADDRESS_WINDOW_SECONDS = 3600;
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const MAX_NAME = 200;

function throttled(retryAfterSeconds: number): OrthIdError {
  return new OrthIdError(
    'signup.throttled',
    `Too many requests. Wait ${retryAfterSeconds} seconds before trying again.`,
    { details: { retryAfterSeconds } },
  );
}

function passkeyStepExpired(): OrthIdError {
  return new OrthIdError(
    'signup.passkey_step_expired',
    'This step of the sign-up has expired. Ask for a new mail, verify your address again and create your passkey.',
  );
}

/** The audit detail of a sign-up: how the account will sign in (a password's absence says passkey). */
const methodDetail = (password: string | undefined) =>
  password === undefined ? { method: 'passkey' } : undefined;

/** A new account's name, trimmed: `signup.name_invalid` when empty or too long. */
export function checkedSignUpName(name: string): string {
  const trimmed = name.trim();
  if (trimmed === '' || trimmed.length > MAX_NAME) {
    throw new OrthIdError('signup.name_invalid', `Enter your name (at most ${MAX_NAME} characters).`, {
      details: { field: 'name' },
    });
  }
  return trimmed;
}

function checkedEmail(email: string): string {
  const normalised = normaliseEmail(email);
  if (!EMAIL.test(normalised)) {
    throw new OrthIdError('mail.address_invalid', 'Enter a valid e-mail address.', {
      details: { field: 'email' },
    });
  }
  return normalised;
}

export function createSignUp(deps: SignUpDeps) {
  const { clock, tokens, users } = deps;
  const link = (tenant: SignUpTenant, path: string, secret: string) =>
    `${deps.publicUrl}/t/${tenant.slug}/${path}?token=${encodeURIComponent(secret)}`;

  async function audit(
    tx: Queryable,
    tenantId: string,
    event: { actor: string; action: string; target?: string; outcome?: 'success' | 'failure' },
    request: { ip?: string; userAgent?: string },
    details?: Record<string, unknown>,
  ) {
    await appendAudit(
      tx,
      await deps.tenantKeys.forTenant(tx, tenantId),
      {
        outcome: 'success',
        ...event,
        ...(request.ip ? { ip: request.ip } : {}),
        ...(request.userAgent ? { userAgent: request.userAgent } : {}),
        details,
      },
      clock,
    );
  }

  /**
   * Counts the request against the client address (in a transaction of its own, so it holds
   * whatever follows), then refuses when that address or the mail address asked too often.
   * Both count alike whether or not the address has an account.
   */
  async function throttle(tenant: SignUpTenant, email: string, ip: string): Promise<void> {
    const retryAfter = await withTenant(deps.db, tenant.id, async (tx) => {
      const keyring = await deps.tenantKeys.forTenant(tx, tenant.id);
      // Under the `ip:` prefix, so housekeeping deletes the counter once it has decayed.
      const key = `ip:sign-up:${keyring.index('sign-up.ip', throttledAddress(ip))}`;
      const now = clock.now();
      const waiting = await deps.throttle.addressRetryAfter(tx, key, now);
      if (waiting > 0) return waiting;
      await deps.throttle.recordAddressFailure(tx, tenant.id, key, now);
      const sent = await tokens.issuedFor(tx, tenant.id, 'email_verification', email, ADDRESS_WINDOW_SECONDS);
      return sent >= MAILS_PER_ADDRESS ? ADDRESS_WINDOW_SECONDS : 0;
    });
    if (retryAfter > 0) throw throttled(retryAfter);
  }

  /** A verification token whose code no mail carries: the page looks the same, nothing can use it. */
  function unmailedToken(tx: Queryable, tenantId: string, email: string) {
    return tokens.issue(tx, tenantId, {
      purpose: 'email_verification',
      email,
      ttlSeconds: VERIFY_TTL_SECONDS,
      withCode: true,
    });
  }

  async function mailVerification(
    tx: Queryable,
    tenant: SignUpTenant,
    userId: string,
    email: string,
    request: { language?: string; interaction?: string },
    passkey: boolean,
  ): Promise<MailSent> {
    await tokens.revokeForUser(tx, tenant.id, userId, 'email_verification');
    const issued = await tokens.issue(tx, tenant.id, {
      purpose: 'email_verification',
      email,
      userId,
      ttlSeconds: VERIFY_TTL_SECONDS,
      withCode: true,
      // A passkey sign-up's link opens its passkey step, in the browser of the sign-up.
      data: {
        ...(request.interaction ? { interaction: request.interaction } : {}),
        ...(passkey ? { method: 'passkey' } : {}),
      },
    });
    const mail = deps.compose({
      kind: 'verify-email',
      language: request.language,
      tenant,
      url: link(tenant, 'sign-up/verify', issued.secret),
      code: issued.code,
      validHours: VERIFY_TTL_SECONDS / 3600,
    });
    await deps.mail.enqueue(tx, tenant.id, { to: email, template: 'verify-email', ...mail });
    return { tokenId: issued.id };
  }

  /**
   * The verified token's user: marked verified, audited as theirs, other links ended. An account
   * signed up for a passkey (no password) is only proved here: it stays waiting until its passkey
   * is registered (`activateWithPasskey`), so a proved address alone never makes a usable account.
   */
  async function verified(
    tx: Queryable,
    tenant: SignUpTenant,
    token: AccountToken,
    method: 'link' | 'code',
  ): Promise<Verified> {
    // A token no mail carried (sent for an address that has an account) verifies nothing.
    if (!token.userId) throw wrongCode();
    const row = await createUsersQueries(tx).byId(token.userId);
    if (row?.awaiting_verification && row.password_hash === null) {
      return { userId: token.userId, interaction: token.data.interaction, passkeyNeeded: true, method };
    }
    await users.verifyEmail(tx, tenant.id, token.userId, `user:${token.userId}`, method);
    await tokens.revokeForUser(tx, tenant.id, token.userId, 'email_verification');
    return { userId: token.userId, interaction: token.data.interaction, passkeyNeeded: false, method };
  }

  async function organisationOf(tx: Queryable, organisation: string | undefined) {
    if (organisation === undefined) return undefined;
    const queries = createOrganisationsQueries(tx);
    const found = isUuid(organisation) ? await queries.byId(organisation) : undefined;
    const row = found ?? (await queries.byName(organisation));
    if (!row) {
      throw new OrthIdError(
        'organisation.not_found',
        `No organisation "${organisation}" in this tenant. List them with the admin API.`,
        { details: { field: 'organisation' } },
      );
    }
    return row;
  }

  /**
   * Uses an invitation in `tx`: a verified user (the link proved the address) with this name and,
   * for the password path, this password; the membership the invitation names; audited.
   */
  async function accept(
    tx: Queryable,
    tenant: SignUpTenant,
    secret: string,
    input: { name: string; ip?: string; userAgent?: string },
    password: string | undefined,
  ): Promise<{ userId: string }> {
    const name = checkedSignUpName(input.name);
    const token = await tokens.use(tx, tenant.id, 'invitation', secret);
    const user = await users.create(
      tx,
      tenant.id,
      { email: token.email, name, ...(password === undefined ? {} : { password }), emailVerified: true },
      `invitation:${token.id}`,
      { mfaEnforced: await deps.mfaEnforced(tx, tenant.id) },
    );
    const organisationId = token.data.organisation;
    if (organisationId) {
      await deps.memberships.add(tx, tenant.id, organisationId, user.id, `user:${user.id}`);
    }
    await audit(
      tx,
      tenant.id,
      { actor: `user:${user.id}`, action: 'invitation.accepted', target: `invitation:${token.id}` },
      input,
      { userId: user.id, organisationId: organisationId ?? null, ...methodDetail(password) },
    );
    return { userId: user.id };
  }

  async function registerWith(
    tenant: SignUpTenant,
    request: Omit<SignUpRequest, 'password'>,
    password: string | undefined,
  ): Promise<MailSent> {
    const settings = signUpSettingsOf(tenant);
    if (!settings.enabled) {
      throw new OrthIdError('signup.closed', 'This organisation does not offer sign-up.');
    }
    const email = checkedEmail(request.email);
    const domain = email.slice(email.lastIndexOf('@') + 1);
    if (settings.domains.length > 0 && !settings.domains.includes(domain)) {
      throw new OrthIdError(
        'signup.domain_not_allowed',
        'Sign-up is open only to addresses of the domains this organisation allows.',
        { details: { field: 'email' } },
      );
    }
    const name = checkedSignUpName(request.name);
    await throttle(tenant, email, request.ip);
    return withTenant(deps.db, tenant.id, async (tx) => {
      const mfaEnforced = await deps.mfaEnforced(tx, tenant.id);
      const existing = await users.findByEmail(tx, tenant.id, email);
      if (existing) {
        // The same checks and the same hashing work as a new account: neither the answer nor
        // its time tells the two apart (a passkey sign-up hashes nothing either way).
        if (password !== undefined) {
          await users.passwordPolicy.check(password, { mfaEnforced });
          await users.passwords.hash(password);
        }
        const sent = await unmailedToken(tx, tenant.id, email);
        const mail = deps.compose({
          kind: 'account-exists',
          language: request.language,
          tenant,
        });
        await deps.mail.enqueue(tx, tenant.id, { to: email, template: 'account-exists', ...mail });
        await audit(
          tx,
          tenant.id,
          {
            actor: 'anonymous',
            action: 'user.signed_up',
            target: `user:${existing.id}`,
            outcome: 'failure',
          },
          request,
          { reason: 'account_exists', ...methodDetail(password) },
        );
        return { tokenId: sent.id };
      }
      const user = await users.create(
        tx,
        tenant.id,
        { email, name, ...(password === undefined ? {} : { password }), awaitingVerification: true },
        'sign-up',
        { mfaEnforced },
      );
      const sent = await mailVerification(tx, tenant, user.id, email, request, password === undefined);
      await audit(
        tx,
        tenant.id,
        { actor: `user:${user.id}`, action: 'user.signed_up', target: `user:${user.id}` },
        request,
        methodDetail(password),
      );
      return sent;
    });
  }

  return {
    /** The shortest password the tenant's policy accepts from a new account (for the form's hint). */
    async minPasswordLength(tenant: SignUpTenant): Promise<number> {
      const enforced = await withTenant(deps.db, tenant.id, (tx) => deps.mfaEnforced(tx, tenant.id));
      return enforced ? users.passwordPolicy.minLengthWithMfa : users.passwordPolicy.minLength;
    },

    /**
     * Registers an address, or mails its holder that they already have an account. Throws
     * `signup.closed`, `signup.domain_not_allowed`, `signup.throttled`, `mail.address_invalid`,
     * `signup.name_invalid` and the password policy's codes; otherwise answers alike either way.
     */
    register(tenant: SignUpTenant, request: SignUpRequest): Promise<MailSent> {
      return registerWith(tenant, request, request.password);
    },

    /**
     * The same for a passkey sign-up: an account with no password, waiting for its address and
     * then its passkey (see the top of this file). The same checks, throttles, mails and answer.
     */
    registerForPasskey(tenant: SignUpTenant, request: Omit<SignUpRequest, 'password'>): Promise<MailSent> {
      return registerWith(tenant, request, undefined);
    },

    /**
     * Activates a passkey sign-up whose address was proved, in the transaction that stores its
     * passkey (so the two stand or fall together). `signup.passkey_step_expired` when the account
     * is gone, was activated meanwhile, or has a password (a reset link set one).
     */
    async activateWithPasskey(
      tx: Queryable,
      tenant: SignUpTenant,
      userId: string,
      method: 'link' | 'code',
    ): Promise<void> {
      const row = isUuid(userId) ? await createUsersQueries(tx).byId(userId, true) : undefined;
      if (!row?.awaiting_verification || row.password_hash !== null || row.status !== 'active') {
        throw passkeyStepExpired();
      }
      await users.verifyEmail(tx, tenant.id, userId, `user:${userId}`, method);
      await tokens.revokeForUser(tx, tenant.id, userId, 'email_verification');
    },

    /**
     * Mails a new verification link and code if an account at this address is waiting for one;
     * otherwise nothing, with the same answer and the same throttles.
     */
    async resend(
      tenant: SignUpTenant,
      request: Pick<SignUpRequest, 'email' | 'ip' | 'language' | 'interaction'>,
    ): Promise<MailSent> {
      const email = checkedEmail(request.email);
      await throttle(tenant, email, request.ip);
      return withTenant(deps.db, tenant.id, async (tx) => {
        const row = await users.findByEmail(tx, tenant.id, email);
        if (row?.awaiting_verification)
          return mailVerification(tx, tenant, row.id, email, request, row.password_hash === null);
        return { tokenId: (await unmailedToken(tx, tenant.id, email)).id };
      });
    },

    /**
     * An administrator mails a new verification link and code to an account that waits for one
     * (earlier links stop working). `user.not_awaiting_verification` otherwise; the per-address
     * limit applies as to the account holder's own requests (`signup.throttled`).
     */
    async resendForUser(
      tenant: SignUpTenant,
      userId: string,
      input: { actor: string; language?: string },
    ): Promise<{ userId: string; expiresAt: string }> {
      return withTenant(deps.db, tenant.id, async (tx) => {
        const user = await users.get(tx, tenant.id, userId);
        if (!user.awaitingVerification) {
          throw new OrthIdError(
            'user.not_awaiting_verification',
            'This account is not waiting for its address to be verified: there is nothing to resend.',
          );
        }
        const sent = await tokens.issuedFor(
          tx,
          tenant.id,
          'email_verification',
          user.email,
          ADDRESS_WINDOW_SECONDS,
        );
        if (sent >= MAILS_PER_ADDRESS) throw throttled(ADDRESS_WINDOW_SECONDS);
        await mailVerification(
          tx,
          tenant,
          user.id,
          user.email,
          { language: input.language },
          !user.hasPassword,
        );
        await audit(
          tx,
          tenant.id,
          { actor: input.actor, action: 'user.verification_sent', target: `user:${user.id}` },
          {},
        );
        return {
          userId: user.id,
          expiresAt: new Date(clock.now().getTime() + VERIFY_TTL_SECONDS * 1000).toISOString(),
        };
      });
    },

    /** Checks a verification link without using it (the page before the button). */
    async checkLink(tenant: SignUpTenant, secret: string): Promise<AccountToken> {
      return withTenant(deps.db, tenant.id, (tx) =>
        tokens.check(tx, tenant.id, 'email_verification', secret),
      );
    },

    /** Uses a verification link: `account.link_invalid`, `account.link_expired`, `account.link_used`. */
    async verifyLink(tenant: SignUpTenant, secret: string) {
      return withTenant(deps.db, tenant.id, async (tx) =>
        verified(tx, tenant, await tokens.use(tx, tenant.id, 'email_verification', secret), 'link'),
      );
    },

    /**
     * Uses the code typed on the page. A wrong code, or a token that is unknown or carried no
     * mail, is `account.code_invalid` alike; an expired or used one says so.
     */
    async verifyCode(tenant: SignUpTenant, tokenId: string, code: string) {
      const outcome = await withTenant(deps.db, tenant.id, async (tx) => {
        const token = await tokens.useCode(tx, tenant.id, 'email_verification', tokenId, code).catch((e) => {
          if (isOrthIdError(e, 'account.link_invalid')) return undefined;
          throw e;
        });
        if (!token?.userId) return undefined;
        return verified(tx, tenant, token, 'code');
      });
      // After the commit: the wrong try is counted against the token.
      if (!outcome) throw wrongCode();
      return outcome;
    },

    /**
     * Creates an invitation for an address (and an organisation, by id or name) and mails its
     * link; works whether or not sign-up is on. `user.email_taken` when the address has an account.
     */
    async invite(
      tenant: SignUpTenant,
      input: { email: string; organisation?: string; actor: string; language?: string },
    ): Promise<Invitation> {
      const email = checkedEmail(input.email);
      return withTenant(deps.db, tenant.id, async (tx) => {
        if (await users.findByEmail(tx, tenant.id, email)) {
          throw new OrthIdError(
            'user.email_taken',
            'This address already has an account in this tenant; add it to the organisation instead.',
            { details: { field: 'email' } },
          );
        }
        const organisation = await organisationOf(tx, input.organisation);
        const issued = await tokens.issue(tx, tenant.id, {
          purpose: 'invitation',
          email,
          ttlSeconds: INVITATION_TTL_SECONDS,
          data: organisation ? { organisation: organisation.id } : {},
          createdBy: input.actor,
        });
        const mail = deps.compose({
          kind: 'invitation',
          language: input.language,
          tenant,
          url: link(tenant, 'invitation', issued.secret),
          validHours: INVITATION_TTL_SECONDS / 3600,
          ...(organisation ? { organisation: organisation.name } : {}),
        });
        await deps.mail.enqueue(tx, tenant.id, { to: email, template: 'invitation', ...mail });
        await audit(
          tx,
          tenant.id,
          { actor: input.actor, action: 'invitation.created', target: `invitation:${issued.id}` },
          {},
          { organisationId: organisation?.id ?? null },
        );
        return {
          id: issued.id,
          organisationId: organisation?.id ?? null,
          expiresAt: issued.expiresAt.toISOString(),
        };
      });
    },

    /** Checks an invitation link without using it (the page that asks for name and password). */
    async checkInvitation(tenant: SignUpTenant, secret: string): Promise<AccountToken> {
      return withTenant(deps.db, tenant.id, (tx) => tokens.check(tx, tenant.id, 'invitation', secret));
    },

    /**
     * Accepts an invitation: a verified user with this name and password and, if the invitation
     * names one, the membership; all or nothing (a refused password leaves the link usable).
     */
    async acceptInvitation(
      tenant: SignUpTenant,
      secret: string,
      input: { name: string; password: string; ip?: string; userAgent?: string },
    ): Promise<{ userId: string }> {
      checkedSignUpName(input.name);
      return withTenant(deps.db, tenant.id, (tx) => accept(tx, tenant, secret, input, input.password));
    },

    /**
     * The same with a passkey as the account's only credential (no password), in the transaction
     * that stores the passkey once its registration is verified (the passkeys' `newAccount`), so
     * the account, the membership, the link's use and the passkey stand or fall together.
     * Throws the link's `account.*` codes, `user.email_taken` and `signup.name_invalid`.
     */
    acceptInvitationWithPasskey(
      tx: Queryable,
      tenant: SignUpTenant,
      secret: string,
      input: { name: string; ip?: string; userAgent?: string },
    ): Promise<{ userId: string }> {
      return accept(tx, tenant, secret, input, undefined);
    },
  };
}

export type SignUp = ReturnType<typeof createSignUp>;
