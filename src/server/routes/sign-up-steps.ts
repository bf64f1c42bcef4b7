// The hosted sign-up steps: the form reached from the sign-in page of an authorization request,
// the code typed on the page, the mailed verification link and the invitation link; each form CSRF-protected.
// A passkey sign-up (src/identity/sign-up.ts says why in this order): name and e-mail, the address
// proved by the code or the link in the sign-up's own browser, then the passkey, bound to the
// interaction, which activates the account; recovery codes and the login follow (passkey-steps.ts).
// An invitation accepted with a passkey takes the same passkey page, bound to the invitation's
// link instead of an interaction (there is none: the link comes by mail); the account is made
// with the passkey, and its recovery codes lead to the page that sends the user to sign in.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isOrthIdError, OrthIdError } from '../../core/errors.js';
import type { Queryable } from '../../core/sql.js';
import type { Mfa } from '../../identity/mfa.js';
import type { CeremonyContext, PasskeyOwner, Passkeys } from '../../identity/passkeys.js';
import { checkedSignUpName, type SignUp, signUpSettingsOf, type Verified } from '../../identity/sign-up.js';
import type { OidcProviders, TenantProvider } from '../../oidc/providers.js';
import { chooseLocale, type Locale } from '../../web/i18n.js';
import { recoveryCodesPage } from '../../web/pages/enrol-totp.js';
import {
  checkMailPage,
  confirmLinkPage,
  createPasskeyPage,
  invitationPage,
  invitedPage,
  passkeyInvitationPage,
  passkeySignUpPage,
  signUpErrorPage,
  signUpPage,
  unverifiedPage,
  verifiedPage,
} from '../../web/pages/sign-up.js';
import { userFacingError } from '../../web/user-error.js';
import type { Form, Interaction, InteractionParams as Params } from './interaction-types.js';
import type { InteractionKit, PendingSignIn } from './mfa-steps.js';
import { interactionBinding, passkeyScriptPath } from './passkey-steps.js';
import { brandFor } from './tenant-brand.js';

/** What a passkey sign-up borrows from the passkey steps. */
export interface SignUpPasskeys {
  passkeys: Passkeys;
  /** The name the authenticator stores the passkey under (the user's email). */
  accountName(tenantId: string, userId: string): Promise<string>;
  /** A passkey registered as this sign-in's proof: recovery codes, shown once, then the login. */
  enrolled(
    reply: FastifyReply,
    tp: TenantProvider,
    details: Interaction,
    pending: PendingSignIn,
  ): Promise<FastifyReply>;
  /** Where an invitation's new account gets its first recovery codes, as `enrolled` does. */
  mfa: Pick<Mfa, 'firstRecoveryCodes'>;
}

export interface SignUpStepsOptions {
  signUp: SignUp;
  providers: OidcProviders;
  /** Offered only where the server has passkeys on. */
  passkeys?: SignUpPasskeys;
}

/** The interaction's proof of a passkey sign-up's address, until its passkey is registered. */
interface PasskeySignUpState {
  accountId: string;
  /** When the address was proved (epoch seconds). */
  provedAt: number;
  method: 'link' | 'code';
}

const STATE_KEY = 'passkeySignUp';
/** How long after the proof the passkey may be created. */
const PROVED_SECONDS = 15 * 60;
const nowSeconds = () => Math.floor(Date.now() / 1000);

function passkeyStepExpired(): OrthIdError {
  return new OrthIdError(
    'signup.passkey_step_expired',
    'This step of the sign-up has expired. Ask for a new mail, verify your address again and create your passkey.',
  );
}

type TenantParams = { tenant: string };
type TokenQuery = { token?: string };

/** Where a passkey page's ceremony runs: its form's target and what the form carries. */
interface PasskeyTarget {
  csrf: string;
  /** The step's path: its options under `/options`, its form posts to `/register`. */
  base: string;
  hidden?: Record<string, string>;
}

/** A failure the page explains (bad input, a refused link), as opposed to a fault to log and hide. */
const explained = (error: unknown): error is OrthIdError => isOrthIdError(error) && error.kind !== 'internal';

