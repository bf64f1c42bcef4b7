// The hosted consent page: what the application asks for, in words, with allow and deny.
import { html } from '../html.js';
import { layout } from '../layout.js';

export interface ConsentPage {
  tenantName: string;
  clientName: string;
  action: string;
  abortAction: string;
  csrf: string;
  scopes: string[];
  resources: { indicator: string; scopes: string[] }[];
}

const SCOPE_TEXT: Record<string, string> = {
  openid: 'Know who you are',
  profile: 'See your name',
  email: 'See your email address',
  phone: 'See your phone number',
  offline_access: 'Stay signed in when you are not using it',
};

export function consentPage(p: ConsentPage): string {
  return layout(
    'Allow access',
    p.tenantName,
    html`<h1>Allow ${p.clientName}?</h1>
<p class="sub">${p.clientName} is asking to:</p>
<ul class="scopes">
${p.scopes.map((s) => html`<li>${SCOPE_TEXT[s] ?? s}</li>`)}
${p.resources.map((r) => html`<li>Use ${r.indicator}${r.scopes.length ? html` (${r.scopes.join(', ')})` : ''}</li>`)}
</ul>
<form method="post" action="${p.action}">
<input type="hidden" name="csrf" value="${p.csrf}">
<button type="submit">Allow</button>
</form>
<form method="post" action="${p.abortAction}">
<input type="hidden" name="csrf" value="${p.csrf}">
<button type="submit" class="secondary">Deny</button>
</form>`,
  );
}
