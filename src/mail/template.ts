// A tiny template helper for mail bodies: `html` escapes every interpolated value, so text from
// users (a name, a tenant's display name) can never become markup, and `layoutMail` wraps a body
// in one self-contained document (inline styles, no remote images or scripts).

/** Markup that is already safe; only `html` and `raw` make one. */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

type Value = string | number | SafeHtml | readonly SafeHtml[] | undefined | null;

function render(value: Value): string {
  if (value === undefined || value === null) return '';
  if (value instanceof SafeHtml) return value.value;
  if (Array.isArray(value)) return value.map((v: SafeHtml) => v.value).join('');
  return escapeHtml(String(value));
}

/**
 * @example
 * html`<p>Hello ${user.name},</p><p><a href="${link}">Verify your address</a></p>`
 */
export function html(strings: TemplateStringsArray, ...values: Value[]): SafeHtml {
  let out = strings[0] ?? '';
  values.forEach((value, i) => {
    out += render(value) + (strings[i + 1] ?? '');
  });
  return new SafeHtml(out);
}

/** Only for markup built by `html` elsewhere and kept as text. */
export function raw(markup: string): SafeHtml {
  return new SafeHtml(markup);
}

/** A whole HTML mail: the body inside a minimal, self-contained document. */
export function layoutMail(title: string, body: SafeHtml, lang = 'en'): string {
  return html`<!doctype html>
<html lang="${lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${title}</title></head>
<body style="font-family: system-ui, sans-serif; line-height: 1.5; color: #1a1a1a; max-width: 36em; margin: 1em auto; padding: 0 1em">
${body}
</body></html>
`.value;
}
