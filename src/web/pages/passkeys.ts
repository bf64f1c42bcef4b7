// Passkeys on the hosted pages: the section of the second-factor page, the choice on the
// enrolment pages, and the page where a signed-in user adds, lists and removes their passkeys.
// The ceremonies need JavaScript (the WebAuthn API); the forms they fill are plain forms.
import { html, type SafeHtml } from '../../core/html.js';
import type { Brand } from '../brand.js';
import type { Locale } from '../i18n.js';
import { layout } from '../layout.js';

export interface PasskeyCeremony {
  csrf: string;
  /** Where the filled form posts. */
  action: string;
  /** Where the script fetches the ceremony's options. */
  options: string;
  /** The passkey script on OrthID's own origin. */
  script: string;
}

/**
 * What the passkey script may say, in the page's language, as attributes of its form: the
 * script is a static file (the CSP allows no inline script), so its words come from the page.
 */
export function passkeyScriptMessages(locale: Locale): SafeHtml {
  const { t } = locale;
  return html`data-msg-cancelled="${t('passkey.script.cancelled')}" data-msg-registered="${t('passkey.script.registered')}" data-msg-unsupported="${t('passkey.script.unsupported')}"`;
}

/** "Use your passkey" on the second-factor page. */
export function passkeySecondFactorSection(p: PasskeyCeremony & { locale: Locale }): SafeHtml {
  return html`<form id="passkey-form" method="post" action="${p.action}" data-options="${p.options}" data-mode="sign-in" ${passkeyScriptMessages(p.locale)}>
<input type="hidden" name="csrf" value="${p.csrf}">
<input type="hidden" name="response" value="">
<p id="passkey-status" class="error" role="status" hidden></p>
<button type="button" id="passkey-button" class="secondary" hidden>${p.locale.t('passkey.use')}</button>
</form>
<script src="${p.script}" defer></script>`;
}

/** On the enrolment pages: set up a passkey instead of an authenticator app. */
export function passkeyEnrolOption(p: { locale: Locale; csrf: string; action: string }): SafeHtml {
  return html`<form id="enrol-passkey" method="post" action="${p.action}">
<input type="hidden" name="csrf" value="${p.csrf}">
<button type="submit" class="secondary">${p.locale.t('passkey.instead')}</button>
</form>`;
}

/**
 * The form a new passkey is made in: a name, then the script's ceremony fills and posts it (the
 * same on the enrolment step and the account pages).
 */
export function passkeyRegisterForm(
  p: Omit<PasskeyCeremony, 'script'> & { locale: Locale; error?: string; errorCode?: string },
): SafeHtml {
  const { t } = p.locale;
  return html`<form id="passkey-form" method="post" action="${p.action}" data-options="${p.options}" data-mode="register" ${passkeyScriptMessages(p.locale)}>
<input type="hidden" name="csrf" value="${p.csrf}">
<input type="hidden" name="response" value="">
<label for="passkey-name">${t('passkey.nameLabel')}</label>
<input id="passkey-name" name="name" type="text" maxlength="100" placeholder="${t('passkey.namePlaceholder')}" autocomplete="off">
${p.error ? html`<p class="error" role="alert" data-code="${p.errorCode ?? ''}">${p.error}</p>` : ''}
<p id="passkey-status" class="error" role="status" hidden></p>
<button type="button" id="passkey-button" hidden>${t('passkey.add')}</button>
<noscript><p class="error">${t('passkey.noScript')}</p></noscript>
</form>`;
}

export interface PasskeyListItem {
  id: string;
  name: string;
  createdAt: string;
  lastUsedAt: string | null;
  backupEligible: boolean;
}

export interface EnrolPasskeyPage extends PasskeyCeremony {
  locale: Locale;
  brand: Brand;
  passkeys: PasskeyListItem[];
  removeAction: string;
  doneAction: string;
  /** Set up an authenticator app instead. */
  totpAction: string;
  /** Already in the page's language, as is `error`. */
  notice?: string;
  error?: string;
  errorCode?: string;
}

export function enrolPasskeyPage(p: EnrolPasskeyPage): string {
  const { t } = p.locale;
  // The day in the reader's language; UTC, as the server does not know the reader's zone.
  const day = (iso: string) => p.locale.date(new Date(iso), { dateStyle: 'medium', timeZone: 'UTC' });
  const list = p.passkeys.map(
    (
      k,
    ) => html`<li data-passkey="${k.id}"><strong>${k.name}</strong> · ${k.backupEligible ? t('passkey.synced') : t('passkey.deviceOnly')} · ${t('passkey.added', { date: day(k.createdAt) })}${k.lastUsedAt ? ` · ${t('passkey.lastUsed', { date: day(k.lastUsedAt) })}` : ''}
<form method="post" action="${p.removeAction}">
<input type="hidden" name="csrf" value="${p.csrf}">
<input type="hidden" name="factor" value="${k.id}">
<button type="submit" class="secondary">${t('passkey.remove', { name: k.name })}</button>
</form></li>`,
  );
  return layout(
    t('passkey.title'),
    p.brand,
    html`<h1>${t('passkey.title')}</h1>
<p class="sub">${t('passkey.body')}</p>
${p.notice ? html`<p role="status">${p.notice}</p>` : ''}
${p.passkeys.length > 0 ? html`<ul class="scopes" id="passkeys">${list}</ul>` : html`<p id="no-passkeys">${t('passkey.none')}</p>`}
${passkeyRegisterForm(p)}
${
  p.passkeys.length > 0
    ? html`<form id="passkeys-done" method="post" action="${p.doneAction}">
<input type="hidden" name="csrf" value="${p.csrf}">
<button type="submit">${t('mfa.continue')}</button>
</form>`
    : ''
}
<form method="post" action="${p.totpAction}">
<input type="hidden" name="csrf" value="${p.csrf}">
<button type="submit" class="secondary">${t('passkey.totpInstead')}</button>
</form>`,
    p.locale,
    p.script,
  );
}
