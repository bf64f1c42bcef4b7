// The hosted "Forgot password?" pages under /t/:tenant/password: ask for a link, open it, set a
// new password. Forms carry a CSRF token bound to a cookie of these pages; the answer to a request
// is one page whether or not the address has an account (src/identity/password-reset.ts).
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isOrthIdError, OrthIdError } from '../../core/errors.js';
import type { PasswordReset } from '../../identity/password-reset.js';
import type { OidcProviders, TenantProvider } from '../../oidc/providers.js';
import { chooseLocale, type Locale } from '../../web/i18n.js';
import { PAGE_HEADERS } from '../../web/layout.js';
import { passwordChangedMail, resetLinkMail } from '../../web/mails/password-reset.js';
import { errorPage } from '../../web/pages/messages.js';
import {
  forgotPasswordPage,
  newPasswordPage,
  passwordChangedPage,
  resetErrorMessage,
  resetLinkErrorPage,
  resetSentPage,
} from '../../web/pages/password-reset.js';
import { registerUrlEncodedForm, sameToken } from '../plugins/url-encoded-form.js';
import { brandFor } from './tenant-brand.js';

type Params = { tenant: string };
type Form = Partial<Record<string, unknown>>;

/** A form or query field as text: anything else (a repeated parameter, a JSON value) is empty. */
const field = (form: Form | undefined, name: string): string => {
  const value = form?.[name];
  return typeof value === 'string' ? value : '';
};

const COOKIE = 'orthid_reset';
const COOKIE_VALUE = /^[A-Za-z0-9_-]{43}$/;
/** An interaction uid as oidc-provider makes them; anything else is not carried. */
const INTERACTION = /^[A-Za-z0-9_-]{1,128}$/;
const LINK_ERRORS = new Set(['account.link_invalid', 'account.link_expired', 'account.link_used']);

export interface PasswordResetRouteDeps {
  providers: Pick<OidcProviders, 'get'>;
  passwordReset: PasswordReset;
}

/** The path of the sign-in a reset started from, for links back to it. */
export function forgotPasswordPath(issuer: string, interaction: string, locale: string): string {
  const query = new URLSearchParams({ interaction, ui_locales: locale });
  return `${new URL(issuer).pathname}/password/forgot?${query}`;
}

