// The hosted pages' languages: ICU MessageFormat catalogues (src/web/locales/catalogues.ts, English
// the reference), the choice of language for one request, and per-locale dates and numbers.
import { IntlMessageFormat } from 'intl-messageformat';
import Negotiator from 'negotiator';
import { SUPPORTED_LOCALES, type SupportedLocale } from '../core/locales.js';
import { de, en, fr } from './locales/catalogues.js';

export { SUPPORTED_LOCALES, type SupportedLocale };

/** Every message key, from the English catalogue: a key that is not there does not compile. */
export type MessageKey = keyof typeof en;
export type MessageParams = Record<string, string | number | Date>;

export const CATALOGUES: Record<SupportedLocale, Record<string, string>> = { en, de, fr };

/** What a request says about its language, in the order it is honoured. */
export interface LocaleChoice {
  /** The authorization (or logout) request's `ui_locales`: space-separated BCP 47 tags, best first. */
  uiLocales?: unknown;
  /** The browser's Accept-Language header (q-values honoured). */
  acceptLanguage?: string | string[];
  /** The tenant's default language (its `defaultLocale` setting). */
  tenantDefault?: unknown;
}

/** One request's language: what every page render receives. */
export interface Locale {
  readonly tag: SupportedLocale;
  /** The message for `key` with its placeholders filled; a missing placeholder throws. */
  t(key: MessageKey, params?: MessageParams): string;
  /** Whether the catalogue has this key (for keys built from a code, e.g. `error.code.<code>`). */
  has(key: string): key is MessageKey;
  date(value: Date, options?: Intl.DateTimeFormatOptions): string;
  number(value: number, options?: Intl.NumberFormatOptions): string;
}

/** The supported language a BCP 47 tag asks for (its language subtag), if any. */
export function supportedLocale(tag: unknown): SupportedLocale | undefined {
  if (typeof tag !== 'string' || tag.trim() === '') return undefined;
  try {
    const language = new Intl.Locale(tag.trim()).language.toLowerCase();
    return SUPPORTED_LOCALES.find((l) => l === language);
  } catch {
    // Not a well-formed tag: it asks for nothing we have.
    return undefined;
  }
}

/** `ui_locales`, then Accept-Language, then the tenant's default, then English. */
export function negotiateLocale(choice: LocaleChoice): SupportedLocale {
  if (typeof choice.uiLocales === 'string') {
    for (const tag of choice.uiLocales.split(/\s+/)) {
      const found = supportedLocale(tag);
      if (found) return found;
    }
  }
  if (choice.acceptLanguage) {
    const header = Array.isArray(choice.acceptLanguage)
      ? choice.acceptLanguage.join(', ')
      : choice.acceptLanguage;
    // negotiator orders by q-value, drops q=0 and matches de-CH to de; a bare `*` names no language.
    const requested = new Negotiator({ headers: { 'accept-language': header } }).languages();
    for (const tag of requested) {
      const found = supportedLocale(tag);
      if (found) return found;
    }
  }
  return supportedLocale(choice.tenantDefault) ?? 'en';
}

const formats = new Map<string, IntlMessageFormat>();

function format(tag: SupportedLocale, key: string, message: string): IntlMessageFormat {
  const id = `${tag}\u0000${key}`;
  let compiled = formats.get(id);
  if (!compiled) {
    compiled = new IntlMessageFormat(message, tag);
    formats.set(id, compiled);
  }
  return compiled;
}

export function localeOf(tag: SupportedLocale): Locale {
  const catalogue = CATALOGUES[tag];
  return {
    tag,
    t(key, params) {
      // A key missing from a translation shows the English text rather than a blank; the
      // catalogue test keeps every translation complete.
      const message = catalogue[key] ?? en[key];
      const out = format(catalogue[key] ? tag : 'en', key, message).format(params);
      if (typeof out !== 'string') throw new Error(`message ${key} produced markup, not text`);
      return out;
    },
    has(key): key is MessageKey {
      return Object.hasOwn(en, key);
    },
    date: (value, options = { dateStyle: 'long', timeStyle: 'short' }) =>
      new Intl.DateTimeFormat(tag, options).format(value),
    number: (value, options) => new Intl.NumberFormat(tag, options).format(value),
  };
}

/** The locale a request gets, by `negotiateLocale`. */
export function chooseLocale(choice: LocaleChoice): Locale {
  return localeOf(negotiateLocale(choice));
}

/** English: for pages rendered outside a request's choice. */
export const ENGLISH: Locale = localeOf('en');
