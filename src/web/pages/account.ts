// The user's own account pages: profile, password, sessions, second factors and their data. Every
// form posts with the session's CSRF token; nothing needs JavaScript.
import { html, type SafeHtml } from '../../core/html.js';
import type { Brand } from '../brand.js';
import type { Locale } from '../i18n.js';
import { layout } from '../layout.js';
import { recoveryCodeList, totpSetup } from './enrol-totp.js';
import { type PasskeyCeremony, passkeyRegisterForm } from './passkeys.js';

export type AccountSection = 'profile' | 'password' | 'sessions' | 'security' | 'data';

/** What every account page shares. */
export interface AccountFrame {
  locale: Locale;
  brand: Brand;
  /** The account pages' path, e.g. `/t/acme/account`. */
  base: string;
  csrf: string;
  /** Already in the page's language. */
  notice?: string;
  /** Already in the page's language, with its stable code. */
  error?: { message: string; code: string };
}

const SECTIONS: { id: AccountSection; path: string; key: Parameters<Locale['t']>[0] }[] = [
  { id: 'profile', path: '', key: 'account.nav.profile' },
  { id: 'password', path: '/password', key: 'account.nav.password' },
  { id: 'sessions', path: '/sessions', key: 'account.nav.sessions' },
  { id: 'security', path: '/security', key: 'account.nav.security' },
  { id: 'data', path: '/data', key: 'account.nav.data' },
];

function csrfField(f: AccountFrame): SafeHtml {
  return html`<input type="hidden" name="csrf" value="${f.csrf}">`;
}

/** `script`: a script of OrthID's own origin the page loads (the passkey ceremony). */
function frame(f: AccountFrame, section: AccountSection, body: SafeHtml, script?: string): string {
  const { t } = f.locale;
  const current = SECTIONS.find((s) => s.id === section)!;
  return layout(
    t(current.key),
    f.brand,
    html`<nav aria-label="${t('account.nav.label')}"><p class="links">${SECTIONS.map((s, i) =>
      s.id === section
        ? html`${i > 0 ? ' · ' : ''}<strong aria-current="page">${t(s.key)}</strong>`
        : html`${i > 0 ? ' · ' : ''}<a href="${f.base}${s.path}">${t(s.key)}</a>`,
    )}</p></nav>
<h1>${t(current.key)}</h1>
${f.notice ? html`<p class="sub" role="status" data-notice>${f.notice}</p>\n` : ''}${
  f.error ? html`<p class="error" role="alert" data-code="${f.error.code}">${f.error.message}</p>\n` : ''
}${body}
<form id="sign-out" method="post" action="${f.base}/sign-out">${csrfField(f)}<button type="submit" class="secondary">${t('account.signOut')}</button></form>`,
    f.locale,
    script,
  );
}

export interface ProfileView {
  name: string | null;
  email: string;
  emailVerified: boolean;
  /** Where the picture is served from, when the user has one. */
  pictureUrl?: string;
}

export function profilePage(f: AccountFrame, p: ProfileView): string {
  const { t } = f.locale;
  return frame(
    f,
    'profile',
    html`<form id="name" method="post" action="${f.base}/name">${csrfField(f)}
<label for="name-field">${t('account.profile.name')}</label>
<input id="name-field" name="name" autocomplete="name" maxlength="200" value="${p.name ?? ''}">
<button type="submit">${t('account.profile.saveName')}</button>
</form>
<p><strong>${t('account.profile.email')}:</strong> <span data-email>${p.email}</span> (${
      p.emailVerified ? t('account.profile.verified') : t('account.profile.unverified')
    })</p>
<form id="email" method="post" action="${f.base}/email">${csrfField(f)}
<label for="email-field">${t('account.profile.newEmail')}</label>
<input id="email-field" name="email" type="email" autocomplete="email" required>
<p class="sub">${t('account.profile.emailHelp')}</p>
<button type="submit">${t('account.profile.changeEmail')}</button>
</form>
<h2>${t('account.profile.picture')}</h2>
${p.pictureUrl ? html`<p><img src="${p.pictureUrl}" alt="${t('account.profile.pictureAlt')}" width="96" height="96"></p>` : html`<p class="sub">${t('account.profile.noPicture')}</p>`}
<form id="picture" method="post" action="${f.base}/picture" enctype="multipart/form-data">${csrfField(f)}
<label for="picture-field">${t('account.profile.choosePicture')}</label>
<input id="picture-field" name="picture" type="file" accept="image/jpeg,image/png,image/webp,image/gif,image/avif" required>
<button type="submit">${t('account.profile.upload')}</button>
</form>
${
  p.pictureUrl
    ? html`<form id="picture-remove" method="post" action="${f.base}/picture/remove">${csrfField(f)}<button type="submit" class="secondary">${t('account.profile.removePicture')}</button></form>`
    : ''
}`,
  );
}

