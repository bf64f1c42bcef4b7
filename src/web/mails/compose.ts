// Every mail the hosted flows send has one shape: the tenant's logo, paragraphs, at most one
// action link and one code, in the reader's language and the tenant's brand. Text and HTML come
// from the same parts, so the two alternatives never say different things.
import { html } from '../../core/html.js';
import { type Brand, DEFAULT_COLOUR } from '../brand.js';
import type { Locale } from '../i18n.js';

/**
 * An image the HTML shows as `cid:<cid>`: the tenant's stored image with this content hash, which
 * the mail queue attaches inline (the shape of src/mail's InlineImageRef).
 */
export interface InlineImageRef {
  cid: string;
  sha256: string;
  filename: string;
}

/** What a feature hands to `mail.enqueue` (with `to` and `template`). */
export interface ComposedMail {
  subject: string;
  text: string;
  html: string;
  /** The images the HTML shows; absent when it shows none. */
  inline?: InlineImageRef[];
}

/**
 * The box a mail draws the logo in, CSS pixels: its rendition has up to twice as many
 * (src/tenancy/branding.ts, MAIL_LOGO_BOX), for high-density screens.
 */
const LOGO_BOX = { width: 192, height: 64 };

/** The logo's drawn size: fitted in LOGO_BOX, never enlarged (width and height attributes, which every client honours). */
function drawnSize(logo: { width: number; height: number }): { width: number; height: number } {
  const scale = Math.min(1, LOGO_BOX.width / logo.width, LOGO_BOX.height / logo.height);
  return {
    width: Math.max(1, Math.round(logo.width * scale)),
    height: Math.max(1, Math.round(logo.height * scale)),
  };
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
  // The logo travels inside the mail: a remote image is blocked by most clients and tells the
  // sender when and where the mail was read. The text alternative has the name in its footer.
  const logo = brand.mailLogo
    ? {
        cid: `logo.${brand.mailLogo.sha256.slice(0, 16)}@orthid`,
        sha256: brand.mailLogo.sha256,
        size: drawnSize(brand.mailLogo),
      }
    : undefined;
  const header = logo
    ? html`<p style="margin:0 0 1.5em"><img src="cid:${logo.cid}" alt="${brand.name}" width="${logo.size.width}" height="${logo.size.height}" style="display:block;border:0"></p>\n`
    : '';
  const body = html`${header}${parts.paragraphs.map((p) => html`<p>${p}</p>\n`)}${
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
    ...(logo ? { inline: [{ cid: logo.cid, sha256: logo.sha256, filename: 'logo.png' }] } : {}),
  };
}
