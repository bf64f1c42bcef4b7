// The second-factor steps of the hosted sign-in, after a correct password: verify a factor the
// user has, or enrol one (required by the tenant, demanded by the client's acr_values, or offered),
// show the recovery codes once, then finish the login with amr and acr. The step in progress is
// kept in the interaction (sealed at rest, bound to its browser by the interaction cookie).
//
// Another kind of factor plugs in by: a section on the second-factor page (`extraSections`), its
// own routes under /t/:tenant/interaction/:uid/, and `complete(…, method)` once it verified.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isOrthIdError, OrthIdError } from '../../core/errors.js';
import type { SafeHtml } from '../../core/html.js';
import type { Queryable } from '../../core/sql.js';
import type { Mfa } from '../../identity/mfa.js';
import {
  ACR_MFA,
  authenticationContext,
  demandsMfa,
  type FactorKind,
  type SecondFactorMethod,
} from '../../identity/mfa-factors.js';
import type { MfaRequirement } from '../../identity/mfa-policy.js';
import type { TenantProvider } from '../../oidc/providers.js';
import { type Database, withTenant } from '../../storage/db/database.js';
import type { Locale } from '../../web/i18n.js';
import {
  enrolOfferPage,
  enrolTotpPage,
  recoveryCodesPage,
  recoveryNoticePage,
} from '../../web/pages/enrol-totp.js';
import { secondFactorPage } from '../../web/pages/second-factor.js';
import { stepErrorText } from '../../web/user-error.js';
import type {
  Form,
  Interaction,
  InteractionResults,
  InteractionParams as Params,
} from './interaction-types.js';
import { brandFor } from './tenant-brand.js';

/** Where a sign-in stands between a correct password and the finished login. */
export interface PendingSignIn {
  accountId: string;
  /** When the password was checked (epoch seconds): the login's auth_time. */
  passwordAt: number;
  /**
   * When the account's password had been set as this sign-in began (epoch ms; null for an
   * account without one, such as one signed up with a passkey). Every step holds it against the
   * account's: a reset, a change or a first password set since then ends this sign-in. (A step
   * saved by an older version lacks it and does not hold: see stillHolds.)
   */
  passwordSetAt: number | null;
  step: 'second_factor' | 'offer' | 'enrol_totp' | 'enrol_passkey' | 'recovery_codes' | 'recovery_notice';
  /** The tenant or the client requires a second factor: enrolment cannot be skipped. */
  required: boolean;
  /** The pending TOTP enrolment this interaction began. */
  factorId?: string;
  /** The second factor proved, once it was. */
  method?: SecondFactorMethod;
  /** RFC 8176 values of that proof when they vary by factor (a synced passkey: swk). */
  methodAmr?: string[];
  /** The password was audited as verified only: completing records user.sign_in in this tenant. */
  signInAuditIn?: string;
  /**
   * No password was given (a passkey sign-up's first passkey, user verification required): the
   * proof is the passkey alone, two factors in itself, as a passwordless sign-in's.
   */
  passwordless?: boolean;
}

/** What follows a correct password, decided in the transaction that records it (see afterPassword). */
export interface AfterPasswordPlan {
  secondStep(tx: Queryable, accountId: string): Promise<boolean>;
  /** What it read and answered, once asked. */
  found?: FactorsFound;
}

/** What decides the step after a password: the user's factors and what the tenant requires. */
interface FactorsFound {
  kinds: FactorKind[];
  /** The user has a factor of a kind another module owns (a passkey). */
  otherFactors: boolean;
  requirement: MfaRequirement;
}

/**
 * The step after a correct password, or none when the password alone signs in. The one
 * decision both the audit (password verified or signed in) and the flow follow.
 */
function stepAfterPassword(found: FactorsFound, required: boolean): PendingSignIn['step'] | undefined {
  if (found.kinds.length > 0 || found.otherFactors) return 'second_factor';
  if (required) return 'enrol_totp';
  if (found.requirement === 'optional') return 'offer';
  return undefined;
}

/** How long after the password the second factor may be given. */
const STEP_SECONDS = 10 * 60;
const KEY = 'pendingSignIn';

