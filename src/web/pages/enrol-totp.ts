// Setting up an authenticator app during sign-in: the offer (when the tenant makes it optional),
// the QR code with the otpauth:// URI and the secret as text for those who cannot scan, the
// confirmation code, and the recovery codes, shown once.
import { html, type SafeHtml } from '../../core/html.js';
import type { Brand } from '../brand.js';
import type { Locale } from '../i18n.js';
import { layout } from '../layout.js';

export interface EnrolOfferPage {
  locale: Locale;
  brand: Brand;
  csrf: string;
  startAction: string;
  skipAction: string;
  /** Other kinds of factor the user may set up instead (a passkey). */
  extra?: SafeHtml[];
}

export function enrolOfferPage(p: EnrolOfferPage): string {
  const { t } = p.locale;
  return layout(
    t('mfa.offer.title'),
    p.brand,
    html`<h1>${t('mfa.offer.title')}</h1>
<p class="sub">${t('mfa.offer.body')}</p>
<form id="enrol-start" method="post" action="${p.startAction}">
<input type="hidden" name="csrf" value="${p.csrf}">
<button type="submit">${t('mfa.offer.start')}</button>
</form>
${p.extra ?? []}
<form id="enrol-skip" method="post" action="${p.skipAction}">
<input type="hidden" name="csrf" value="${p.csrf}">
<button type="submit" class="secondary">${t('mfa.notNow')}</button>
</form>`,
    p.locale,
  );
}

export interface EnrolTotpPage {
  locale: Locale;
  brand: Brand;
  csrf: string;
  action: string;
  factorId: string;
  /** The QR code's SVG document. */
  qrSvg: string;
  uri: string;
  secret: string;
  /** The tenant requires it: no way to skip. */
  required: boolean;
  skipAction?: string;
  error?: string;
  /** The error's stable code, for scripts reading the page. */
  errorCode?: string;
  /** Other kinds of factor the user may set up instead (a passkey). */
  extra?: SafeHtml[];
}

/** The secret in groups of four, as authenticator apps ask for it to be typed. */
function grouped(secret: string): string {
  return secret.replace(/(.{4})(?=.)/g, '$1 ');
}

/**
 * The QR code, the secret as text for those who cannot scan, and the form that confirms the
 * app's first code: the same wherever an authenticator app is set up (sign-in, account pages).
 */
export function totpSetup(
  p: Pick<
    EnrolTotpPage,
    'locale' | 'csrf' | 'action' | 'factorId' | 'qrSvg' | 'uri' | 'secret' | 'error' | 'errorCode'
  >,
): SafeHtml {
  const { t } = p.locale;
  const qr = `data:image/svg+xml;base64,${Buffer.from(p.qrSvg).toString('base64')}`;
  return html`<p><img src="${qr}" width="220" height="220" alt="${t('mfa.enrol.qrAlt')}"></p>
<p>${t('mfa.enrol.cannotScan')}</p>
<p class="code" id="secret">${grouped(p.secret)}</p>
<p><a href="${p.uri}">${t('mfa.enrol.openApp')}</a></p>
<form id="enrol-confirm" method="post" action="${p.action}">
<input type="hidden" name="csrf" value="${p.csrf}">
<input type="hidden" name="factor" value="${p.factorId}">
<label for="code">${t('mfa.appCode.label')}</label>
<input id="code" name="code" type="text" inputmode="numeric" pattern="[0-9 ]*" autocomplete="one-time-code" maxlength="8" required autofocus>
${p.error ? html`<p class="error" role="alert" data-code="${p.errorCode ?? ''}">${p.error}</p>` : ''}
<button type="submit">${t('mfa.enrol.confirm')}</button>
</form>`;
}

export function enrolTotpPage(p: EnrolTotpPage): string {
  const { t } = p.locale;
  return layout(
    t('mfa.enrol.title'),
    p.brand,
    html`<h1>${t('mfa.enrol.title')}</h1>
<p class="sub">${p.required ? `${t('mfa.enrol.required')} ` : ''}${t('mfa.enrol.scan')}</p>
${totpSetup(p)}
${p.extra ?? []}
${
  !p.required && p.skipAction
    ? html`<form id="enrol-skip" method="post" action="${p.skipAction}">
<input type="hidden" name="csrf" value="${p.csrf}">
<button type="submit" class="secondary">${t('mfa.notNow')}</button>
</form>`
    : ''
}`,
    p.locale,
  );
}

export interface RecoveryCodesPage {
  locale: Locale;
  brand: Brand;
  csrf: string;
  action: string;
  codes: string[];
}

/** Recovery codes, shown once wherever they are made. */
export function recoveryCodeList(codes: string[]): SafeHtml {
  return html`<ul class="scopes" id="recovery-codes">${codes.map((c) => html`<li><code>${c}</code></li>`)}</ul>`;
}

export function recoveryCodesPage(p: RecoveryCodesPage): string {
  const { t } = p.locale;
  return layout(
    t('mfa.codes.title'),
    p.brand,
    html`<h1>${t('mfa.codes.title')}</h1>
<p class="sub">${t('mfa.codes.body')}</p>
${recoveryCodeList(p.codes)}
<form id="continue" method="post" action="${p.action}">
<input type="hidden" name="csrf" value="${p.csrf}">
<button type="submit">${t('mfa.codes.saved')}</button>
</form>`,
    p.locale,
  );
}

export interface RecoveryNoticePage {
  locale: Locale;
  brand: Brand;
  csrf: string;
  action: string;
  /** Unknown when the page is shown again (the count was shown with the code). */
  remaining?: number;
  /** Shown again after an enrolment whose recovery codes were on the page before. */
  enrolled?: boolean;
}

/** After a recovery code: how many remain, before going on. */
export function recoveryNoticePage(p: RecoveryNoticePage): string {
  const { t } = p.locale;
  if (p.enrolled) {
    return layout(
      t('mfa.on.title'),
      p.brand,
      html`<h1>${t('mfa.on.title')}</h1>
<p class="sub">${t('mfa.on.body')}</p>
<form id="continue" method="post" action="${p.action}">
<input type="hidden" name="csrf" value="${p.csrf}">
<button type="submit">${t('mfa.continue')}</button>
</form>`,
      p.locale,
    );
  }
  // The count in the language's plural and digits (ICU `#` formats it per locale).
  const left =
    p.remaining === undefined
      ? t('mfa.used.signedIn')
      : p.remaining === 0
        ? t('mfa.used.last')
        : t('mfa.used.remaining', { count: p.remaining });
  return layout(
    t('mfa.used.title'),
    p.brand,
    html`<h1>${t('mfa.used.title')}</h1>
<p class="sub" id="remaining">${left}</p>
<form id="continue" method="post" action="${p.action}">
<input type="hidden" name="csrf" value="${p.csrf}">
<button type="submit">${t('mfa.continue')}</button>
</form>`,
    p.locale,
  );
}
