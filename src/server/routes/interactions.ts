// The hosted sign-in and consent steps of an authorization request: render the page for the
// provider's current prompt, check the CSRF token, sign in, grant consent, finish the interaction.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isOrthIdError, OrthIdError } from '../../core/errors.js';
import type { Mfa } from '../../identity/mfa.js';
import type { Passkeys } from '../../identity/passkeys.js';
import type { PasswordSignInInput, SignInResult } from '../../identity/password-sign-in.js';
import { FIRST_PARTY_METADATA } from '../../oidc/clients.js';
import type { OidcProviders, TenantProvider } from '../../oidc/providers.js';
import { chooseLocale, type Locale } from '../../web/i18n.js';
import { PAGE_HEADERS, SCRIPTED_PAGE_HEADERS } from '../../web/layout.js';
import { consentPage } from '../../web/pages/consent.js';
import { errorPage } from '../../web/pages/messages.js';
import { signInPage } from '../../web/pages/sign-in.js';
import { userFacingError } from '../../web/user-error.js';
import { registerUrlEncodedForm, sameToken } from '../plugins/url-encoded-form.js';
import type {
  Form,
  Interaction,
  InteractionResults,
  InteractionParams as Params,
} from './interaction-types.js';
import { type MfaStepsOptions, mfaSteps } from './mfa-steps.js';
import { passkeyScriptPath, passkeySteps } from './passkey-steps.js';
import { forgotPasswordPath } from './password-reset.js';
import { type SignUpStepsOptions, signUpSteps } from './sign-up-steps.js';
import { brandFor } from './tenant-brand.js';

export type PasswordSignIn = (input: PasswordSignInInput) => Promise<SignInResult>;

