// The hosted sign-in page: email and password, a CSRF token bound to the interaction, and one
// generic error whichever of the two was wrong. With JavaScript, passkeys as well: autofill on
// the email field where the browser supports conditional mediation, and a button.
import { html } from '../../core/html.js';
import type { Brand } from '../brand.js';
import type { Locale } from '../i18n.js';
import { layout } from '../layout.js';
import { passkeyScriptMessages } from './passkeys.js';

export interface SignInPage {
  locale: Locale;
  brand: Brand;
  clientName: string;
  action: string;
  csrf: string;
  email?: string;
  /** Already in the page's language (see `userFacingError`). */
  error?: string;
  /** The error's stable code, for scripts reading the page. */
  errorCode?: string;
  /** Where "Forgot password?" leads; absent, the page offers no reset. */
  forgotPasswordUrl?: string;
  /** Where "Create an account" leads; absent (sign-up off for the tenant), no link. */
  signUpUrl?: string;
  /** Passkey sign-in: where the script fetches options, posts the assertion, and loads from. */
  passkey?: { action: string; options: string; script: string };
}

export function signInPage(p: SignInPage): string {
  const { t } = p.locale;
  return layout(
    t('signIn.title'),
    p.brand,
    html`<h1>${t('signIn.heading')}</h1>
<p class="sub">${t('signIn.subtitle', { client: p.clientName })}</p>
<form method="post" action="${p.action}" autocomplete="on">
<input type="hidden" name="csrf" value="${p.csrf}">
<label for="email">${t('signIn.email')}</label>
<input id="email" name="email" type="email" autocomplete="${p.passkey ? 'username webauthn' : 'username'}" required autofocus value="${p.email ?? ''}">
<label for="password">${t('signIn.password')}</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
${p.error ? html`<p class="error" role="alert"${p.errorCode ? html` data-code="${p.errorCode}"` : ''}>${p.error}</p>` : ''}
<button type="submit">${t('signIn.submit')}</button>
</form>
${p.forgotPasswordUrl ? html`<p class="links"><a href="${p.forgotPasswordUrl}">${t('signIn.forgotPassword')}</a></p>\n` : ''}${
  p.signUpUrl
    ? html`<p class="links">${t('signIn.noAccount')} <a href="${p.signUpUrl}">${t('signIn.signUp')}</a></p>\n`
    : ''
}${
  p.passkey
    ? html`<form id="passkey-form" method="post" action="${p.passkey.action}" data-options="${p.passkey.options}" data-mode="sign-in" data-autofill="on" ${passkeyScriptMessages(p.locale)}>
<input type="hidden" name="csrf" value="${p.csrf}">
<input type="hidden" name="response" value="">
<p id="passkey-status" class="error" role="status" hidden></p>
<button type="button" id="passkey-button" class="secondary" hidden>${t('signIn.passkey')}</button>
</form>`
    : ''
}`,
    p.locale,
    p.passkey?.script,
  );
}
