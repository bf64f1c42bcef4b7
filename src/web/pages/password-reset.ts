// The "Forgot password?" pages: ask for a link (one neutral answer whether or not the address has
// an account), choose the new password the link allows, and the pages that end either way.
// Plain forms with a CSRF token; no script.
import { html } from '../../core/html.js';
import type { Brand } from '../brand.js';
import type { Locale } from '../i18n.js';
import { layout } from '../layout.js';

/** What an error shown on these pages carries: its stable code and the safe details. */
export interface ResetPageError {
  code: string;
  details?: Record<string, unknown> | undefined;
}

/** The page's words for an error: by its code, in the page's language. */
export function resetErrorMessage(locale: Locale, error: ResetPageError): string {
  const key = `reset.error.${error.code}`;
  const params = {
    min: Number(error.details?.minLength ?? 0),
    max: Number(error.details?.maxLength ?? 0),
  };
  return locale.has(key) ? locale.t(key, params) : locale.t('reset.error.other');
}

function errorLine(locale: Locale, error: ResetPageError | undefined) {
  return error
    ? html`<p class="error" role="alert" data-code="${error.code}">${resetErrorMessage(locale, error)}</p>\n`
    : '';
}

function signInLink(locale: Locale, signInUrl: string | undefined) {
  return signInUrl
    ? html`<p class="links"><a href="${signInUrl}">${locale.t('reset.backToSignIn')}</a></p>\n`
    : '';
}

export interface ForgotPasswordPage {
  locale: Locale;
  brand: Brand;
  action: string;
  csrf: string;
  /** Carried through the form: the sign-in this started from, and the language asked for. */
  hidden: Record<string, string>;
  email?: string;
  error?: ResetPageError;
  /** The sign-in page to go back to, when the reset started from one. */
  signInUrl?: string;
}

export function forgotPasswordPage(p: ForgotPasswordPage): string {
  const { t } = p.locale;
  return layout(
    t('reset.forgot.title'),
    p.brand,
    html`<h1>${t('reset.forgot.heading')}</h1>
<p class="sub">${t('reset.forgot.subtitle')}</p>
<form method="post" action="${p.action}">
<input type="hidden" name="csrf" value="${p.csrf}">
${Object.entries(p.hidden).map(([name, value]) => html`<input type="hidden" name="${name}" value="${value}">\n`)}<label for="email">${t('reset.forgot.email')}</label>
<input id="email" name="email" type="email" autocomplete="username" required autofocus value="${p.email ?? ''}">
${errorLine(p.locale, p.error)}<button type="submit">${t('reset.forgot.submit')}</button>
</form>
${signInLink(p.locale, p.signInUrl)}`,
    p.locale,
  );
}

/** The one answer to every accepted request, sent or not: it names no address. */
export function resetSentPage(p: {
  locale: Locale;
  brand: Brand;
  minutes: number;
  signInUrl?: string;
}): string {
  const { t } = p.locale;
  return layout(
    t('reset.sent.title'),
    p.brand,
    html`<h1>${t('reset.sent.heading')}</h1>
<p class="sub">${t('reset.sent.body', { minutes: p.minutes })}</p>
<p>${t('reset.sent.nothing')}</p>
${signInLink(p.locale, p.signInUrl)}`,
    p.locale,
  );
}

export interface NewPasswordPage {
  locale: Locale;
  brand: Brand;
  action: string;
  csrf: string;
  /** The link's secret, posted back with the new password (never in the action's URL). */
  token: string;
  minLength: number;
  maxLength: number;
  error?: ResetPageError;
}

export function newPasswordPage(p: NewPasswordPage): string {
  const { t } = p.locale;
  return layout(
    t('reset.new.title'),
    p.brand,
    html`<h1>${t('reset.new.heading')}</h1>
<p class="sub">${t('reset.new.subtitle', { min: p.minLength })}</p>
<form method="post" action="${p.action}">
<input type="hidden" name="csrf" value="${p.csrf}">
<input type="hidden" name="token" value="${p.token}">
<input type="hidden" name="ui_locales" value="${p.locale.tag}">
<label for="password">${t('reset.new.password')}</label>
<input id="password" name="password" type="password" autocomplete="new-password" required autofocus minlength="${String(p.minLength)}" maxlength="${String(p.maxLength)}">
<label for="confirm">${t('reset.new.confirm')}</label>
<input id="confirm" name="confirm" type="password" autocomplete="new-password" required minlength="${String(p.minLength)}" maxlength="${String(p.maxLength)}">
${errorLine(p.locale, p.error)}<button type="submit">${t('reset.new.submit')}</button>
</form>`,
    p.locale,
  );
}

/** After a reset: nobody is signed in; the way back is a new sign-in. */
export function passwordChangedPage(p: { locale: Locale; brand: Brand; signInUrl?: string }): string {
  const { t } = p.locale;
  return layout(
    t('reset.done.title'),
    p.brand,
    html`<h1>${t('reset.done.heading')}</h1>
<p class="sub">${t('reset.done.body')}</p>
${
  p.signInUrl
    ? html`<p class="links"><a href="${p.signInUrl}">${t('reset.done.signIn')}</a></p>`
    : html`<p>${t('reset.done.returnToApp')}</p>`
}`,
    p.locale,
  );
}

/** An expired, used or forged link: what happened, and where to ask for a new one. */
export function resetLinkErrorPage(p: {
  locale: Locale;
  brand: Brand;
  error: ResetPageError;
  forgotUrl: string;
}): string {
  const { t } = p.locale;
  return layout(
    t('reset.error.title'),
    p.brand,
    html`<h1>${t('reset.error.title')}</h1>
${errorLine(p.locale, p.error)}<p class="links"><a href="${p.forgotUrl}">${t('reset.error.askAgain')}</a></p>`,
    p.locale,
  );
}