export async function passwordResetRoutes(app: FastifyInstance, deps: PasswordResetRouteDeps): Promise<void> {
  registerUrlEncodedForm(app);

  const base = (tp: TenantProvider) => `${new URL(tp.provider.issuer).pathname}/password`;
  const page = (reply: FastifyReply, body: string, status = 200) =>
    reply.status(status).headers(PAGE_HEADERS).send(body);

  function localeOf(request: FastifyRequest, tp: TenantProvider | undefined, asked?: unknown): Locale {
    return chooseLocale({
      uiLocales: asked,
      acceptLanguage: request.headers['accept-language'],
      tenantDefault: tp?.tenant.settings.defaultLocale,
    });
  }

  /** The browser's CSRF cookie for these pages, made (and set) when it has none. */
  function csrfCookie(request: FastifyRequest, reply: FastifyReply, tp: TenantProvider): string {
    const sent = cookieOf(request);
    if (sent) return sent;
    const value = randomBytes(32).toString('base64url');
    const secure = new URL(tp.provider.issuer).protocol === 'https:' ? '; Secure' : '';
    reply.header('set-cookie', `${COOKIE}=${value}; Path=${base(tp)}; HttpOnly; SameSite=Lax${secure}`);
    return value;
  }

  function cookieOf(request: FastifyRequest): string | undefined {
    for (const part of (request.headers.cookie ?? '').split(';')) {
      const [name, value] = part.trim().split('=', 2);
      if (name === COOKIE && value && COOKIE_VALUE.test(value)) return value;
    }
    return undefined;
  }

  // Keyed by the tenant's CSRF key; the prefix keeps it apart from interaction uids.
  const csrfFor = (tp: TenantProvider, cookie: string) => tp.csrfToken(`password-reset:${cookie}`);

  function checkCsrf(request: FastifyRequest, tp: TenantProvider, form: Form | undefined) {
    const cookie = cookieOf(request);
    if (!cookie || !sameToken(field(form, 'csrf'), csrfFor(tp, cookie))) {
      throw new OrthIdError('auth.forbidden', 'The form expired. Load the page again and try once more.');
    }
  }

  const interactionOf = (value: unknown) =>
    typeof value === 'string' && INTERACTION.test(value) ? value : undefined;
  const signInUrl = (tp: TenantProvider, interaction: string | undefined) =>
    interaction
      ? `${new URL(tp.provider.issuer).pathname}/interaction/${encodeURIComponent(interaction)}`
      : undefined;

  app.setErrorHandler(async (error, request, reply) => {
    const tp = await deps.providers
      .get((request.params as Partial<Params>).tenant ?? '')
      .catch(() => undefined);
    const locale = localeOf(request, tp);
    request.log.info({ err: error }, 'password reset page failed');
    const known = isOrthIdError(error);
    const detail = known ? resetErrorMessage(locale, error) : locale.t('reset.error.other');
    return page(
      reply,
      errorPage(locale, tp ? brandFor(tp) : { name: '' }, locale.t('error.cannotContinue'), detail),
      known && error.kind !== 'internal' ? error.httpStatus : 400,
    );
  });

  /** An expired, used or forged link: its own page, 410 when the link was real but is spent. */
  function linkError(reply: FastifyReply, tp: TenantProvider, locale: Locale, error: OrthIdError) {
    const query = new URLSearchParams({ ui_locales: locale.tag });
    return page(
      reply,
      resetLinkErrorPage({
        locale,
        brand: brandFor(tp),
        error,
        forgotUrl: `${base(tp)}/forgot?${query}`,
      }),
      error.code === 'account.link_invalid' ? 400 : 410,
    );
  }

  function renderForgot(
    request: FastifyRequest,
    reply: FastifyReply,
    tp: TenantProvider,
    locale: Locale,
    values: { interaction?: string; email?: string; error?: OrthIdError },
  ) {
    const hidden: Record<string, string> = { ui_locales: locale.tag };
    if (values.interaction) hidden.interaction = values.interaction;
    const signIn = signInUrl(tp, values.interaction);
    return page(
      reply,
      forgotPasswordPage({
        locale,
        brand: brandFor(tp),
        action: `${base(tp)}/forgot`,
        csrf: csrfFor(tp, csrfCookie(request, reply, tp)),
        hidden,
        ...(values.email !== undefined ? { email: values.email } : {}),
        ...(values.error ? { error: values.error } : {}),
        ...(signIn ? { signInUrl: signIn } : {}),
      }),
      values.error ? values.error.httpStatus : 200,
    );
  }

  app.get<{ Params: Params; Querystring: Form }>('/t/:tenant/password/forgot', async (request, reply) => {
    const tp = await deps.providers.get(request.params.tenant);
    const locale = localeOf(request, tp, field(request.query, 'ui_locales'));
    const interaction = interactionOf(field(request.query, 'interaction'));
    return renderForgot(request, reply, tp, locale, interaction ? { interaction } : {});
  });

  app.post<{ Params: Params; Body: Form }>('/t/:tenant/password/forgot', async (request, reply) => {
    const tp = await deps.providers.get(request.params.tenant);
    checkCsrf(request, tp, request.body);
    const form = request.body;
    const locale = localeOf(request, tp, field(form, 'ui_locales'));
    const interaction = interactionOf(field(form, 'interaction'));
    const brand = brandFor(tp);
    const email = field(form, 'email');
    try {
      await deps.passwordReset.request({
        tenantId: tp.tenant.id,
        email,
        ip: request.ip,
        ...(request.headers['user-agent'] ? { userAgent: request.headers['user-agent'] } : {}),
        data: { locale: locale.tag, ...(interaction ? { interaction } : {}) },
        composeLink: ({ secret, expiresAt }) =>
          resetLinkMail(locale, brand, {
            url: `${tp.provider.issuer}/password/reset?${new URLSearchParams({ token: secret })}`,
            expiresAt,
          }),
      });
    } catch (error) {
      if (!isOrthIdError(error, 'request.invalid')) throw error;
      return renderForgot(request, reply, tp, locale, {
        email,
        error,
        ...(interaction ? { interaction } : {}),
      });
    }
    const signIn = signInUrl(tp, interaction);
    return page(
      reply,
      resetSentPage({
        locale,
        brand,
        minutes: Math.round(deps.passwordReset.options.ttlSeconds / 60),
        ...(signIn ? { signInUrl: signIn } : {}),
      }),
    );
  });

  async function renderNewPassword(
    request: FastifyRequest,
    reply: FastifyReply,
    tp: TenantProvider,
    token: string,
    asked: unknown,
    error?: OrthIdError,
  ) {
    let link: Awaited<ReturnType<PasswordReset['check']>>;
    try {
      link = await deps.passwordReset.check(tp.tenant.id, token);
    } catch (cause) {
      if (isOrthIdError(cause) && LINK_ERRORS.has(cause.code))
        return linkError(reply, tp, localeOf(request, tp, asked), cause);
      throw cause;
    }
    const locale = localeOf(request, tp, asked || link.data.locale);
    return page(
      reply,
      newPasswordPage({
        locale,
        brand: brandFor(tp),
        action: `${base(tp)}/reset`,
        csrf: csrfFor(tp, csrfCookie(request, reply, tp)),
        token,
        minLength: link.minLength,
        maxLength: link.maxLength,
        ...(error ? { error } : {}),
      }),
      error ? error.httpStatus : 200,
    );
  }

  app.get<{ Params: Params; Querystring: Form }>('/t/:tenant/password/reset', async (request, reply) => {
    const tp = await deps.providers.get(request.params.tenant);
    return renderNewPassword(
      request,
      reply,
      tp,
      field(request.query, 'token'),
      field(request.query, 'ui_locales'),
    );
  });

  app.post<{ Params: Params; Body: Form }>('/t/:tenant/password/reset', async (request, reply) => {
    const tp = await deps.providers.get(request.params.tenant);
    checkCsrf(request, tp, request.body);
    const form = request.body;
    const token = field(form, 'token');
    const password = field(form, 'password');
    const asked = field(form, 'ui_locales');
    if (password !== field(form, 'confirm')) {
      const mismatch = new OrthIdError(
        'account.password_mismatch',
        'The two passwords are not the same. Type the new password twice.',
      );
      return renderNewPassword(request, reply, tp, token, asked, mismatch);
    }
    let done: Awaited<ReturnType<PasswordReset['complete']>>;
    try {
      done = await deps.passwordReset.complete({
        tenantId: tp.tenant.id,
        secret: token,
        password,
        ip: request.ip,
        ...(request.headers['user-agent'] ? { userAgent: request.headers['user-agent'] } : {}),
        composeChanged: (at) => passwordChangedMail(localeOf(request, tp, asked), brandFor(tp), at),
      });
    } catch (error) {
      if (!isOrthIdError(error)) throw error;
      if (LINK_ERRORS.has(error.code)) return linkError(reply, tp, localeOf(request, tp, asked), error);
      if (error.code.startsWith('password.'))
        return renderNewPassword(request, reply, tp, token, asked, error);
      throw error;
    }
    const locale = localeOf(request, tp, asked || done.data.locale);
    const signIn = signInUrl(tp, interactionOf(done.data.interaction));
    return page(
      reply,
      passwordChangedPage({ locale, brand: brandFor(tp), ...(signIn ? { signInUrl: signIn } : {}) }),
    );
  });
}
