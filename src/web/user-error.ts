// What a hosted page says about an OrthIdError: the catalogue's words for its code, in the
// request's language. The code itself stays the stable, untranslated API value.
import type { OrthIdError } from '../core/errors.js';
import type { Locale } from './i18n.js';

/** An OrthIdError, or what a step kept of one (its code as a plain string). */
type Refusal = Pick<OrthIdError, 'message'> & { code: string; details?: OrthIdError['details'] };

export function userFacingError(locale: Locale, error: Refusal): string {
  const key = `error.code.${error.code}`;
  if (locale.has(key)) {
    const seconds = Number(error.details?.retryAfterSeconds ?? 0);
    return locale.t(key, { seconds });
  }
  // A code the catalogue does not cover yet: its own English message, or a general sentence
  // in the page's language rather than English in the middle of a German page.
  return locale.tag === 'en' ? error.message : locale.t('error.generic');
}

/**
 * A refusal on a sign-in step (a code, a passkey). In English its own message, written for the
 * exact step it refuses (a recovery code, not an app code); in other languages the catalogue's
 * words for its code.
 */
export function stepErrorText(locale: Locale, error: Refusal): string {
  return locale.tag === 'en' ? error.message : userFacingError(locale, error);
}
