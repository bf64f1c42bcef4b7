// Hosted pages that say one thing: sign-out confirmation, signed out, and errors. The sign-out
// form is the provider's own (it carries its xsrf token), placed in our frame.
import { html, SafeHtml } from '../html.js';
import { layout } from '../layout.js';

export function signOutPage(tenantName: string, providerForm: string): string {
  return layout(
    'Sign out',
    tenantName,
    html`<h1>Sign out?</h1>
<p class="sub">You will be signed out of ${tenantName} on this device.</p>
${new SafeHtml(providerForm)}
<button type="submit" form="op.logoutForm" name="logout" value="yes" autofocus>Sign out</button>
<button type="submit" form="op.logoutForm" class="secondary">Stay signed in</button>`,
  );
}

export function signedOutPage(tenantName: string): string {
  return layout(
    'Signed out',
    tenantName,
    html`<h1>You are signed out</h1><p class="sub">You can close this page.</p>`,
  );
}

export function errorPage(tenantName: string, title: string, detail: string): string {
  return layout('Error', tenantName, html`<h1>${title}</h1><p class="error">${detail}</p>`);
}
