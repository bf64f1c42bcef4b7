// The device flow's hosted pages (RFC 8628): enter the code a device shows, confirm it is the
// device in front of you, and the result. The forms post to the provider with its xsrf token.
import { html } from '../html.js';
import { layout } from '../layout.js';

export interface DeviceFormTarget {
  action: string;
  xsrf: string;
}

export function deviceCodeEntryPage(
  tenantName: string,
  form: DeviceFormTarget,
  error?: string,
  startAgain?: boolean,
): string {
  if (startAgain) {
    return layout(
      'Connect a device',
      tenantName,
      html`<h1>Connect a device</h1>
<p class="error" role="alert">${error ?? 'This page expired.'}</p>
<p class="sub"><a href="${form.action}">Open the code entry page again</a> and enter the code shown on your device.</p>`,
    );
  }
  return layout(
    'Connect a device',
    tenantName,
    html`<h1>Connect a device</h1>
<p class="sub">Enter the code shown on your device.</p>
<form method="post" action="${form.action}" autocomplete="off">
<input type="hidden" name="xsrf" value="${form.xsrf}">
<label for="user_code">Code</label>
<input id="user_code" name="user_code" type="text" required autofocus autocapitalize="characters" spellcheck="false" placeholder="XXXX-XXXX">
${error ? html`<p class="error" role="alert">${error}</p>` : ''}
<button type="submit">Continue</button>
</form>`,
  );
}

export function deviceCodeConfirmPage(
  tenantName: string,
  form: DeviceFormTarget,
  clientName: string,
  userCode: string,
): string {
  return layout(
    'Confirm the device',
    tenantName,
    html`<h1>Connect ${clientName}?</h1>
<p class="sub">Continue only if your device shows this code:</p>
<p class="code"><strong>${userCode}</strong></p>
<p class="sub">If you did not start this on a device of yours, or the code differs, cancel.</p>
<form method="post" action="${form.action}">
<input type="hidden" name="xsrf" value="${form.xsrf}">
<input type="hidden" name="user_code" value="${userCode}">
<input type="hidden" name="confirm" value="yes">
<button type="submit">Continue</button>
</form>
<form method="post" action="${form.action}">
<input type="hidden" name="xsrf" value="${form.xsrf}">
<input type="hidden" name="user_code" value="${userCode}">
<input type="hidden" name="abort" value="yes">
<button type="submit" class="secondary">Cancel</button>
</form>`,
  );
}

export function deviceSignedInPage(tenantName: string, clientName: string): string {
  return layout(
    'Device connected',
    tenantName,
    html`<h1>Device connected</h1><p class="sub">${clientName} is signed in. You can close this page and return to your device.</p>`,
  );
}
