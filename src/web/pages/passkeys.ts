// Passkeys on the hosted pages: the section of the second-factor page, the choice on the
// enrolment pages, and the page where a signed-in user adds, lists and removes their passkeys.
// The ceremonies need JavaScript (the WebAuthn API); the forms they fill are plain forms.
import { html, type SafeHtml } from '../../core/html.js';
import type { Brand } from '../brand.js';
import { ENGLISH } from '../i18n.js';
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

/** "Use your passkey" on the second-factor page. */
export function passkeySecondFactorSection(p: PasskeyCeremony): SafeHtml {
  return html`<form id="passkey-form" method="post" action="${p.action}" data-options="${p.options}" data-mode="sign-in">
<input type="hidden" name="csrf" value="${p.csrf}">
<input type="hidden" name="response" value="">
<p id="passkey-status" class="error" role="status" hidden></p>
<button type="button" id="passkey-button" class="secondary" hidden>Use your passkey</button>
</form>
<script src="${p.script}" defer></script>`;
}

/** On the enrolment pages: set up a passkey instead of an authenticator app. */
export function passkeyEnrolOption(p: { csrf: string; action: string }): SafeHtml {
  return html`<form id="enrol-passkey" method="post" action="${p.action}">
<input type="hidden" name="csrf" value="${p.csrf}">
<button type="submit" class="secondary">Use a passkey instead</button>
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
  brand: Brand;
  passkeys: PasskeyListItem[];
  removeAction: string;
  doneAction: string;
  /** Set up an authenticator app instead. */
  totpAction: string;
  notice?: string;
  error?: string;
  errorCode?: string;
}

const day = (iso: string) => iso.slice(0, 10);

export function enrolPasskeyPage(p: EnrolPasskeyPage): string {
  const list = p.passkeys.map(
    (
      k,
    ) => html`<li data-passkey="${k.id}"><strong>${k.name}</strong> · ${k.backupEligible ? 'synced' : 'this device only'} · added ${day(k.createdAt)}${k.lastUsedAt ? ` · last used ${day(k.lastUsedAt)}` : ''}
<form method="post" action="${p.removeAction}">
<input type="hidden" name="csrf" value="${p.csrf}">
<input type="hidden" name="factor" value="${k.id}">
<button type="submit" class="secondary">Remove ${k.name}</button>
</form></li>`,
  );
  return layout(
    'Your passkeys',
    p.brand,
    html`<h1>Your passkeys</h1>
<p class="sub">A passkey signs you in with this device's screen lock or a security key, instead of a code.</p>
${p.notice ? html`<p role="status">${p.notice}</p>` : ''}
${p.passkeys.length > 0 ? html`<ul class="scopes" id="passkeys">${list}</ul>` : html`<p id="no-passkeys">No passkey yet.</p>`}
<form id="passkey-form" method="post" action="${p.action}" data-options="${p.options}" data-mode="register">
<input type="hidden" name="csrf" value="${p.csrf}">
<input type="hidden" name="response" value="">
<label for="passkey-name">Name for the new passkey</label>
<input id="passkey-name" name="name" type="text" maxlength="100" placeholder="e.g. Work laptop" autocomplete="off">
${p.error ? html`<p class="error" role="alert" data-code="${p.errorCode ?? ''}">${p.error}</p>` : ''}
<p id="passkey-status" class="error" role="status" hidden></p>
<button type="button" id="passkey-button" hidden>Add a passkey</button>
<noscript><p class="error">Adding a passkey needs JavaScript. Turn it on, or set up an authenticator app.</p></noscript>
</form>
${
  p.passkeys.length > 0
    ? html`<form id="passkeys-done" method="post" action="${p.doneAction}">
<input type="hidden" name="csrf" value="${p.csrf}">
<button type="submit">Continue</button>
</form>`
    : ''
}
<form method="post" action="${p.totpAction}">
<input type="hidden" name="csrf" value="${p.csrf}">
<button type="submit" class="secondary">Set up an authenticator app instead</button>
</form>`,
    ENGLISH,
    p.script,
  );
}
