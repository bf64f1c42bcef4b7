// Mail bodies are written with the hosted pages' `html` (src/core/html.ts), which escapes every
// interpolated value, so text from users (a name, a tenant's display name) can never become
// markup; `layoutMail` wraps a body in one self-contained document (inline styles, no remote
// images or scripts).
import { html, type SafeHtml } from '../core/html.js';

/** A whole HTML mail: the body inside a minimal, self-contained document. */
export function layoutMail(title: string, body: SafeHtml, lang = 'en'): string {
  return html`<!doctype html>
<html lang="${lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${title}</title></head>
<body style="font-family: system-ui, sans-serif; line-height: 1.5; color: #1a1a1a; max-width: 36em; margin: 1em auto; padding: 0 1em">
${body}
</body></html>
`.value;
}