export function passwordPage(f: AccountFrame): string {
  const { t } = f.locale;
  return frame(
    f,
    'password',
    html`<form id="password" method="post" action="${f.base}/password">${csrfField(f)}
<label for="current">${t('account.password.current')}</label>
<input id="current" name="current" type="password" autocomplete="current-password" required>
<label for="new">${t('account.password.new')}</label>
<input id="new" name="password" type="password" autocomplete="new-password" required>
<p class="sub">${t('account.password.help')}</p>
<button type="submit">${t('account.password.submit')}</button>
</form>`,
  );
}

export interface SessionView {
  uid: string;
  current: boolean;
  signedInAt: Date | null;
  /** The names of the apps signed in within it, already in the page's language. */
  apps: string[];
}

export function sessionsPage(f: AccountFrame, sessions: SessionView[]): string {
  const { t } = f.locale;
  return frame(
    f,
    'sessions',
    html`${sessions.length === 0 ? html`<p class="sub">${t('account.sessions.empty')}</p>` : ''}${sessions.map(
      (s) => html`<section data-session="${s.uid}">
<h2>${s.current ? t('account.sessions.current') : t('account.sessions.signedIn')}</h2>
<p>${t('account.sessions.signedIn')}: ${s.signedInAt ? f.locale.date(s.signedInAt) : t('account.sessions.unknownTime')}<br>
${t('account.sessions.apps')}: ${s.apps.length > 0 ? s.apps.join(', ') : t('account.sessions.noApps')}</p>
<form id="session-${s.uid}" method="post" action="${f.base}/sessions/sign-out">${csrfField(f)}<input type="hidden" name="session" value="${s.uid}"><button type="submit" class="secondary">${t('account.sessions.signOut')}</button></form>
</section>
`,
    )}<form id="sign-out-everywhere" method="post" action="${f.base}/sessions/sign-out-everywhere">${csrfField(f)}<button type="submit">${t('account.sessions.signOutEverywhere')}</button></form>`,
  );
}

export interface FactorView {
  id: string;
  kind: string;
  name: string | null;
  createdAt: Date;
}

export function securityPage(
  f: AccountFrame,
  view: { factors: FactorView[]; recoveryCodesLeft: number; lastIsRequired: boolean },
): string {
  const { t } = f.locale;
  const kindName = (kind: string) =>
    kind === 'totp'
      ? t('account.security.kind.totp')
      : kind === 'passkey'
        ? t('account.security.kind.passkey')
        : kind;
  return frame(
    f,
    'security',
    html`${view.factors.length === 0 ? html`<p class="sub">${t('account.security.empty')}</p>\n` : ''}${view.factors.map(
      (factor) => html`<section data-factor="${factor.id}">
<h2>${kindName(factor.kind)}${factor.name ? html` · ${factor.name}` : ''}</h2>
<p>${t('account.security.added')}: ${f.locale.date(factor.createdAt)}</p>
${
  view.lastIsRequired && view.factors.length === 1
    ? html`<p class="sub">${t('account.security.required')}</p>`
    : html`<form id="factor-${factor.id}" method="post" action="${f.base}/security/remove">${csrfField(f)}<input type="hidden" name="factor" value="${factor.id}"><button type="submit" class="secondary">${t('account.security.remove')}</button></form>`
}
</section>
`,
    )}${
      view.factors.length > 0
        ? html`<p>${t('account.security.recoveryCodes')}: ${f.locale.number(view.recoveryCodesLeft)}</p>
<form id="recovery-codes-new" method="post" action="${f.base}/security/recovery-codes">${csrfField(f)}<p class="sub">${t('account.security.newCodesHelp')}</p><button type="submit" class="secondary">${t('account.security.newCodes')}</button></form>
`
        : ''
    }<h2>${t('account.security.addHeading')}</h2>
<p class="sub">${t('account.security.reauthHelp')}</p>
<form id="add-totp" method="post" action="${f.base}/security/totp">${csrfField(f)}<button type="submit">${t('account.security.addTotp')}</button></form>
<p class="links"><a id="add-passkey" href="${f.base}/security/passkey">${t('account.security.addPasskey')}</a></p>`,
  );
}

