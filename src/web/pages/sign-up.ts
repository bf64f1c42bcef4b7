// The hosted sign-up pages: the form (name, e-mail, password), "check your mail" with the code
// form, the verification link's confirm button, the verified and unverified pages, an invitation's
// form, and a passkey sign-up's two pages (name and e-mail; then the passkey, once the address is
// proved), which an invitation accepted with a passkey shares (name; then the same passkey page).
import { html, type SafeHtml } from '../../core/html.js';
import type { Brand } from '../brand.js';
import type { Locale } from '../i18n.js';
import { layout } from '../layout.js';
import { passkeyScriptMessages } from './passkeys.js';

interface PageBase {
  locale: Locale;
  brand: Brand;
  /** Already in the page's language (see `userFacingError`), with its stable code. */
  error?: string;
  errorCode?: string;
}

function errorLine(p: PageBase): SafeHtml | string {
  return p.error
    ? html`<p class="error" role="alert"${p.errorCode ? html` data-code="${p.errorCode}"` : ''}>${p.error}</p>`
    : '';
}

export interface SignUpPage extends PageBase {
  clientName: string;
  action: string;
  csrf: string;
  /** The shortest password the tenant's policy takes. */
  minLength: number;
  email?: string;
  name?: string;
  /** Back to the sign-in page of the same request. */
  signInUrl: string;
  /**
   * "Sign up with a passkey instead": hidden in the markup, shown by the passkey script only
   * where the browser has WebAuthn (the page without script keeps the password form alone).
   */
  passkey?: { url: string; script: string };
}

export function signUpPage(p: SignUpPage): string {
  const { t } = p.locale;
  return layout(
    t('signUp.title'),
    p.brand,
    html`<h1>${t('signUp.heading')}</h1>
<p class="sub">${t('signUp.subtitle', { client: p.clientName })}</p>
<form method="post" action="${p.action}" autocomplete="on">
<input type="hidden" name="csrf" value="${p.csrf}">
<label for="name">${t('signUp.name')}</label>
<input id="name" name="name" type="text" autocomplete="name" maxlength="200" required autofocus value="${p.name ?? ''}">
<label for="email">${t('signUp.email')}</label>
<input id="email" name="email" type="email" autocomplete="email" required value="${p.email ?? ''}">
<label for="password">${t('signUp.password')}</label>
<input id="password" name="password" type="password" autocomplete="new-password" minlength="${p.minLength}" required aria-describedby="password-hint">
<p id="password-hint" class="sub">${t('signUp.passwordHint', { min: p.minLength })}</p>
${errorLine(p)}
<button type="submit">${t('signUp.submit')}</button>
</form>
${p.passkey ? html`<p class="links" id="passkey-sign-up" data-webauthn-only hidden><a href="${p.passkey.url}">${t('signUp.passkeyInstead')}</a></p>` : ''}
<p class="links">${t('signUp.haveAccount')} <a href="${p.signInUrl}">${t('signUp.signIn')}</a></p>`,
    p.locale,
    p.passkey?.script,
  );
}

export interface PasskeySignUpPage extends PageBase {
  clientName: string;
  action: string;
  csrf: string;
  email?: string;
  name?: string;
  /** The password form of the same request. */
  passwordUrl: string;
}

/** A passkey sign-up's first page: who you are; the passkey follows once the address is proved. */
export function passkeySignUpPage(p: PasskeySignUpPage): string {
  const { t } = p.locale;
  return layout(
    t('passkeySignUp.title'),
    p.brand,
    html`<h1>${t('passkeySignUp.heading')}</h1>
<p class="sub">${t('signUp.subtitle', { client: p.clientName })}</p>
<p>${t('passkeySignUp.body')}</p>
<form method="post" action="${p.action}" autocomplete="on">
<input type="hidden" name="csrf" value="${p.csrf}">
<label for="name">${t('signUp.name')}</label>
<input id="name" name="name" type="text" autocomplete="name" maxlength="200" required autofocus value="${p.name ?? ''}">
<label for="email">${t('signUp.email')}</label>
<input id="email" name="email" type="email" autocomplete="email" required value="${p.email ?? ''}">
${errorLine(p)}
<button type="submit">${t('passkeySignUp.submit')}</button>
</form>
<p class="links"><a href="${p.passwordUrl}">${t('passkeySignUp.passwordInstead')}</a></p>`,
    p.locale,
  );
}