export async function interactionRoutes(
  app: FastifyInstance,
  opts: {
    providers: OidcProviders;
    signIn: PasswordSignIn;
    /** The second-factor steps after the password (src/server/routes/mfa-steps.ts). */
    mfa: Omit<MfaStepsOptions, 'mfa'> & { mfa: Mfa };
    passkeys?: Passkeys;
    /** Self sign-up, verification and invitations (src/server/routes/sign-up-steps.ts). */
    signUp?: SignUpStepsOptions['signUp'];
  },
): Promise<void> {
  registerUrlEncodedForm(app);

  async function load(request: FastifyRequest<{ Params: Params }>, reply: FastifyReply) {
    const tp = await opts.providers.get(request.params.tenant);
    const details = await tp.provider.interactionDetails(request.raw, reply.raw);
    if (details.uid !== request.params.uid) {
      throw new OrthIdError(
        'request.invalid',
        'This sign-in page belongs to another request; start again from the application.',
      );
    }
    return { tp, details };
  }

  /**
   * Records the outcome on the interaction `load` read and sends the browser back to the
   * provider: what `provider.interactionFinished` does, without reading the interaction (and its
   * session) from the database a second time.
   */
  async function finish(
    reply: FastifyReply,
    interaction: Interaction,
    result: InteractionResults,
    { mergeWithLastSubmission }: { mergeWithLastSubmission: boolean },
  ) {
    interaction.result =
      mergeWithLastSubmission && !('error' in result) ? { ...interaction.lastSubmission, ...result } : result;
    await interaction.save(interaction.exp - Math.floor(Date.now() / 1000));
    return reply.redirect(interaction.returnTo, 303);
  }

  /** The page language: the authorization request's ui_locales, the browser's, the tenant's. */
  function localeOf(request: FastifyRequest, tp?: TenantProvider, details?: Interaction): Locale {
    return chooseLocale({
      uiLocales: details?.params.ui_locales,
      acceptLanguage: request.headers['accept-language'],
      tenantDefault: tp?.tenant.settings.defaultLocale,
    });
  }

  // With passkeys on, every interaction page may load the passkey script from this origin.
  function page(reply: FastifyReply, body: string, status = 200, scripted = opts.passkeys !== undefined) {
    return reply
      .status(status)
      .headers(scripted ? SCRIPTED_PAGE_HEADERS : PAGE_HEADERS)
      .send(body);
  }

  /** Form actions: the issuer's path on the public URL, never a Host the request named. */
  function base(tp: TenantProvider, uid: string) {
    return `${new URL(tp.provider.issuer).pathname}/interaction/${encodeURIComponent(uid)}`;
  }

  async function clientOf(tp: TenantProvider, clientId: unknown) {
    const client = await tp.provider.Client.find(String(clientId));
    return {
      name: client?.clientName ?? String(clientId),
      firstParty: client?.metadata()[FIRST_PARTY_METADATA] === true,
    };
  }

  /** Grants what the consent prompt found missing, in the user's grant for this client. */
  async function grantMissing(tp: TenantProvider, details: Interaction): Promise<string> {
    const { Grant } = tp.provider;
    const owner = { accountId: details.session!.accountId, clientId: String(details.params.client_id) };
    const grant = (details.grantId && (await Grant.find(details.grantId))) || new Grant(owner);
    const missing = details.prompt.details as {
      missingOIDCScope?: string[];
      missingOIDCClaims?: string[];
      missingResourceScopes?: Record<string, string[]>;
    };
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    return grant.save();
  }

  function renderSignIn(
    locale: Locale,
    tp: TenantProvider,
    uid: string,
    name: string,
    email?: string,
    error?: string,
    errorCode?: string,
  ): string {
    return signInPage({
      locale,
      brand: brandFor(tp),
      clientName: name,
      action: `${base(tp, uid)}/login`,
      csrf: tp.csrfToken(uid),
      email,
      error,
      errorCode,
      forgotPasswordUrl: forgotPasswordPath(tp.provider.issuer, uid, locale.tag),
      signUpUrl: signUpKind?.url(tp, uid),
      ...(opts.passkeys
        ? {
            passkey: {
              action: `${base(tp, uid)}/passkey`,
              options: `${base(tp, uid)}/passkey/options`,
              script: passkeyScriptPath(tp),
            },
          }
        : {}),
    });
  }

  function checkCsrf(tp: TenantProvider, uid: string, form: Form | undefined) {
    if (!sameToken(form?.csrf, tp.csrfToken(uid))) {
      throw new OrthIdError('auth.forbidden', 'The form expired. Go back and sign in again.');
    }
  }

  const kit = {
    load,
    finish,
    page,
    base,
    checkCsrf,
    clientName: async (tp: TenantProvider, clientId: unknown) => (await clientOf(tp, clientId)).name,
    locale: localeOf,
  };
  const passkeyKind = opts.passkeys ? passkeySteps(kit, { ...opts.mfa, passkeys: opts.passkeys }) : undefined;
  const steps = mfaSteps(
    app,
    kit,
    passkeyKind
      ? {
          ...opts.mfa,
          hasOtherFactors: passkeyKind.hasOtherFactors,
          extraSections: passkeyKind.extraSections,
          enrolSections: passkeyKind.enrolSections,
          renderStep: passkeyKind.renderStep,
        }
      : opts.mfa,
  );
  const passkeyEnrolled = passkeyKind?.attach(app, steps, {
    async again(reply, tp, details, error): Promise<FastifyReply> {
      const { name } = await clientOf(tp, details.params.client_id);
      const locale = localeOf(reply.request, tp, details);
      return page(
        reply,
        renderSignIn(locale, tp, details.uid, name, undefined, userFacingError(locale, error), error.code),
        error.httpStatus,
      );
    },
  });

  const signUpKind: ReturnType<typeof signUpSteps> | undefined = opts.signUp
    ? signUpSteps(app, kit, {
        signUp: opts.signUp,
        providers: opts.providers,
        ...(opts.passkeys && passkeyEnrolled
          ? {
              passkeys: {
                passkeys: opts.passkeys,
                accountName: opts.mfa.accountName,
                enrolled: passkeyEnrolled.enrolled,
                mfa: opts.mfa.mfa,
              },
            }
          : {}),
      })
    : undefined;

  app.setErrorHandler(async (error, request, reply) => {
    const slug = (request.params as Partial<Params>).tenant ?? '';
    // The tenant's default language when the tenant is there to ask (a refused slug has none).
    const tp = await opts.providers.get(slug).catch(() => undefined);
    const locale = localeOf(request, tp);
    const known = isOrthIdError(error) ? userFacingError(locale, error) : locale.t('error.generic');
    request.log.info({ err: error }, 'interaction failed');
    return page(
      reply,
      errorPage(locale, tp ? brandFor(tp) : { name: slug }, locale.t('error.cannotContinue'), known),
      isOrthIdError(error) ? error.httpStatus : 400,
    );
  });

  app.get<{ Params: Params }>('/t/:tenant/interaction/:uid', async (request, reply) => {
    const { tp, details } = await load(request, reply);
    const { name, firstParty } = await clientOf(tp, details.params.client_id);
    if (details.prompt.name === 'consent' && firstParty && details.session) {
      // The tenant's own application: what it asks for is granted without a page.
      const grantId = await grantMissing(tp, details);
      return finish(reply, details, { consent: { grantId } }, { mergeWithLastSubmission: true });
    }
    if (details.prompt.name === 'login') {
      const pending = await steps.pendingFor(tp, details);
      if (pending) return steps.render(reply, tp, details, pending);
      const hint = typeof details.params.login_hint === 'string' ? details.params.login_hint : undefined;
      return page(reply, renderSignIn(localeOf(request, tp, details), tp, details.uid, name, hint));
    }
    const missing = details.prompt.details as {
      missingOIDCScope?: string[];
      missingResourceScopes?: Record<string, string[]>;
    };
    return page(
      reply,
      consentPage({
        locale: localeOf(request, tp, details),
        brand: brandFor(tp),
        clientName: name,
        action: `${base(tp, details.uid)}/consent`,
        abortAction: `${base(tp, details.uid)}/abort`,
        csrf: tp.csrfToken(details.uid),
        scopes: missing.missingOIDCScope ?? [],
        resources: Object.entries(missing.missingResourceScopes ?? {}).map(([indicator, scopes]) => ({
          indicator,
          scopes,
        })),
      }),
    );
  });

  app.post<{ Params: Params; Body: Form }>('/t/:tenant/interaction/:uid/login', async (request, reply) => {
    const { tp, details } = await load(request, reply);
    if (!sameToken(request.body?.csrf, tp.csrfToken(details.uid))) {
      throw new OrthIdError('auth.forbidden', 'The form expired. Go back and sign in again.');
    }
    const email = request.body?.email ?? '';
    const { name } = await clientOf(tp, details.params.client_id);
    const plan = steps.planAfterPassword(tp, details);
    try {
      const signedIn = await opts.signIn({
        tenantId: tp.tenant.id,
        email,
        password: request.body?.password ?? '',
        ip: request.ip,
        userAgent: request.headers['user-agent'],
        clientId: String(details.params.client_id),
        secondStep: plan.secondStep,
      });
      return await steps.afterPassword(reply, tp, details, signedIn, plan);
    } catch (error) {
      if (!isOrthIdError(error) || error.kind === 'internal') throw error;
      if (signUpKind && isOrthIdError(error, 'signup.email_unverified'))
        return signUpKind.unverified(reply, tp, details, email);
      const locale = localeOf(request, tp, details);
      if (error.details?.retryAfterSeconds)
        reply.header('retry-after', String(error.details.retryAfterSeconds));
      return page(
        reply,
        renderSignIn(locale, tp, details.uid, name, email, userFacingError(locale, error), error.code),
        error.httpStatus,
      );
    }
  });

  app.post<{ Params: Params; Body: Form }>('/t/:tenant/interaction/:uid/consent', async (request, reply) => {
    const { tp, details } = await load(request, reply);
    if (!sameToken(request.body?.csrf, tp.csrfToken(details.uid))) {
      throw new OrthIdError('auth.forbidden', 'The form expired. Go back and try again.');
    }
    if (details.prompt.name !== 'consent' || !details.session) {
      throw new OrthIdError(
        'request.invalid',
        'There is nothing to consent to; start again from the application.',
      );
    }
    const grantId = await grantMissing(tp, details);
    return finish(reply, details, { consent: { grantId } }, { mergeWithLastSubmission: true });
  });

  app.post<{ Params: Params; Body: Form }>('/t/:tenant/interaction/:uid/abort', async (request, reply) => {
    const { tp, details } = await load(request, reply);
    if (!sameToken(request.body?.csrf, tp.csrfToken(details.uid))) {
      throw new OrthIdError('auth.forbidden', 'The form expired. Go back and try again.');
    }
    return finish(
      reply,
      details,
      { error: 'access_denied', error_description: 'The user denied the request.' },
      { mergeWithLastSubmission: false },
    );
  });
}
