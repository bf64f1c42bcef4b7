// Hosted pages that say one thing: sign-out confirmation, signed out, and errors. The sign-out
// form is the provider's own (it carries its xsrf token), placed in our frame.
import { html, SafeHtml } from '../../core/html.js';
import type { Brand } from '../brand.js';
import type { Locale } from '../i18n.js';
import { layout } from '../layout.js';

export function signOutPage(locale: Locale, brand: Brand, providerForm: string): string {
  const { t } = locale;
  return layout(
    t('signOut.title'),
    brand,
    html`<h1>${t('signOut.heading')}</h1>
<p class="sub">${t('signOut.body', { tenant: brand.name })}</p>
${new SafeHtml(providerForm)}
<button type="submit" form="op.logoutForm" name="logout" value="yes" autofocus>${t('signOut.confirm')}</button>
<button type="submit" form="op.logoutForm" class="secondary">${t('signOut.stay')}</button>`,
    locale,
  );
}

export function signedOutPage(locale: Locale, brand: Brand): string {
  const { t } = locale;
  return layout(
    t('signedOut.title'),
    brand,
    html`<h1>${t('signedOut.heading')}</h1><p class="sub">${t('signedOut.body')}</p>`,
    locale,
  );
}

/** `title` and `detail` are already in the page's language (see `userFacingError`). */
export function errorPage(locale: Locale, brand: Brand, title: string, detail: string): string {
  return layout(
    locale.t('error.title'),
    brand,
    html`<h1>${title}</h1><p class="error">${detail}</p>`,
    locale,
  );
}

/**
 * A protocol error the provider renders (a bad redirect_uri, an unknown client). Its description
 * is the engine's, in English; other languages say what happened and keep the stable error code.
 */
export function protocolErrorPage(
  locale: Locale,
  brand: Brand,
  out: { error: string; error_description?: string },
): string {
  const detail =
    locale.tag === 'en'
      ? (out.error_description ?? out.error)
      : locale.t('error.protocol', { code: out.error });
  return errorPage(locale, brand, locale.t('error.somethingWentWrong'), detail);
}