export function signUpSteps(app: FastifyInstance, kit: InteractionKit, opts: SignUpStepsOptions) {
  const { signUp } = opts;

  function localeOf(request: FastifyRequest, tp: TenantProvider, details?: Interaction): Locale {
    return chooseLocale({
      uiLocales: details?.params.ui_locales,
      acceptLanguage: request.headers['accept-language'],
      tenantDefault: tp.tenant.settings.defaultLocale,
    });
  }

  const issuerPath = (tp: TenantProvider) => new URL(tp.provider.issuer).pathname;

  function refused(reply: FastifyReply, tp: TenantProvider, locale: Locale, error: OrthIdError) {
    if (error.details?.retryAfterSeconds)
      reply.header('retry-after', String(error.details.retryAfterSeconds));
    return kit.page(
      reply,
      signUpErrorPage({
        locale,
        brand: brandFor(tp),
        title: locale.t('error.cannotContinue'),
        error: userFacingError(locale, error),
        errorCode: error.code,
      }),
      error.httpStatus,
    );
  }

  async function loadOpen(request: FastifyRequest<{ Params: Params }>, reply: FastifyReply) {
    const loaded = await kit.load(request, reply);
    return { ...loaded, locale: localeOf(request, loaded.tp, loaded.details) };
  }

  function checkMail(
    reply: FastifyReply,
    tp: TenantProvider,
    locale: Locale,
    uid: string,
    email: string,
    tokenId: string,
    error?: OrthIdError,
  ) {
    if (error?.details?.retryAfterSeconds)
      reply.header('retry-after', String(error.details.retryAfterSeconds));
    return kit.page(
      reply,
      checkMailPage({
        locale,
        brand: brandFor(tp),
        codeAction: `${kit.base(tp, uid)}/sign-up/code`,
        resendAction: `${kit.base(tp, uid)}/sign-up/resend`,
        csrf: tp.csrfToken(uid),
        tokenId,
        email,
        ...(error ? { error: userFacingError(locale, error), errorCode: error.code } : {}),
      }),
      error?.httpStatus ?? 200,
    );
  }

  function unverified(
    reply: FastifyReply,
    tp: TenantProvider,
    locale: Locale,
    uid: string,
    email: string,
    error?: OrthIdError,
  ) {
    if (error?.details?.retryAfterSeconds)
      reply.header('retry-after', String(error.details.retryAfterSeconds));
    return kit.page(
      reply,
      unverifiedPage({
        locale,
        brand: brandFor(tp),
        resendAction: `${kit.base(tp, uid)}/sign-up/resend`,
        csrf: tp.csrfToken(uid),
        email,
        ...(error ? { error: userFacingError(locale, error), errorCode: error.code } : {}),
      }),
      error?.httpStatus ?? 403,
    );
  }

  function passkeyOffer(tp: TenantProvider, uid: string) {
    return opts.passkeys
      ? { passkey: { url: `${kit.base(tp, uid)}/sign-up/passkey`, script: passkeyScriptPath(tp) } }
      : {};
  }

  function stateOf(details: Interaction): PasskeySignUpState | undefined {
    const state = (details.result as Record<string, unknown> | undefined)?.[STATE_KEY] as
      | PasskeySignUpState
      | undefined;
    if (typeof state?.accountId !== 'string' || typeof state.provedAt !== 'number') return undefined;
    return state.provedAt + PROVED_SECONDS < nowSeconds() ? undefined : state;
  }

  /** The page that creates an account's only passkey (a passkey sign-up's, an invitation's). */
  function createPasskey(
    reply: FastifyReply,
    tp: TenantProvider,
    locale: Locale,
    target: PasskeyTarget,
    error?: OrthIdError,
  ) {
    return kit.page(
      reply,
      createPasskeyPage({
        locale,
        brand: brandFor(tp),
        csrf: target.csrf,
        action: `${target.base}/register`,
        options: `${target.base}/options`,
        script: passkeyScriptPath(tp),
        ...(target.hidden ? { hidden: target.hidden } : {}),
        ...(error ? { error: userFacingError(locale, error), errorCode: error.code } : {}),
      }),
      error?.httpStatus ?? 200,
    );
  }

  const signUpTarget = (tp: TenantProvider, details: Interaction): PasskeyTarget => ({
    csrf: tp.csrfToken(details.uid),
    base: `${kit.base(tp, details.uid)}/sign-up/passkey`,
  });

  /** The options of a ceremony that makes an account's only passkey (discoverable, user-verifying). */
  function firstPasskeyOptions(
    passkeys: SignUpPasskeys,
    ctx: CeremonyContext,
    tp: TenantProvider,
    user: { id?: string; name: string },
  ) {
    return passkeys.passkeys.registrationOptions(
      ctx,
      { ...user, displayName: user.name },
      tp.tenant.displayName,
      { firstFactor: true },
    );
  }

  /**
   * Registers an account's only passkey, user verification required, with what must stand or
   * fall with it (`within`, `newAccount`); answers the account's id, or the refusal to show.
   */
  async function registerFirstPasskey(
    passkeys: SignUpPasskeys,
    ctx: CeremonyContext,
    form: Form | undefined,
    owner: PasskeyOwner,
    within?: (tx: Queryable, userId: string) => Promise<void>,
  ): Promise<{ userId: string } | { refused: OrthIdError }> {
    try {
      const { userId } = await passkeys.passkeys.register(ctx, {
        ...owner,
        response: form?.response ?? '',
        requireUserVerification: true,
        ...(within ? { within } : {}),
      });
      return { userId };
    } catch (error) {
      if (!explained(error)) throw error;
      return { refused: error };
    }
  }

  /** The address is proved: this interaction may now create the account's passkey, for a while. */
  async function passkeyStep(
    reply: FastifyReply,
    tp: TenantProvider,
    details: Interaction,
    locale: Locale,
    proved: Verified,
  ) {
    if (!opts.passkeys) return refused(reply, tp, locale, passkeyStepExpired());
    const state: PasskeySignUpState = {
      accountId: proved.userId,
      provedAt: nowSeconds(),
      method: proved.method,
    };
    details.result = { [STATE_KEY]: state };
    await details.save(details.exp - nowSeconds());
    return createPasskey(reply, tp, locale, signUpTarget(tp, details));
  }

  const ceremony = (request: FastifyRequest, tp: TenantProvider, details: Interaction) => ({
    tenantId: tp.tenant.id,
    binding: interactionBinding(details.uid),
    ip: request.ip,
    userAgent: request.headers['user-agent'],
    clientId: String(details.params.client_id),
  });

  app.get<{ Params: Params }>('/t/:tenant/interaction/:uid/sign-up', async (request, reply) => {
    const { tp, details, locale } = await loadOpen(request, reply);
    if (!signUpSettingsOf(tp.tenant).enabled) {
      return refused(reply, tp, locale, closed());
    }
    return kit.page(
      reply,
      signUpPage({
        locale,
        brand: brandFor(tp),
        clientName: await kit.clientName(tp, details.params.client_id),
        action: `${kit.base(tp, details.uid)}/sign-up`,
        csrf: tp.csrfToken(details.uid),
        minLength: await signUp.minPasswordLength(tp.tenant),
        signInUrl: kit.base(tp, details.uid),
        ...passkeyOffer(tp, details.uid),
      }),
    );
  });

  app.post<{ Params: Params; Body: Form }>('/t/:tenant/interaction/:uid/sign-up', async (request, reply) => {
    const { tp, details, locale } = await loadOpen(request, reply);
    kit.checkCsrf(tp, details.uid, request.body);
    const email = request.body?.email ?? '';
    const name = request.body?.name ?? '';
    try {
      const { tokenId } = await signUp.register(tp.tenant, {
        email,
        name,
        password: request.body?.password ?? '',
        ip: request.ip,
        userAgent: request.headers['user-agent'],
        language: locale.tag,
        interaction: details.uid,
      });
      return checkMail(reply, tp, locale, details.uid, email, tokenId);
    } catch (error) {
      if (!explained(error)) throw error;
      if (error.code === 'signup.closed') return refused(reply, tp, locale, error);
      if (error.details?.retryAfterSeconds)
        reply.header('retry-after', String(error.details.retryAfterSeconds));
      return kit.page(
        reply,
        signUpPage({
          locale,
          brand: brandFor(tp),
          clientName: await kit.clientName(tp, details.params.client_id),
          action: `${kit.base(tp, details.uid)}/sign-up`,
          csrf: tp.csrfToken(details.uid),
          minLength: await signUp.minPasswordLength(tp.tenant),
          signInUrl: kit.base(tp, details.uid),
          ...passkeyOffer(tp, details.uid),
          email,
          name,
          error: userFacingError(locale, error),
          errorCode: error.code,
        }),
        error.httpStatus,
      );
    }
  });

  app.post<{ Params: Params; Body: Form }>(
    '/t/:tenant/interaction/:uid/sign-up/code',
    async (request, reply) => {
      const { tp, details, locale } = await loadOpen(request, reply);
      kit.checkCsrf(tp, details.uid, request.body);
      const tokenId = request.body?.token ?? '';
      const email = request.body?.email ?? '';
      let proved: Verified;
      try {
        proved = await signUp.verifyCode(tp.tenant, tokenId, request.body?.code ?? '');
      } catch (error) {
        if (!explained(error)) throw error;
        return checkMail(reply, tp, locale, details.uid, email, tokenId, error);
      }
      if (proved.passkeyNeeded) return passkeyStep(reply, tp, details, locale, proved);
      return kit.page(
        reply,
        verifiedPage({ locale, brand: brandFor(tp), continueUrl: kit.base(tp, details.uid) }),
      );
    },
  );

  app.post<{ Params: Params; Body: Form }>(
    '/t/:tenant/interaction/:uid/sign-up/resend',
    async (request, reply) => {
      const { tp, details, locale } = await loadOpen(request, reply);
      kit.checkCsrf(tp, details.uid, request.body);
      const email = request.body?.email ?? '';
      try {
        const { tokenId } = await signUp.resend(tp.tenant, {
          email,
          ip: request.ip,
          language: locale.tag,
          interaction: details.uid,
        });
        return checkMail(reply, tp, locale, details.uid, email, tokenId);
      } catch (error) {
        if (!explained(error)) throw error;
        return unverified(reply, tp, locale, details.uid, email, error);
      }
    },
  );

  async function passkeyForm(
    reply: FastifyReply,
    tp: TenantProvider,
    details: Interaction,
    locale: Locale,
    refusal?: { error: OrthIdError; email: string; name: string },
  ) {
    if (refusal?.error.details?.retryAfterSeconds)
      reply.header('retry-after', String(refusal.error.details.retryAfterSeconds));
    return kit.page(
      reply,
      passkeySignUpPage({
        locale,
        brand: brandFor(tp),
        clientName: await kit.clientName(tp, details.params.client_id),
        action: `${kit.base(tp, details.uid)}/sign-up/passkey`,
        csrf: tp.csrfToken(details.uid),
        passwordUrl: `${kit.base(tp, details.uid)}/sign-up`,
        ...(refusal
          ? {
              email: refusal.email,
              name: refusal.name,
              error: userFacingError(locale, refusal.error),
              errorCode: refusal.error.code,
            }
          : {}),
      }),
      refusal?.error.httpStatus ?? 200,
    );
  }

  app.get<{ Params: Params }>('/t/:tenant/interaction/:uid/sign-up/passkey', async (request, reply) => {
    const { tp, details, locale } = await loadOpen(request, reply);
    if (!signUpSettingsOf(tp.tenant).enabled || !opts.passkeys) return refused(reply, tp, locale, closed());
    return passkeyForm(reply, tp, details, locale);
  });

  app.post<{ Params: Params; Body: Form }>(
    '/t/:tenant/interaction/:uid/sign-up/passkey',
    async (request, reply) => {
      const { tp, details, locale } = await loadOpen(request, reply);
      kit.checkCsrf(tp, details.uid, request.body);
      if (!opts.passkeys) return refused(reply, tp, locale, closed());
      const email = request.body?.email ?? '';
      const name = request.body?.name ?? '';
      try {
        const { tokenId } = await signUp.registerForPasskey(tp.tenant, {
          email,
          name,
          ip: request.ip,
          userAgent: request.headers['user-agent'],
          language: locale.tag,
          interaction: details.uid,
        });
        return checkMail(reply, tp, locale, details.uid, email, tokenId);
      } catch (error) {
        if (!explained(error)) throw error;
        if (error.code === 'signup.closed') return refused(reply, tp, locale, error);
        return passkeyForm(reply, tp, details, locale, { error, email, name });
      }
    },
  );

  // The mailed link of a passkey sign-up, opened in the browser that signed up: its confirm page
  // posts here, so the proof lands on this interaction (in another browser there is none to load).
  app.post<{ Params: Params; Body: Form }>(
    '/t/:tenant/interaction/:uid/sign-up/passkey/link',
    async (request, reply) => {
      const { tp, details, locale } = await loadOpen(request, reply);
      const secret = request.body?.token ?? '';
      let proved: Verified;
      try {
        const token = await signUp.checkLink(tp.tenant, secret);
        kit.checkCsrf(tp, `verify:${token.id}`, request.body);
        proved = await signUp.verifyLink(tp.tenant, secret);
      } catch (error) {
        if (!explained(error)) throw error;
        return refused(reply, tp, locale, error);
      }
      if (proved.passkeyNeeded) return passkeyStep(reply, tp, details, locale, proved);
      return kit.page(
        reply,
        verifiedPage({ locale, brand: brandFor(tp), continueUrl: kit.base(tp, details.uid) }),
      );
    },
  );

  app.post<{ Params: Params; Body: Form }>(
    '/t/:tenant/interaction/:uid/sign-up/passkey/options',
    async (request, reply) => {
      const { tp, details } = await loadOpen(request, reply);
      kit.checkCsrf(tp, details.uid, request.body);
      const state = stateOf(details);
      if (!opts.passkeys || !state) throw passkeyStepExpired();
      const name = await opts.passkeys.accountName(tp.tenant.id, state.accountId);
      const options = await firstPasskeyOptions(opts.passkeys, ceremony(request, tp, details), tp, {
        id: state.accountId,
        name,
      });
      return reply.header('cache-control', 'no-store').send(options);
    },
  );

  app.post<{ Params: Params; Body: Form }>(
    '/t/:tenant/interaction/:uid/sign-up/passkey/register',
    async (request, reply) => {
      const { tp, details, locale } = await loadOpen(request, reply);
      kit.checkCsrf(tp, details.uid, request.body);
      const state = stateOf(details);
      if (!opts.passkeys || !state) return refused(reply, tp, locale, passkeyStepExpired());
      // The passkey and the account's activation in one transaction: a refused response
      // stores neither, and the account keeps waiting (and expires) as an unverified one.
      const outcome = await registerFirstPasskey(
        opts.passkeys,
        ceremony(request, tp, details),
        request.body,
        { userId: state.accountId },
        (tx) => signUp.activateWithPasskey(tx, tp.tenant, state.accountId, state.method),
      );
      if ('refused' in outcome) {
        const { refused: error } = outcome;
        if (error.code === 'signup.passkey_step_expired') return refused(reply, tp, locale, error);
        return createPasskey(reply, tp, locale, signUpTarget(tp, details), error);
      }
      // The registration, with user verification, proved the passkey for this sign-in: the
      // passkey steps show the account's first recovery codes and finish the login.
      const pending: PendingSignIn = {
        accountId: state.accountId,
        passwordAt: nowSeconds(),
        // A passkey-only account: no password for this sign-in to rest on.
        passwordSetAt: null,
        step: 'enrol_passkey',
        required: false,
        passwordless: true,
        signInAuditIn: tp.tenant.id,
      };
      return opts.passkeys.enrolled(reply, tp, details, pending);
    },
  );

  /** The tenant of a standalone page (a mailed link), with its language. */
  async function standalone(request: FastifyRequest<{ Params: TenantParams }>) {
    const tp = await opts.providers.get(request.params.tenant);
    return { tp, locale: localeOf(request, tp) };
  }

  /** A link's form is bound to its token: a page fetched with another link cannot post it. */
  const linkCsrf = (tp: TenantProvider, purpose: string, tokenId: string) =>
    tp.csrfToken(`${purpose}:${tokenId}`);

  app.get<{ Params: TenantParams; Querystring: TokenQuery }>(
    '/t/:tenant/sign-up/verify',
    async (request, reply) => {
      const { tp, locale } = await standalone(request);
      const secret = request.query.token ?? '';
      try {
        const token = await signUp.checkLink(tp.tenant, secret);
        const passkeyIn = token.data.method === 'passkey' ? token.data.interaction : undefined;
        return kit.page(
          reply,
          confirmLinkPage({
            locale,
            brand: brandFor(tp),
            action: passkeyIn
              ? `${kit.base(tp, passkeyIn)}/sign-up/passkey/link`
              : `${issuerPath(tp)}/sign-up/verify`,
            csrf: linkCsrf(tp, 'verify', token.id),
            token: secret,
          }),
        );
      } catch (error) {
        if (!explained(error)) throw error;
        return refused(reply, tp, locale, error);
      }
    },
  );

  app.post<{ Params: TenantParams; Body: Form }>('/t/:tenant/sign-up/verify', async (request, reply) => {
    const { tp, locale } = await standalone(request);
    const secret = request.body?.token ?? '';
    try {
      const token = await signUp.checkLink(tp.tenant, secret);
      kit.checkCsrf(tp, `verify:${token.id}`, request.body);
      // A passkey sign-up's link proves its address only on the sign-up's own interaction.
      if (token.data.method === 'passkey') return refused(reply, tp, locale, passkeyStepExpired());
      const { interaction } = await signUp.verifyLink(tp.tenant, secret);
      return kit.page(
        reply,
        verifiedPage({
          locale,
          brand: brandFor(tp),
          ...(interaction ? { continueUrl: kit.base(tp, interaction) } : {}),
        }),
      );
    } catch (error) {
      if (!explained(error)) throw error;
      return refused(reply, tp, locale, error);
    }
  });

  const invitationUrl = (tp: TenantProvider, path: string, secret: string) =>
    `${issuerPath(tp)}/${path}?token=${encodeURIComponent(secret)}`;

  function invitationForm(
    reply: FastifyReply,
    tp: TenantProvider,
    locale: Locale,
    token: { id: string; email: string },
    secret: string,
    minLength: number,
    refusal?: { error: OrthIdError; name: string },
  ) {
    return kit.page(
      reply,
      invitationPage({
        locale,
        brand: brandFor(tp),
        action: `${issuerPath(tp)}/invitation`,
        csrf: linkCsrf(tp, 'invitation', token.id),
        token: secret,
        email: token.email,
        minLength,
        ...(opts.passkeys
          ? {
              passkey: {
                url: invitationUrl(tp, 'invitation/passkey', secret),
                script: passkeyScriptPath(tp),
              },
            }
          : {}),
        ...(refusal
          ? {
              name: refusal.name,
              error: userFacingError(locale, refusal.error),
              errorCode: refusal.error.code,
            }
          : {}),
      }),
      refusal?.error.httpStatus ?? 200,
    );
  }

  app.get<{ Params: TenantParams; Querystring: TokenQuery }>(
    '/t/:tenant/invitation',
    async (request, reply) => {
      const { tp, locale } = await standalone(request);
      const secret = request.query.token ?? '';
      try {
        const token = await signUp.checkInvitation(tp.tenant, secret);
        return invitationForm(reply, tp, locale, token, secret, await signUp.minPasswordLength(tp.tenant));
      } catch (error) {
        if (!explained(error)) throw error;
        return refused(reply, tp, locale, error);
      }
    },
  );

  app.post<{ Params: TenantParams; Body: Form }>('/t/:tenant/invitation', async (request, reply) => {
    const { tp, locale } = await standalone(request);
    const secret = request.body?.token ?? '';
    let token: { id: string; email: string };
    try {
      token = await signUp.checkInvitation(tp.tenant, secret);
      kit.checkCsrf(tp, `invitation:${token.id}`, request.body);
    } catch (error) {
      if (!explained(error)) throw error;
      return refused(reply, tp, locale, error);
    }
    const name = request.body?.name ?? '';
    try {
      await signUp.acceptInvitation(tp.tenant, secret, {
        name,
        password: request.body?.password ?? '',
        ip: request.ip,
        userAgent: request.headers['user-agent'],
      });
    } catch (error) {
      if (!explained(error)) throw error;
      // The link was used meanwhile, or the address took an account: nothing left to fill in.
      if (error.code.startsWith('account.') || error.code === 'user.email_taken') {
        return refused(reply, tp, locale, error);
      }
      return invitationForm(reply, tp, locale, token, secret, await signUp.minPasswordLength(tp.tenant), {
        error,
        name,
      });
    }
    return kit.page(reply, invitedPage({ locale, brand: brandFor(tp) }));
  });

  if (opts.passkeys) invitationPasskeyRoutes(opts.passkeys);

  /**
   * An invitation accepted with a passkey: the name, then the passkey page, whose ceremony is
   * bound to the invitation (each post carries the link, checked as the password path checks it).
   * Nothing is stored before the registration is verified; then the account, the membership, the
   * link's use, the passkey and the recovery codes in one transaction.
   */
  function invitationPasskeyRoutes(passkeys: SignUpPasskeys) {
    const binding = (tokenId: string) => `invitation:${tokenId}`;
    const stepBase = (tp: TenantProvider) => `${issuerPath(tp)}/invitation/passkey`;
    const context = (request: FastifyRequest, tp: TenantProvider, tokenId: string): CeremonyContext => ({
      tenantId: tp.tenant.id,
      binding: binding(tokenId),
      ip: request.ip,
      userAgent: request.headers['user-agent'],
    });
    const target = (tp: TenantProvider, token: { id: string }, secret: string, name: string) => ({
      csrf: linkCsrf(tp, 'invitation', token.id),
      base: stepBase(tp),
      hidden: { token: secret, name },
    });
    /** The recovery codes' "saved" button leads to a page that changes nothing: one token serves all. */
    const DONE = 'invitation:done';

    function nameForm(
      reply: FastifyReply,
      tp: TenantProvider,
      locale: Locale,
      token: { id: string; email: string },
      secret: string,
      refusal?: { error: OrthIdError; name: string },
    ) {
      return kit.page(
        reply,
        passkeyInvitationPage({
          locale,
          brand: brandFor(tp),
          action: stepBase(tp),
          csrf: linkCsrf(tp, 'invitation', token.id),
          token: secret,
          email: token.email,
          passwordUrl: invitationUrl(tp, 'invitation', secret),
          ...(refusal
            ? {
                name: refusal.name,
                error: userFacingError(locale, refusal.error),
                errorCode: refusal.error.code,
              }
            : {}),
        }),
        refusal?.error.httpStatus ?? 200,
      );
    }

    /** The invitation a post names, with its form's CSRF token checked: as the password path. */
    async function invitationOf(tp: TenantProvider, body: Form | undefined) {
      const secret = body?.token ?? '';
      const token = await signUp.checkInvitation(tp.tenant, secret);
      kit.checkCsrf(tp, `invitation:${token.id}`, body);
      return { token, secret };
    }

    /** `invitationOf`, or the page a used, expired or forged link gets (as the password path). */
    async function invitationOrRefusal(
      reply: FastifyReply,
      tp: TenantProvider,
      locale: Locale,
      body: Form | undefined,
    ) {
      try {
        return await invitationOf(tp, body);
      } catch (error) {
        if (!explained(error)) throw error;
        return { refusal: await refused(reply, tp, locale, error) };
      }
    }

    app.get<{ Params: TenantParams; Querystring: TokenQuery }>(
      '/t/:tenant/invitation/passkey',
      async (request, reply) => {
        const { tp, locale } = await standalone(request);
        const secret = request.query.token ?? '';
        try {
          return nameForm(reply, tp, locale, await signUp.checkInvitation(tp.tenant, secret), secret);
        } catch (error) {
          if (!explained(error)) throw error;
          return refused(reply, tp, locale, error);
        }
      },
    );

    // The name is checked before the ceremony, so a refused one never leaves the authenticator
    // holding a passkey the server did not keep.
    app.post<{ Params: TenantParams; Body: Form }>(
      '/t/:tenant/invitation/passkey',
      async (request, reply) => {
        const { tp, locale } = await standalone(request);
        const checked = await invitationOrRefusal(reply, tp, locale, request.body);
        if ('refusal' in checked) return checked.refusal;
        const { token, secret } = checked;
        const name = request.body?.name ?? '';
        try {
          checkedSignUpName(name);
        } catch (error) {
          if (!explained(error)) throw error;
          return nameForm(reply, tp, locale, token, secret, { error, name });
        }
        return createPasskey(reply, tp, locale, target(tp, token, secret, name));
      },
    );

    app.post<{ Params: TenantParams; Body: Form }>(
      '/t/:tenant/invitation/passkey/options',
      async (request, reply) => {
        const { tp } = await standalone(request);
        const { token } = await invitationOf(tp, request.body);
        // No account yet: the options name the invited address, and the account is made with the passkey.
        const options = await firstPasskeyOptions(passkeys, context(request, tp, token.id), tp, {
          name: token.email,
        });
        return reply.header('cache-control', 'no-store').send(options);
      },
    );

    app.post<{ Params: TenantParams; Body: Form }>(
      '/t/:tenant/invitation/passkey/register',
      async (request, reply) => {
        const { tp, locale } = await standalone(request);
        const checked = await invitationOrRefusal(reply, tp, locale, request.body);
        if ('refusal' in checked) return checked.refusal;
        const { token, secret } = checked;
        const name = request.body?.name ?? '';
        let codes: string[] | undefined;
        const outcome = await registerFirstPasskey(
          passkeys,
          context(request, tp, token.id),
          request.body,
          {
            newAccount: async (tx) =>
              (
                await signUp.acceptInvitationWithPasskey(tx, tp.tenant, secret, {
                  name,
                  ip: request.ip,
                  userAgent: request.headers['user-agent'],
                })
              ).userId,
          },
          async (tx, userId) => {
            codes = await passkeys.mfa.firstRecoveryCodes(tx, tp.tenant.id, userId, `user:${userId}`);
          },
        );
        if ('refused' in outcome) {
          const { refused: error } = outcome;
          // The link was used meanwhile, or the address took an account: nothing left to fill in.
          if (error.code.startsWith('account.') || error.code === 'user.email_taken') {
            return refused(reply, tp, locale, error);
          }
          if (error.code === 'signup.name_invalid')
            return nameForm(reply, tp, locale, token, secret, { error, name });
          return createPasskey(reply, tp, locale, target(tp, token, secret, name), error);
        }
        if (!codes) return kit.page(reply, invitedPage({ locale, brand: brandFor(tp), passkey: true }));
        return kit.page(
          reply,
          recoveryCodesPage({
            locale,
            brand: brandFor(tp),
            csrf: tp.csrfToken(DONE),
            action: `${stepBase(tp)}/done`,
            codes,
          }),
        );
      },
    );

    // After the recovery codes: the account is ready, to sign in from the application.
    app.post<{ Params: TenantParams; Body: Form }>(
      '/t/:tenant/invitation/passkey/done',
      async (request, reply) => {
        const { tp, locale } = await standalone(request);
        kit.checkCsrf(tp, DONE, request.body);
        return kit.page(reply, invitedPage({ locale, brand: brandFor(tp), passkey: true }));
      },
    );
  }

  return {
    /** The sign-in page's "Create an account" link: only where the tenant has sign-up on. */
    url(tp: TenantProvider, uid: string): string | undefined {
      return signUpSettingsOf(tp.tenant).enabled ? `${kit.base(tp, uid)}/sign-up` : undefined;
    },
    /** The page after the right password of an account that waits for its address. */
    unverified(reply: FastifyReply, tp: TenantProvider, details: Interaction, email: string) {
      return unverified(reply, tp, localeOf(reply.request, tp, details), details.uid, email);
    },
  };
}

function closed(): OrthIdError {
  return new OrthIdError('signup.closed', 'This organisation does not offer sign-up.');
}