export interface CreatePasskeyPage extends PageBase {
  csrf: string;
  /** Where the filled form posts, and where the script fetches the ceremony's options. */
  action: string;
  options: string;
  script: string;
  /** What the step carries besides the response (an invitation's link and the name typed before). */
  hidden?: Record<string, string>;
}

const hiddenInputs = (fields: Record<string, string> = {}) =>
  Object.entries(fields).map(
    ([name, value]) => html`<input type="hidden" name="${name}" value="${value}">\n`,
  );

/** After the address is proved: the passkey that becomes the account's only credential. */
export function createPasskeyPage(p: CreatePasskeyPage): string {
  const { t } = p.locale;
  return layout(
    t('createPasskey.title'),
    p.brand,
    html`<h1>${t('createPasskey.heading')}</h1>
<p class="sub">${t('createPasskey.body')}</p>
<form id="passkey-form" method="post" action="${p.action}" data-options="${p.options}" data-mode="register" ${passkeyScriptMessages(p.locale)}>
<input type="hidden" name="csrf" value="${p.csrf}">
${hiddenInputs(p.hidden)}<input type="hidden" name="response" value="">
${errorLine(p)}
<p id="passkey-status" class="error" role="status" hidden></p>
<button type="button" id="passkey-button" hidden>${t('createPasskey.submit')}</button>
<noscript><p class="error">${t('createPasskey.noScript')}</p></noscript>
</form>`,
    p.locale,
    p.script,
  );
}

export interface CheckMailPage extends PageBase {
  /** Where the code form posts, and the token it names. */
  codeAction: string;
  tokenId: string;
  csrf: string;
  /** The resend form: where it posts and the address it resends to. */
  resendAction: string;
  email: string;
}

export function checkMailPage(p: CheckMailPage): string {
  const { t } = p.locale;
  return layout(
    t('checkMail.title'),
    p.brand,
    html`<h1>${t('checkMail.heading')}</h1>
<p class="sub">${t('checkMail.body')}</p>
<form method="post" action="${p.codeAction}">
<input type="hidden" name="csrf" value="${p.csrf}">
<input type="hidden" name="token" value="${p.tokenId}">
<input type="hidden" name="email" value="${p.email}">
<label for="code">${t('checkMail.code')}</label>
<input id="code" name="code" type="text" inputmode="numeric" pattern="[0-9 ]*" autocomplete="one-time-code" maxlength="9" required autofocus>
${errorLine(p)}
<button type="submit">${t('checkMail.submit')}</button>
</form>
${resendForm(p.resendAction, p.csrf, p.email, t('checkMail.resend'))}`,
    p.locale,
  );
}

function resendForm(action: string, csrf: string, email: string, label: string): SafeHtml {
  return html`<form method="post" action="${action}">
<input type="hidden" name="csrf" value="${csrf}">
<input type="hidden" name="email" value="${email}">
<button type="submit" class="secondary">${label}</button>
</form>`;
}

export interface UnverifiedPage extends PageBase {
  resendAction: string;
  csrf: string;
  email: string;
}

/** After the right password of an account that waits for its address. */
export function unverifiedPage(p: UnverifiedPage): string {
  const { t } = p.locale;
  return layout(
    t('unverified.title'),
    p.brand,
    html`<h1>${t('unverified.heading')}</h1>
<p class="sub" role="alert" data-code="signup.email_unverified">${t('unverified.body')}</p>
${resendForm(p.resendAction, p.csrf, p.email, t('unverified.resend'))}`,
    p.locale,
  );
}

export interface VerifiedPage extends PageBase {
  /** The sign-in page of the request the sign-up began in, when known. */
  continueUrl?: string;
}

export function verifiedPage(p: VerifiedPage): string {
  const { t } = p.locale;
  return layout(
    t('verified.title'),
    p.brand,
    html`<h1>${t('verified.heading')}</h1>
<p class="sub">${t('verified.body')}</p>
${p.continueUrl ? html`<p class="links"><a href="${p.continueUrl}">${t('verified.continue')}</a></p>` : html`<p>${t('verified.elsewhere')}</p>`}`,
    p.locale,
  );
}

export interface ConfirmLinkPage extends PageBase {
  action: string;
  csrf: string;
  token: string;
}

