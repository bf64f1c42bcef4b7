// What a hosted page says about an OrthIdError: the catalogue's words for its code, in the
// request's language. The code itself stays the stable, untranslated API value.
import type { OrthIdError } from '../core/errors.js';
import type { Locale } from './i18n.js';

export function userFacingError(
  locale: Locale,
  error: Pick<OrthIdError, 'code' | 'message' | 'details'>,
): string {
  const key = `error.code.${error.code}`;
  if (locale.has(key)) {
    const seconds = Number(error.details?.retryAfterSeconds ?? 0);
    return locale.t(key, { seconds });
  }
  // A code the catalogue does not cover yet: its own English message, or a general sentence
  // in the page's language rather than English in the middle of a German page.
  return locale.tag === 'en' ? error.message : locale.t('error.generic');
}
