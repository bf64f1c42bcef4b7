// The account pages' mails: a link that confirms a new address, and the note an address gets when
// it already has an account (so the page never has to say so).
import type { Brand } from '../brand.js';
import type { Locale } from '../i18n.js';
import { type ComposedMail, composeMail } from './compose.js';

export function emailChangeMail(locale: Locale, brand: Brand, url: string): ComposedMail {
  const { t } = locale;
  return composeMail(locale, brand, {
    subject: t('account.mail.change.subject'),
    paragraphs: [t('account.mail.change.body', { tenant: brand.name })],
    action: { label: t('account.mail.change.action'), url },
    note: t('account.mail.change.note'),
  });
}

export function emailTakenMail(locale: Locale, brand: Brand): ComposedMail {
  const { t } = locale;
  return composeMail(locale, brand, {
    subject: t('account.mail.taken.subject'),
    paragraphs: [t('account.mail.taken.body', { tenant: brand.name })],
    note: t('account.mail.taken.note'),
  });
}
