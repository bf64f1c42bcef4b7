// The hosted sign-up steps: the form reached from the sign-in page of an authorization request,
// the code typed on the page, the mailed verification link and the invitation link; each form CSRF-protected.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isOrthIdError, OrthIdError } from '../../core/errors.js';
import { type SignUp, signUpSettingsOf } from '../../identity/sign-up.js';
import type { OidcProviders, TenantProvider } from '../../oidc/providers.js';
import { chooseLocale, type Locale } from '../../web/i18n.js';
import {
  checkMailPage,
  confirmLinkPage,
  invitationPage,
  invitedPage,
  signUpErrorPage,
  signUpPage,
  unverifiedPage,
  verifiedPage,
} from '../../web/pages/sign-up.js';
import { userFacingError } from '../../web/user-error.js';
import type { Form, Interaction, InteractionParams as Params } from './interaction-types.js';
import type { InteractionKit } from './mfa-steps.js';
import { brandFor } from './tenant-brand.js';

export interface SignUpStepsOptions {
  signUp: SignUp;
  providers: OidcProviders;
}

type TenantParams = { tenant: string };
type TokenQuery = { token?: string };

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
      try {
        await signUp.verifyCode(tp.tenant, tokenId, request.body?.code ?? '');
      } catch (error) {
        if (!explained(error)) throw error;
        return checkMail(reply, tp, locale, details.uid, email, tokenId, error);
      }
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
        return kit.page(
          reply,
          confirmLinkPage({
            locale,
            brand: brandFor(tp),
            action: `${issuerPath(tp)}/sign-up/verify`,
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
