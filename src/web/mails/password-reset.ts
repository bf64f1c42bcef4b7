// The two mails of a password reset: the link (with when it stops working) and the notice that
// the password was changed. Composed like every hosted-flow mail (compose.ts).
import type { Brand } from '../brand.js';
import type { Locale } from '../i18n.js';
import { type ComposedMail, composeMail } from './compose.js';

/** Times in mail name their zone: the reader may be anywhere. */
const WHEN: Intl.DateTimeFormatOptions = { dateStyle: 'long', timeStyle: 'long', timeZone: 'UTC' };

export function resetLinkMail(
  locale: Locale,
  brand: Brand,
  link: { url: string; expiresAt: Date },
): ComposedMail {
  const { t } = locale;
  return composeMail(locale, brand, {
    subject: t('reset.mail.link.subject', { tenant: brand.name }),
    paragraphs: [
      t('reset.mail.link.intro', { tenant: brand.name }),
      t('reset.mail.link.expiry', { expires: locale.date(link.expiresAt, WHEN) }),
    ],
    action: { label: t('reset.mail.link.action'), url: link.url },
    note: t('reset.mail.link.note'),
  });
}

export function passwordChangedMail(locale: Locale, brand: Brand, at: Date): ComposedMail {
  const { t } = locale;
  return composeMail(locale, brand, {
    subject: t('reset.mail.changed.subject', { tenant: brand.name }),
    paragraphs: [t('reset.mail.changed.body', { tenant: brand.name, when: locale.date(at, WHEN) })],
    note: t('reset.mail.changed.note'),
  });
}