/** Adding an authenticator app: its QR code and secret, confirmed by the app's first code. */
export function addTotpPage(
  f: AccountFrame,
  enrolment: { factorId: string; qrSvg: string; uri: string; secret: string },
): string {
  return frame(
    f,
    'security',
    html`<h2>${f.locale.t('mfa.enrol.title')}</h2>
<p class="sub">${f.locale.t('mfa.enrol.scan')}</p>
${totpSetup({ ...enrolment, locale: f.locale, csrf: f.csrf, action: `${f.base}/security/totp/confirm` })}
<p class="links"><a href="${f.base}/security">${f.locale.t('account.security.back')}</a></p>`,
  );
}

/** Adding a passkey: the ceremony needs the passkey script (and so JavaScript). */
export function addPasskeyPage(f: AccountFrame, ceremony: PasskeyCeremony): string {
  const { t } = f.locale;
  return frame(
    f,
    'security',
    html`<h2>${t('account.security.addPasskey')}</h2>
<p class="sub">${t('passkey.body')}</p>
${passkeyRegisterForm({ ...ceremony, locale: f.locale })}
<p class="links"><a href="${f.base}/security">${t('account.security.back')}</a></p>`,
    ceremony.script,
  );
}

/** New recovery codes, shown this once; the ones before them no longer work. */
export function newRecoveryCodesPage(f: AccountFrame, codes: string[]): string {
  const { t } = f.locale;
  return frame(
    f,
    'security',
    html`<h2>${t('mfa.codes.title')}</h2>
<p class="sub">${t('mfa.codes.body')}</p>
${recoveryCodeList(codes)}
<p class="links"><a id="codes-saved" href="${f.base}/security">${t('mfa.codes.saved')}</a></p>`,
  );
}

export function dataPage(f: AccountFrame, view: { selfDelete: boolean }): string {
  const { t } = f.locale;
  return frame(
    f,
    'data',
    html`<p class="sub">${t('account.data.exportHelp')}</p>
<form id="export" method="post" action="${f.base}/data/export">${csrfField(f)}<button type="submit">${t('account.data.export')}</button></form>
<h2>${t('account.data.deleteHeading')}</h2>
${
  view.selfDelete
    ? html`<form id="delete" method="post" action="${f.base}/data/delete">${csrfField(f)}
<p class="sub">${t('account.data.deleteHelp')}</p>
<label for="confirmation">${t('account.data.confirm')}</label>
<input id="confirmation" name="confirmation" type="password" autocomplete="off" required>
<button type="submit">${t('account.data.delete')}</button>
</form>`
    : html`<p class="sub">${t('account.data.deleteOff', { tenant: f.brand.name })}</p>`
}`,
  );
}

/** A page outside the signed-in frame: signed out, deleted, an address confirmed, an error. */
export function accountMessagePage(
  locale: Locale,
  brand: Brand,
  content: {
    title: string;
    body?: string;
    error?: { message: string; code: string };
    link?: { href: string; label: string };
  },
): string {
  return layout(
    content.title,
    brand,
    html`<h1>${content.title}</h1>
${content.body ? html`<p class="sub">${content.body}</p>\n` : ''}${
  content.error
    ? html`<p class="error" role="alert" data-code="${content.error.code}">${content.error.message}</p>\n`
    : ''
}${content.link ? html`<p class="links"><a href="${content.link.href}">${content.link.label}</a></p>` : ''}`,
    locale,
  );
}

/** The page a change-of-address link opens: a button, so a mail scanner's GET changes nothing. */
export function confirmEmailPage(locale: Locale, brand: Brand, action: string, token: string): string {
  const { t } = locale;
  return layout(
    t('account.emailConfirm.title'),
    brand,
    html`<h1>${t('account.emailConfirm.title')}</h1>
<p class="sub">${t('account.emailConfirm.body')}</p>
<form id="confirm-email" method="post" action="${action}"><input type="hidden" name="token" value="${token}"><button type="submit">${t('account.emailConfirm.submit')}</button></form>`,
    locale,
  );
}