/** What the interaction routes share with these steps. */
export interface InteractionKit {
  load(
    request: FastifyRequest<{ Params: Params }>,
    reply: FastifyReply,
  ): Promise<{ tp: TenantProvider; details: Interaction }>;
  finish(
    reply: FastifyReply,
    interaction: Interaction,
    result: InteractionResults,
    options: { mergeWithLastSubmission: boolean },
  ): Promise<FastifyReply>;
  page(reply: FastifyReply, body: string, status?: number): FastifyReply;
  /** The interaction's path on the public URL. */
  base(tp: TenantProvider, uid: string): string;
  /** Throws `auth.forbidden` unless the form carries the interaction's CSRF token. */
  checkCsrf(tp: TenantProvider, uid: string, form: Form | undefined): void;
  clientName(tp: TenantProvider, clientId: unknown): Promise<string>;
  /** The page language: the request's ui_locales, the browser's, the tenant's default. */
  locale(request: FastifyRequest, tp?: TenantProvider, details?: Interaction): Locale;
}

/** A refusal that keeps the user on a step; `text`, when set, is already in the page's language. */
export interface StepError {
  message: string;
  code: string;
  status: number;
  details?: Record<string, unknown>;
  text?: string;
}

export interface MfaStepsOptions {
  mfa: Mfa;
  db: Database;
  /** The name an authenticator app lists the account under (the user's email). */
  accountName(tenantId: string, userId: string): Promise<string>;
  /**
   * When the user's password was last set (as sign-in reports it), or undefined when the user is
   * gone or disabled (src/identity/users.ts `passwordSetAt`).
   */
  passwordSetAt(tenantId: string, userId: string): Promise<number | null | undefined>;
  /** Whether the user has a factor of another kind (their passkeys), read in the caller's transaction. */
  hasOtherFactors?: (tx: Queryable, accountId: string) => Promise<boolean>;
  /** Sections another factor kind adds to the second-factor page, for this user. */
  extraSections?: (
    tp: TenantProvider,
    details: Interaction,
    accountId: string,
    locale: Locale,
  ) => Promise<SafeHtml[]>;
  /** Sections another kind adds to the enrolment pages: set that kind up instead. */
  enrolSections?: (
    tp: TenantProvider,
    details: Interaction,
    pending: PendingSignIn,
    locale: Locale,
  ) => SafeHtml[];
  /** Renders a step another kind owns (`enrol_passkey`). */
  renderStep?: (
    reply: FastifyReply,
    tp: TenantProvider,
    details: Interaction,
    pending: PendingSignIn,
    error?: StepError,
  ) => Promise<FastifyReply>;
}

export function pendingOf(details: Interaction): PendingSignIn | undefined {
  const pending = (details.result as Record<string, unknown> | undefined)?.[KEY] as PendingSignIn | undefined;
  return pending && typeof pending.accountId === 'string' ? pending : undefined;
}

