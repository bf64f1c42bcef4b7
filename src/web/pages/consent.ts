// The hosted consent page: what the application asks for, in words, with allow and deny.
import { html } from '../../core/html.js';
import type { Brand } from '../brand.js';
import type { Locale } from '../i18n.js';
import { layout } from '../layout.js';

export interface ConsentPage {
  locale: Locale;
  brand: Brand;
  clientName: string;
  action: string;
  abortAction: string;
  csrf: string;
  scopes: string[];
  resources: { indicator: string; scopes: string[] }[];
}

export function consentPage(p: ConsentPage): string {
  const { t, has } = p.locale;
  const client = p.clientName;
  // A scope without words of ours (a custom one) is shown by its name.
  const scopeText = (s: string) => {
    const key = `consent.scope.${s}`;
    return has(key) ? t(key) : s;
  };
  return layout(
    t('consent.title'),
    p.brand,
    html`<h1>${t('consent.heading', { client })}</h1>
<p class="sub">${t('consent.subtitle', { client })}</p>
<ul class="scopes">
${p.scopes.map((s) => html`<li>${scopeText(s)}</li>`)}
${p.resources.map((r) => html`<li>${t('consent.resource', { resource: r.indicator })}${r.scopes.length ? html` (${r.scopes.join(', ')})` : ''}</li>`)}
</ul>
<form method="post" action="${p.action}">
<input type="hidden" name="csrf" value="${p.csrf}">
<button type="submit">${t('consent.allow')}</button>
</form>
<form method="post" action="${p.abortAction}">
<input type="hidden" name="csrf" value="${p.csrf}">
<button type="submit" class="secondary">${t('consent.deny')}</button>
</form>`,
    p.locale,
  );
}
