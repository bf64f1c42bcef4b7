// The hosted sign-in page: email and password, a CSRF token bound to the interaction, and one
// generic error whichever of the two was wrong.
import { html } from '../html.js';
import type { Locale } from '../i18n.js';
import { layout } from '../layout.js';

export interface SignInPage {
  locale: Locale;
  tenantName: string;
  clientName: string;
  action: string;
  csrf: string;
  email?: string;
  /** Already in the page's language (see `userFacingError`). */
  error?: string;
}

export function signInPage(p: SignInPage): string {
  const { t } = p.locale;
  return layout(
    t('signIn.title'),
    p.tenantName,
    html`<h1>${t('signIn.heading')}</h1>
<p class="sub">${t('signIn.subtitle', { client: p.clientName })}</p>
<form method="post" action="${p.action}" autocomplete="on">
<input type="hidden" name="csrf" value="${p.csrf}">
<label for="email">${t('signIn.email')}</label>
<input id="email" name="email" type="email" autocomplete="username" required autofocus value="${p.email ?? ''}">
<label for="password">${t('signIn.password')}</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
${p.error ? html`<p class="error" role="alert">${p.error}</p>` : ''}
<button type="submit">${t('signIn.submit')}</button>
</form>`,
    p.locale,
  );
}
