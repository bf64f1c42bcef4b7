// The frame every hosted page shares: no inline scripts, no third-party requests, a strict CSP,
// so the pages work without JavaScript and leak nothing to other origins.
import { createHash } from 'node:crypto';
import { html, SafeHtml } from '../core/html.js';
import type { Brand } from './brand.js';
import { ENGLISH, type Locale } from './i18n.js';

/** Static and ours: inserted as markup, not escaped. */
const STYLE_TEXT = `
*{box-sizing:border-box}body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;background:#f4f5f7;color:#1d2433}
main{max-width:26rem;margin:8vh auto;padding:2rem;background:#fff;border-radius:12px;box-shadow:0 1px 3px rgba(0,0,0,.12)}
h1{font-size:1.4rem;margin:0 0 .25rem}p.sub{margin:0 0 1.5rem;color:#5b6478}label{display:block;font-weight:600;margin:1rem 0 .35rem}
input{width:100%;padding:.65rem .75rem;border:1px solid #c5cad3;border-radius:8px;font:inherit}
input:focus{outline:2px solid #3b5bdb;border-color:#3b5bdb}
button{width:100%;margin-top:1.5rem;padding:.7rem;border:0;border-radius:8px;background:#3b5bdb;color:#fff;font:600 1rem system-ui,sans-serif;cursor:pointer}
button.secondary{background:#e9ecf2;color:#1d2433;margin-top:.6rem}[hidden]{display:none!important}
.error{margin:1rem 0 0;padding:.75rem;border-radius:8px;background:#fdecec;color:#9b1c1c}
p.links{margin:1rem 0 0;text-align:center}a{color:#3b5bdb}
ul.scopes{padding-left:1.2rem}p.code{font:600 1.6rem ui-monospace,monospace;letter-spacing:.15em;text-align:center}footer{margin-top:1.5rem;font-size:.8rem;color:#5b6478;text-align:center}
p.logo{margin:0 0 1rem;text-align:center}p.logo img{max-width:100%;max-height:4rem;width:auto;height:auto}footer p{margin:.25rem 0}`;
const STYLE = new SafeHtml(STYLE_TEXT);
/** The CSP allows this one inline stylesheet by its hash, so no injected style would apply. */
const STYLE_SOURCE = `'sha256-${createHash('sha256').update(STYLE_TEXT).digest('base64')}'`;

export const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy': `default-src 'none'; style-src 'self' ${STYLE_SOURCE}; img-src 'self' data:; form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'`,
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
} as const;

/**
 * For a page that loads OrthID's own passkey script: scripts and fetches from this origin only
 * (never inline), everything else as strict as PAGE_HEADERS.
 */
export const SCRIPTED_PAGE_HEADERS = {
  ...PAGE_HEADERS,
  'content-security-policy': `${PAGE_HEADERS['content-security-policy']}; script-src 'self'; connect-src 'self'`,
} as const;

/**
 * The tenant's colour arrives as a same-origin stylesheet (brand.stylesheet), never as inline
 * markup: the CSP is the same for every tenant, and no tenant value is ever parsed as CSS here.
 * `locale`: the request's language (the `lang` attribute and the footer); a page not yet
 * translated leaves it out and stays English. `script`: a same-origin script the page loads.
 */
export function layout(
  title: string,
  brand: Brand,
  body: SafeHtml,
  locale: Locale = ENGLISH,
  script?: string,
): string {
  return html`<!doctype html>
<html lang="${locale.tag}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · ${brand.name}</title>
<style>${STYLE}</style>
${brand.stylesheet ? html`<link rel="stylesheet" href="${brand.stylesheet}">\n` : ''}${script ? html`<script src="${script}" defer></script>\n` : ''}</head>
<body><main>${
    brand.logo
      ? html`<p class="logo"><img src="${brand.logo.src}" alt="${brand.name}" width="${brand.logo.width}" height="${brand.logo.height}"></p>\n`
      : ''
  }${body}<footer>${
    brand.support
      ? html`<p class="support">${locale.t('brand.help')} <a href="${brand.support.href}">${brand.support.label}</a></p>`
      : ''
  }<p>${locale.t('layout.footer', { tenant: brand.name })}</p></footer></main></body>
</html>`.value;
}