/** A mailed link opens this page; the button uses it (a mail scanner's GET changes nothing). */
export function confirmLinkPage(p: ConfirmLinkPage): string {
  const { t } = p.locale;
  return layout(
    t('verifyLink.title'),
    p.brand,
    html`<h1>${t('verifyLink.heading')}</h1>
<p class="sub">${t('verifyLink.body')}</p>
<form method="post" action="${p.action}">
<input type="hidden" name="csrf" value="${p.csrf}">
<input type="hidden" name="token" value="${p.token}">
<button type="submit" autofocus>${t('verifyLink.submit')}</button>
</form>`,
    p.locale,
  );
}

export interface InvitationPage extends PageBase {
  action: string;
  csrf: string;
  token: string;
  email: string;
  minLength: number;
  name?: string;
  /** "Accept with a passkey instead", shown by the passkey script where WebAuthn works (as on sign-up). */
  passkey?: { url: string; script: string };
}

export function invitationPage(p: InvitationPage): string {
  const { t } = p.locale;
  return layout(
    t('invitation.title'),
    p.brand,
    html`<h1>${t('invitation.heading', { tenant: p.brand.name })}</h1>
<p class="sub">${t('invitation.subtitle', { email: p.email })}</p>
<form method="post" action="${p.action}" autocomplete="on">
<input type="hidden" name="csrf" value="${p.csrf}">
<input type="hidden" name="token" value="${p.token}">
<input type="hidden" name="username" value="${p.email}" autocomplete="username">
<label for="name">${t('signUp.name')}</label>
<input id="name" name="name" type="text" autocomplete="name" maxlength="200" required autofocus value="${p.name ?? ''}">
<label for="password">${t('signUp.password')}</label>
<input id="password" name="password" type="password" autocomplete="new-password" minlength="${p.minLength}" required aria-describedby="password-hint">
<p id="password-hint" class="sub">${t('signUp.passwordHint', { min: p.minLength })}</p>
${errorLine(p)}
<button type="submit">${t('invitation.submit')}</button>
</form>
${p.passkey ? html`<p class="links" id="passkey-invitation" data-webauthn-only hidden><a href="${p.passkey.url}">${t('invitation.passkeyInstead')}</a></p>` : ''}`,
    p.locale,
    p.passkey?.script,
  );
}

export interface PasskeyInvitationPage extends PageBase {
  action: string;
  csrf: string;
  token: string;
  email: string;
  name?: string;
  /** The invitation's password form. */
  passwordUrl: string;
}

/** An invitation accepted with a passkey, its first page: the name; the passkey page follows. */
export function passkeyInvitationPage(p: PasskeyInvitationPage): string {
  const { t } = p.locale;
  return layout(
    t('passkeyInvitation.title'),
    p.brand,
    html`<h1>${t('invitation.heading', { tenant: p.brand.name })}</h1>
<p class="sub">${t('passkeyInvitation.subtitle', { email: p.email })}</p>
<p>${t('passkeyInvitation.body')}</p>
<form method="post" action="${p.action}" autocomplete="on">
<input type="hidden" name="csrf" value="${p.csrf}">
<input type="hidden" name="token" value="${p.token}">
<label for="name">${t('signUp.name')}</label>
<input id="name" name="name" type="text" autocomplete="name" maxlength="200" required autofocus value="${p.name ?? ''}">
${errorLine(p)}
<button type="submit">${t('passkeySignUp.submit')}</button>
</form>
<p class="links"><a href="${p.passwordUrl}">${t('passkeySignUp.passwordInstead')}</a></p>`,
    p.locale,
  );
}

/** The end of an accepted invitation: sign in from the application, as the account now can. */
export function invitedPage(p: PageBase & { passkey?: boolean }): string {
  const { t } = p.locale;
  return layout(
    t('invited.title'),
    p.brand,
    html`<h1>${t('invited.heading')}</h1>
<p class="sub">${p.passkey ? t('invited.passkeyBody') : t('invited.body')}</p>`,
    p.locale,
  );
}

/** A refused step of these pages: what went wrong, in the page's language, with its stable code. */
export function signUpErrorPage(p: PageBase & { title: string }): string {
  return layout(p.locale.t('error.title'), p.brand, html`<h1>${p.title}</h1>${errorLine(p)}`, p.locale);
}
