// Every mail the hosted flows send has one shape: paragraphs, at most one action link and one
// code, in the reader's language and the tenant's brand. Text and HTML come from the same parts,
// so the two alternatives never say different things.
import { html } from '../../core/html.js';
import { type Brand, DEFAULT_COLOUR } from '../brand.js';
import type { Locale } from '../i18n.js';

/** What a feature hands to `mail.enqueue` (with `to` and `template`). */
export interface ComposedMail {
  subject: string;
  text: string;
  html: string;
}

export interface MailParts {
  subject: string;
  /** Already in the reader's language. */
  paragraphs: string[];
  /** A button in HTML, the bare URL on its own line in text. */
  action?: { label: string; url: string };
  /** A short code to type on another device, shown large. */
  code?: string;
  /** Last words in small print, e.g. "If you did not ask for this, ignore this mail." */
  note?: string;
}

export function composeMail(locale: Locale, brand: Brand, parts: MailParts): ComposedMail {
  const footer = locale.t('mail.footer', { tenant: brand.name });
  const help = brand.support ? `${locale.t('brand.help')} ${brand.support.label}` : undefined;
  // Mail clients ignore stylesheets: the tenant's colour goes inline (checked #rrggbb only).
  const colour = brand.colour ?? DEFAULT_COLOUR;
  const text = [
    ...parts.paragraphs,
    ...(parts.action ? [`${parts.action.label}:\n${parts.action.url}`] : []),
    ...(parts.code ? [parts.code] : []),
    ...(parts.note ? [parts.note] : []),
    `-- \n${help ? `${help}\n` : ''}${footer}`,
  ].join('\n\n');
  const body = html`${parts.paragraphs.map((p) => html`<p>${p}</p>\n`)}${
    parts.action
      ? html`<p><a href="${parts.action.url}" style="display:inline-block;padding:.6em 1.2em;border-radius:6px;background:${colour};color:#fff;text-decoration:none;font-weight:600">${parts.action.label}</a></p>
<p style="font-size:.85em;color:#5b6478">${parts.action.url}</p>\n`
      : ''
  }${parts.code ? html`<p style="font:600 1.6em ui-monospace,monospace;letter-spacing:.15em">${parts.code}</p>\n` : ''}${
    parts.note ? html`<p style="font-size:.85em;color:#5b6478">${parts.note}</p>\n` : ''
  }${
    brand.support
      ? html`<p style="font-size:.85em;color:#5b6478">${locale.t('brand.help')} <a href="${brand.support.href}" style="color:${colour}">${brand.support.label}</a></p>\n`
      : ''
  }<p style="font-size:.8em;color:#6b7385">${footer}</p>`;
  return {
    subject: parts.subject,
    text: `${text}\n`,
    html: html`<!doctype html>
<html lang="${locale.tag}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${parts.subject}</title></head>
<body style="font-family: system-ui, sans-serif; line-height: 1.5; color: #1d2433; max-width: 36em; margin: 1em auto; padding: 0 1em">
${body}
</body></html>
`.value,
  };
}
