// Setting up an authenticator app during sign-in: the offer (when the tenant makes it optional),
// the QR code with the otpauth:// URI and the secret as text for those who cannot scan, the
// confirmation code, and the recovery codes, shown once.
import { html, type SafeHtml } from '../../core/html.js';
import type { Brand } from '../brand.js';
import { layout } from '../layout.js';

export interface EnrolOfferPage {
  brand: Brand;
  csrf: string;
  startAction: string;
  skipAction: string;
  /** Other kinds of factor the user may set up instead (a passkey). */
  extra?: SafeHtml[];
}

export function enrolOfferPage(p: EnrolOfferPage): string {
  return layout(
    'Protect your account',
    p.brand,
    html`<h1>Protect your account</h1>
<p class="sub">Add a second step to your sign-in: a code from an authenticator app on your phone.</p>
<form id="enrol-start" method="post" action="${p.startAction}">
<input type="hidden" name="csrf" value="${p.csrf}">
<button type="submit">Set up an authenticator app</button>
</form>
${p.extra ?? []}
<form id="enrol-skip" method="post" action="${p.skipAction}">
<input type="hidden" name="csrf" value="${p.csrf}">
<button type="submit" class="secondary">Not now</button>
</form>`,
  );
}

export interface EnrolTotpPage {
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

export function enrolTotpPage(p: EnrolTotpPage): string {
  const qr = `data:image/svg+xml;base64,${Buffer.from(p.qrSvg).toString('base64')}`;
  return layout(
    'Set up your authenticator app',
    p.brand,
    html`<h1>Set up your authenticator app</h1>
<p class="sub">${p.required ? 'This account needs a second step at sign-in. ' : ''}Scan the code with an authenticator app, then enter the code it shows.</p>
<p><img src="${qr}" width="220" height="220" alt="QR code for your authenticator app"></p>
<p>Cannot scan? Enter this key in the app:</p>
<p class="code" id="secret">${grouped(p.secret)}</p>
<p><a href="${p.uri}">Open in an authenticator app on this device</a></p>
<form id="enrol-confirm" method="post" action="${p.action}">
<input type="hidden" name="csrf" value="${p.csrf}">
<input type="hidden" name="factor" value="${p.factorId}">
<label for="code">Code from your authenticator app</label>
<input id="code" name="code" type="text" inputmode="numeric" pattern="[0-9 ]*" autocomplete="one-time-code" maxlength="8" required autofocus>
${p.error ? html`<p class="error" role="alert" data-code="${p.errorCode ?? ''}">${p.error}</p>` : ''}
<button type="submit">Turn on two-step verification</button>
</form>
${p.extra ?? []}
${
  !p.required && p.skipAction
    ? html`<form id="enrol-skip" method="post" action="${p.skipAction}">
<input type="hidden" name="csrf" value="${p.csrf}">
<button type="submit" class="secondary">Not now</button>
</form>`
    : ''
}`,
  );
}

export interface RecoveryCodesPage {
  brand: Brand;
  csrf: string;
  action: string;
  codes: string[];
}

export function recoveryCodesPage(p: RecoveryCodesPage): string {
  return layout(
    'Save your recovery codes',
    p.brand,
    html`<h1>Save your recovery codes</h1>
<p class="sub">If you lose your phone, each of these codes signs you in once. Keep them somewhere safe: they are shown only now.</p>
<ul class="scopes" id="recovery-codes">${p.codes.map((c) => html`<li><code>${c}</code></li>`)}</ul>
<form id="continue" method="post" action="${p.action}">
<input type="hidden" name="csrf" value="${p.csrf}">
<button type="submit">I have saved them, continue</button>
</form>`,
  );
}

export interface RecoveryNoticePage {
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
  if (p.enrolled) {
    return layout(
      'Two-step verification is on',
      p.brand,
      html`<h1>Two-step verification is on</h1>
<p class="sub">Your recovery codes were shown once, after your code was accepted.</p>
<form id="continue" method="post" action="${p.action}">
<input type="hidden" name="csrf" value="${p.csrf}">
<button type="submit">Continue</button>
</form>`,
    );
  }
  const left =
    p.remaining === undefined
      ? 'You signed in with a recovery code.'
      : p.remaining === 0
        ? 'That was your last recovery code. Ask an administrator for new codes, or set up your authenticator app again.'
        : `You have ${p.remaining} recovery code${p.remaining === 1 ? '' : 's'} left.`;
  return layout(
    'Recovery code used',
    p.brand,
    html`<h1>Recovery code used</h1>
<p class="sub" id="remaining">${left}</p>
<form id="continue" method="post" action="${p.action}">
<input type="hidden" name="csrf" value="${p.csrf}">
<button type="submit">Continue</button>
</form>`,
  );
}
