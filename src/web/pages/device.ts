// The device flow's hosted pages (RFC 8628): enter the code a device shows, confirm it is the
// device in front of you, and the result. The forms post to the provider with its xsrf token.
import { html } from '../../core/html.js';
import type { Brand } from '../brand.js';
import type { Locale } from '../i18n.js';
import { layout } from '../layout.js';

export interface DeviceFormTarget {
  action: string;
  xsrf: string;
}

/** Why the provider refused a user code; the page says it in the request's language. */
export interface DeviceCodeProblem {
  reason: 'no_code' | 'not_found' | 'expired' | 'already_used' | 'aborted' | 'other';
  /** Set when the network is throttled: how long before another code is accepted. */
  retryAfterSeconds?: number;
}

function problemText(locale: Locale, problem: DeviceCodeProblem): string {
  if (problem.retryAfterSeconds) {
    return locale.t('device.error.throttled', { seconds: problem.retryAfterSeconds });
  }
  return locale.t(`device.error.${problem.reason}`);
}

export function deviceCodeEntryPage(
  locale: Locale,
  brand: Brand,
  form: DeviceFormTarget,
  problem?: DeviceCodeProblem,
  startAgain?: boolean,
): string {
  const { t } = locale;
  const error = problem ? problemText(locale, problem) : undefined;
  if (startAgain) {
    return layout(
      t('device.title'),
      brand,
      html`<h1>${t('device.heading')}</h1>
<p class="error" role="alert">${error ?? t('device.expired')}</p>
<p class="sub"><a href="${form.action}">${t('device.openAgain')}</a> ${t('device.openAgainRest')}</p>`,
      locale,
    );
  }
  return layout(
    t('device.title'),
    brand,
    html`<h1>${t('device.heading')}</h1>
<p class="sub">${t('device.prompt')}</p>
<form method="post" action="${form.action}" autocomplete="off">
<input type="hidden" name="xsrf" value="${form.xsrf}">
<label for="user_code">${t('device.codeLabel')}</label>
<input id="user_code" name="user_code" type="text" required autofocus autocapitalize="characters" spellcheck="false" placeholder="XXXX-XXXX">
${error ? html`<p class="error" role="alert">${error}</p>` : ''}
<button type="submit">${t('device.continue')}</button>
</form>`,
    locale,
  );
}

export function deviceCodeConfirmPage(
  locale: Locale,
  brand: Brand,
  form: DeviceFormTarget,
  clientName: string,
  userCode: string,
): string {
  const { t } = locale;
  return layout(
    t('device.confirm.title'),
    brand,
    html`<h1>${t('device.confirm.heading', { client: clientName })}</h1>
<p class="sub">${t('device.confirm.prompt')}</p>
<p class="code"><strong>${userCode}</strong></p>
<p class="sub">${t('device.confirm.warning')}</p>
<form method="post" action="${form.action}">
<input type="hidden" name="xsrf" value="${form.xsrf}">
<input type="hidden" name="user_code" value="${userCode}">
<input type="hidden" name="confirm" value="yes">
<button type="submit">${t('device.continue')}</button>
</form>
<form method="post" action="${form.action}">
<input type="hidden" name="xsrf" value="${form.xsrf}">
<input type="hidden" name="user_code" value="${userCode}">
<input type="hidden" name="abort" value="yes">
<button type="submit" class="secondary">${t('device.confirm.cancel')}</button>
</form>`,
    locale,
  );
}

/** `clientName` undefined: the provider did not know the client, and the page says "the application". */
export function deviceSignedInPage(locale: Locale, brand: Brand, clientName?: string): string {
  const { t } = locale;
  return layout(
    t('device.done.title'),
    brand,
    html`<h1>${t('device.done.heading')}</h1><p class="sub">${t('device.done.body', { client: clientName ?? t('app.fallbackName') })}</p>`,
    locale,
  );
}
