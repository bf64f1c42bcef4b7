// The second-factor step of the hosted sign-in, shown only after a correct password: a code from
// the authenticator app, or a recovery code instead. Other kinds of factor add their own section.
import { html, type SafeHtml } from '../../core/html.js';
import type { Brand } from '../brand.js';
import type { Locale } from '../i18n.js';
import { layout } from '../layout.js';

export interface SecondFactorPage {
  locale: Locale;
  brand: Brand;
  clientName: string;
  csrf: string;
  /** Where the code form posts. */
  action: string;
  /** Show the recovery-code form instead of the app-code form. */
  recovery: boolean;
  /** The user has an authenticator app: the recovery form links back to its form. */
  totp: boolean;
  /** The link between the two forms. */
  otherLink: string;
  /** Already in the page's language. */
  error?: string;
  /** The error's stable code, for scripts reading the page. */
  errorCode?: string;
  /** Markup of further factors the user can use (another kind's section); empty by default. */
  extra?: SafeHtml[];
}

export function secondFactorPage(p: SecondFactorPage): string {
  const { t } = p.locale;
  const form = p.recovery
    ? html`<form id="recovery-code-form" method="post" action="${p.action}">
<input type="hidden" name="csrf" value="${p.csrf}">
<input type="hidden" name="method" value="recovery_code">
<label for="recovery-code">${t('mfa.recoveryCode.label')}</label>
<input id="recovery-code" name="recovery_code" type="text" autocomplete="off" autocapitalize="none" spellcheck="false" required autofocus>
${p.error ? html`<p class="error" role="alert" data-code="${p.errorCode ?? ''}">${p.error}</p>` : ''}
<button type="submit">${t('mfa.continue')}</button>
</form>
${p.totp ? html`<p><a href="${p.otherLink}">${t('mfa.useApp')}</a></p>` : ''}`
    : html`<form id="totp-form" method="post" action="${p.action}">
<input type="hidden" name="csrf" value="${p.csrf}">
<input type="hidden" name="method" value="totp">
<label for="code">${t('mfa.appCode.label')}</label>
<input id="code" name="code" type="text" inputmode="numeric" pattern="[0-9 ]*" autocomplete="one-time-code" maxlength="8" required autofocus>
${p.error ? html`<p class="error" role="alert" data-code="${p.errorCode ?? ''}">${p.error}</p>` : ''}
<button type="submit">${t('mfa.verify')}</button>
</form>
<p><a href="${p.otherLink}">${t('mfa.useRecoveryCode')}</a></p>`;
  return layout(
    t('mfa.secondFactor.title'),
    p.brand,
    html`<h1>${t('mfa.secondFactor.title')}</h1>
<p class="sub">${t('mfa.secondFactor.subtitle', { client: p.clientName })}</p>
${form}${p.extra ?? []}`,
    p.locale,
  );
}
