// The second-factor step of the hosted sign-in, shown only after a correct password: a code from
// the authenticator app, or a recovery code instead. Other kinds of factor add their own section.
import { html, type SafeHtml } from '../../core/html.js';
import type { Brand } from '../brand.js';
import { layout } from '../layout.js';

export interface SecondFactorPage {
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
  error?: string;
  /** The error's stable code, for scripts reading the page. */
  errorCode?: string;
  /** Markup of further factors the user can use (another kind's section); empty by default. */
  extra?: SafeHtml[];
}

export function secondFactorPage(p: SecondFactorPage): string {
  const form = p.recovery
    ? html`<form id="recovery-code-form" method="post" action="${p.action}">
<input type="hidden" name="csrf" value="${p.csrf}">
<input type="hidden" name="method" value="recovery_code">
<label for="recovery-code">Recovery code</label>
<input id="recovery-code" name="recovery_code" type="text" autocomplete="off" autocapitalize="none" spellcheck="false" required autofocus>
${p.error ? html`<p class="error" role="alert" data-code="${p.errorCode ?? ''}">${p.error}</p>` : ''}
<button type="submit">Continue</button>
</form>
${p.totp ? html`<p><a href="${p.otherLink}">Use your authenticator app instead</a></p>` : ''}`
    : html`<form id="totp-form" method="post" action="${p.action}">
<input type="hidden" name="csrf" value="${p.csrf}">
<input type="hidden" name="method" value="totp">
<label for="code">Code from your authenticator app</label>
<input id="code" name="code" type="text" inputmode="numeric" pattern="[0-9 ]*" autocomplete="one-time-code" maxlength="8" required autofocus>
${p.error ? html`<p class="error" role="alert" data-code="${p.errorCode ?? ''}">${p.error}</p>` : ''}
<button type="submit">Verify</button>
</form>
<p><a href="${p.otherLink}">Use a recovery code</a></p>`;
  return layout(
    'Two-step verification',
    p.brand,
    html`<h1>Two-step verification</h1>
<p class="sub">to continue to ${p.clientName}</p>
${form}${p.extra ?? []}`,
  );
}