export function mfaSteps(app: FastifyInstance, kit: InteractionKit, opts: MfaStepsOptions) {
  const { mfa } = opts;
  const now = () => Math.floor(Date.now() / 1000);

  async function factorsOf(tx: Queryable, tp: TenantProvider, accountId: string): Promise<FactorsFound> {
    return {
      kinds: await mfa.activeKinds(tx, accountId),
      otherFactors: (await opts.hasOtherFactors?.(tx, accountId)) ?? false,
      requirement: await mfa.requirement(tx, tp.tenant.id, accountId),
    };
  }

  async function save(details: Interaction, pending: PendingSignIn | undefined) {
    details.result = pending ? { [KEY]: pending } : undefined;
    await details.save(details.exp - now());
  }

  /** Finishes the login with what was proved. */
  async function complete(reply: FastifyReply, details: Interaction, pending: PendingSignIn) {
    const { amr, acr } =
      pending.passwordless && pending.method === 'passkey'
        ? { amr: [...(pending.methodAmr ?? []), 'mfa'], acr: ACR_MFA }
        : authenticationContext(pending.method, pending.methodAmr);
    // A passkey's assertion at the second-factor step is audited as the sign-in itself.
    const asserted = pending.method === 'passkey' && pending.step === 'second_factor';
    if (pending.signInAuditIn && !asserted) {
      await mfa.recordSignIn(
        {
          tenantId: pending.signInAuditIn,
          userId: pending.accountId,
          ip: reply.request.ip,
          userAgent: reply.request.headers['user-agent'],
          clientId: String(details.params.client_id),
        },
        { method: pending.method, amr, acr, passwordless: pending.passwordless },
      );
    }
    return kit.finish(
      reply,
      details,
      { login: { accountId: pending.accountId, amr, acr, remember: true, ts: pending.passwordAt } },
      { mergeWithLastSubmission: false },
    );
  }

  function errorStatus(error: unknown, reply: FastifyReply): StepError {
    if (!isOrthIdError(error) || error.kind === 'internal') throw error;
    if (error.details?.retryAfterSeconds)
      reply.header('retry-after', String(error.details.retryAfterSeconds));
    return { message: error.message, code: error.code, status: error.httpStatus, details: error.details };
  }

  async function render(
    reply: FastifyReply,
    tp: TenantProvider,
    details: Interaction,
    pending: PendingSignIn,
    options: {
      error?: StepError;
      recovery?: boolean;
      /** The user's factor kinds, when the caller has just read them. */
      kinds?: FactorKind[];
      /** Other kinds' sections for this user, when the caller has just built them. */
      extra?: SafeHtml[];
    } = {},
  ) {
    const base = kit.base(tp, details.uid);
    const csrf = tp.csrfToken(details.uid);
    const status = options.error?.status ?? 200;
    const locale = kit.locale(reply.request, tp, details);
    const error = options.error && (options.error.text ?? stepErrorText(locale, options.error));
    const errorCode = options.error?.code;
    switch (pending.step) {
      case 'second_factor': {
        const kinds =
          options.kinds ??
          (await withTenant(opts.db, tp.tenant.id, (tx) => mfa.activeKinds(tx, pending.accountId)));
        return kit.page(
          reply,
          secondFactorPage({
            locale,
            brand: brandFor(tp),
            clientName: await kit.clientName(tp, details.params.client_id),
            csrf,
            action: `${base}/second-factor`,
            // A user whose only factors are of another kind is offered its section and recovery codes.
            recovery: (options.recovery ?? false) || !kinds.includes('totp'),
            totp: kinds.includes('totp'),
            otherLink: options.recovery ? `${base}/second-factor` : `${base}/second-factor?recovery=1`,
            error,
            errorCode,
            extra:
              options.extra ?? (await opts.extraSections?.(tp, details, pending.accountId, locale)) ?? [],
          }),
          status,
        );
      }
      case 'offer':
        return kit.page(
          reply,
          enrolOfferPage({
            locale,
            brand: brandFor(tp),
            csrf,
            startAction: `${base}/enrol/totp`,
            skipAction: `${base}/enrol/skip`,
            extra: opts.enrolSections?.(tp, details, pending, locale) ?? [],
          }),
          status,
        );
      case 'enrol_totp': {
        const account = await opts.accountName(tp.tenant.id, pending.accountId);
        const enrolment = await mfa.beginTotpEnrolment({
          tenantId: tp.tenant.id,
          userId: pending.accountId,
          interactionUid: details.uid,
          issuer: tp.tenant.displayName,
          account,
          factorId: pending.factorId,
        });
        if (enrolment.factorId !== pending.factorId) {
          pending.factorId = enrolment.factorId;
          await save(details, pending);
        }
        return kit.page(
          reply,
          enrolTotpPage({
            locale,
            brand: brandFor(tp),
            csrf,
            action: `${base}/enrol/totp/confirm`,
            factorId: enrolment.factorId,
            qrSvg: enrolment.qrSvg,
            uri: enrolment.uri,
            secret: enrolment.secret,
            required: pending.required,
            skipAction: `${base}/enrol/skip`,
            error,
            errorCode,
            extra: opts.enrolSections?.(tp, details, pending, locale) ?? [],
          }),
          status,
        );
      }
      case 'enrol_passkey':
        return opts.renderStep!(reply, tp, details, pending, options.error);
      default:
        // Recovery codes are shown once, in the response that made them; what is left is going on.
        return kit.page(
          reply,
          recoveryNoticePage({
            locale,
            brand: brandFor(tp),
            csrf,
            action: `${base}/continue`,
            enrolled: pending.step === 'recovery_codes',
          }),
          status,
        );
    }
  }

  /**
   * Whether the password this step rests on is still the account's: not reset or changed since
   * (by the user, a reset link or an administrator), and the account still active. A step saved
   * without the record (by an older version) does not hold either: it is at most minutes old.
   */
  async function stillHolds(tp: TenantProvider, pending: PendingSignIn): Promise<boolean> {
    if (pending.passwordSetAt === undefined) return false;
    const current = await opts.passwordSetAt(tp.tenant.id, pending.accountId);
    return current !== undefined && current === pending.passwordSetAt;
  }

  /**
   * The interaction's pending step when it may go on; one whose password no longer holds is
   * dropped (the interaction asks for the password again) and reads as none.
   */
  async function pendingFor(tp: TenantProvider, details: Interaction): Promise<PendingSignIn | undefined> {
    const pending = pendingOf(details);
    if (!pending) return undefined;
    if (await stillHolds(tp, pending)) return pending;
    await save(details, undefined);
    return undefined;
  }

  /** The pending step of this interaction, or `mfa.step_expired` when there is none (or it is too old). */
  async function current(request: FastifyRequest<{ Params: Params; Body?: Form }>, reply: FastifyReply) {
    const { tp, details } = await kit.load(request, reply);
    if (request.method === 'POST') kit.checkCsrf(tp, details.uid, request.body);
    const pending = await pendingFor(tp, details);
    if (!pending || details.prompt.name !== 'login' || pending.passwordAt + STEP_SECONDS < now()) {
      throw new OrthIdError(
        'mfa.step_expired',
        'This sign-in step has expired. Start again from the application and sign in with your password.',
      );
    }
    return { tp, details, pending };
  }

  const attemptOf = (request: FastifyRequest, tp: TenantProvider, details: Interaction, userId: string) => ({
    tenantId: tp.tenant.id,
    userId,
    ip: request.ip,
    userAgent: request.headers['user-agent'],
    clientId: String(details.params.client_id),
  });

  app.get<{ Params: Params; Querystring: { recovery?: string } }>(
    '/t/:tenant/interaction/:uid/second-factor',
    async (request, reply) => {
      const { tp, details, pending } = await current(request, reply);
      return render(reply, tp, details, pending, { recovery: request.query.recovery === '1' });
    },
  );

  app.post<{ Params: Params; Body: Form }>(
    '/t/:tenant/interaction/:uid/second-factor',
    async (request, reply) => {
      const { tp, details, pending } = await current(request, reply);
      if (pending.step !== 'second_factor') return render(reply, tp, details, pending);
      const recovery = request.body?.method === 'recovery_code';
      const attempt = attemptOf(request, tp, details, pending.accountId);
      try {
        if (recovery) {
          const { remaining } = await mfa.useRecoveryCode({
            ...attempt,
            code: request.body?.recovery_code ?? '',
          });
          const next: PendingSignIn = { ...pending, step: 'recovery_notice', method: 'recovery_code' };
          await save(details, next);
          return kit.page(
            reply,
            recoveryNoticePage({
              locale: kit.locale(request, tp, details),
              brand: brandFor(tp),
              csrf: tp.csrfToken(details.uid),
              action: `${kit.base(tp, details.uid)}/continue`,
              remaining,
            }),
          );
        }
        await mfa.verifyTotp({ ...attempt, code: request.body?.code ?? '' });
        return await complete(reply, details, { ...pending, method: 'totp' });
      } catch (error) {
        return render(reply, tp, details, pending, { error: errorStatus(error, reply), recovery });
      }
    },
  );

  app.post<{ Params: Params; Body: Form }>(
    '/t/:tenant/interaction/:uid/enrol/totp',
    async (request, reply) => {
      const { tp, details, pending } = await current(request, reply);
      if (pending.step !== 'offer' && pending.step !== 'enrol_totp')
        return render(reply, tp, details, pending);
      const next: PendingSignIn = { ...pending, step: 'enrol_totp' };
      await save(details, next);
      return render(reply, tp, details, next);
    },
  );

  app.post<{ Params: Params; Body: Form }>(
    '/t/:tenant/interaction/:uid/enrol/totp/confirm',
    async (request, reply) => {
      const { tp, details, pending } = await current(request, reply);
      if (pending.step !== 'enrol_totp') return render(reply, tp, details, pending);
      try {
        const { recoveryCodes } = await mfa.confirmTotpEnrolment({
          ...attemptOf(request, tp, details, pending.accountId),
          factorId: request.body?.factor ?? '',
          interactionUid: details.uid,
          code: request.body?.code ?? '',
        });
        // A user who kept their unused recovery codes has nothing new to save: the sign-in ends here.
        if (!recoveryCodes) return await complete(reply, details, { ...pending, method: 'totp' });
        const next: PendingSignIn = {
          ...pending,
          step: 'recovery_codes',
          method: 'totp',
          factorId: undefined,
        };
        await save(details, next);
        return kit.page(
          reply,
          recoveryCodesPage({
            locale: kit.locale(request, tp, details),
            brand: brandFor(tp),
            csrf: tp.csrfToken(details.uid),
            action: `${kit.base(tp, details.uid)}/continue`,
            codes: recoveryCodes,
          }),
        );
      } catch (error) {
        return render(reply, tp, details, pending, { error: errorStatus(error, reply) });
      }
    },
  );

  app.post<{ Params: Params; Body: Form }>(
    '/t/:tenant/interaction/:uid/enrol/skip',
    async (request, reply) => {
      const { tp, details, pending } = await current(request, reply);
      if (pending.required || (pending.step !== 'offer' && pending.step !== 'enrol_totp')) {
        return render(reply, tp, details, pending, {
          error: {
            message: 'A second step is required to sign in to this account; set up your authenticator app.',
            code: 'auth.forbidden',
            status: 403,
            text: kit.locale(request, tp, details).t('mfa.enrol.cannotSkip'),
          },
        });
      }
      return complete(reply, details, { ...pending, method: undefined });
    },
  );

  app.post<{ Params: Params; Body: Form }>('/t/:tenant/interaction/:uid/continue', async (request, reply) => {
    const { tp, details, pending } = await current(request, reply);
    if ((pending.step !== 'recovery_codes' && pending.step !== 'recovery_notice') || !pending.method) {
      return render(reply, tp, details, pending);
    }
    return complete(reply, details, pending);
  });

  return {
    /** Another kind's steps: the pending step (or `mfa.step_expired`), saving it, finishing. */
    current,
    save,
    complete,
    errorStatus,

    /** A step again, with the refusal that kept the user on it. */
    renderWith: (
      reply: FastifyReply,
      tp: TenantProvider,
      details: Interaction,
      pending: PendingSignIn,
      error: StepError,
    ) => render(reply, tp, details, pending, { error }),

    /** The GET of an interaction with a step in progress shows that step again. */
    render: (reply: FastifyReply, tp: TenantProvider, details: Interaction, pending: PendingSignIn) =>
      render(reply, tp, details, pending),

    /** The step in progress, if its password still holds (else it is dropped: see pendingFor). */
    pendingFor,

    /**
     * The question the password step asks in its transaction (`secondStep`): the user's factor
     * kinds and the tenant's requirement, read there once, for afterPassword to act on.
     */
    planAfterPassword(tp: TenantProvider, details: Interaction): AfterPasswordPlan {
      const demanded = demandsMfa(details.params.acr_values as string | undefined);
      const plan: AfterPasswordPlan = {
        async secondStep(tx, accountId) {
          plan.found = await factorsOf(tx, tp, accountId);
          return (
            stepAfterPassword(plan.found, demanded || plan.found.requirement === 'required') !== undefined
          );
        },
      };
      return plan;
    },

    /**
     * After a correct password: the second-factor step when the user has a factor, enrolment when
     * one is required (by the tenant, an administrator or the client's acr_values), the offer when
     * optional, else the login finishes with the password alone.
     */
    async afterPassword(
      reply: FastifyReply,
      tp: TenantProvider,
      details: Interaction,
      signedIn: { userId: string; passwordSetAt: number | null },
      plan?: AfterPasswordPlan,
    ) {
      const accountId = signedIn.userId;
      const demanded = demandsMfa(details.params.acr_values as string | undefined);
      const found =
        plan?.found ?? (await withTenant(opts.db, tp.tenant.id, (tx) => factorsOf(tx, tp, accountId)));
      const base: Omit<PendingSignIn, 'step'> = {
        accountId,
        passwordAt: now(),
        passwordSetAt: signedIn.passwordSetAt,
        required: demanded || found.requirement === 'required',
      };
      const step = stepAfterPassword(found, base.required);
      if (!step) return complete(reply, details, { ...base, step: 'second_factor' });
      // The password step asked the same question in its transaction and audited the password
      // as verified only: completing the sign-in records it.
      const pending: PendingSignIn = {
        ...base,
        step,
        ...(plan?.found ? { signInAuditIn: tp.tenant.id } : {}),
      };
      const extra = found.otherFactors
        ? ((await opts.extraSections?.(tp, details, accountId, kit.locale(reply.request, tp, details))) ?? [])
        : [];
      await save(details, pending);
      return render(reply, tp, details, pending, { kinds: found.kinds, extra });
    },
  };
}
