// The mails about an account: sign-up's verification link with its code, the "you already have
// an account" notice, an invitation link, and the account pages' change of address, in the
// reader's language and the tenant's brand.
import { type Brand, brandOf } from '../brand.js';
import { chooseLocale, type Locale } from '../i18n.js';
import { type ComposedMail, composeMail } from './compose.js';

/** What the sign-up flows ask for (the shape of identity's AccountMailRequest). */
export interface AccountMailRequest {
  kind: 'verify-email' | 'account-exists' | 'invitation';
  language?: string;
  tenant: { displayName: string; settings: Readonly<Record<string, unknown>> };
  url?: string;
  code?: string;
  validHours?: number;
  organisation?: string;
}

export function composeAccountMail(request: AccountMailRequest): ComposedMail {
  const locale = chooseLocale({
    uiLocales: request.language,
    tenantDefault: request.tenant.settings.defaultLocale,
  });
  const { t } = locale;
  const brand = brandOf(request.tenant);
  const tenant = brand.name;
  const action = (label: string) => (request.url ? { action: { label, url: request.url } } : {});
  switch (request.kind) {
    case 'verify-email':
      return composeMail(locale, brand, {
        subject: t('mail.verify.subject', { tenant }),
        paragraphs: [
          t('mail.verify.greeting', { tenant }),
          t('mail.verify.body', { hours: request.validHours ?? 24 }),
        ],
        ...action(t('mail.verify.action')),
        ...(request.code ? { code: request.code } : {}),
        note: t('mail.verify.note'),
      });
    case 'account-exists':
      return composeMail(locale, brand, {
        subject: t('mail.exists.subject', { tenant }),
        paragraphs: [t('mail.exists.body', { tenant }), t('mail.exists.next')],
        note: t('mail.exists.note'),
      });
    case 'invitation':
      return composeMail(locale, brand, {
        subject: t('mail.invite.subject', { tenant }),
        paragraphs: [
          request.organisation
            ? t('mail.invite.bodyOrganisation', { tenant, organisation: request.organisation })
            : t('mail.invite.body', { tenant }),
          t('mail.invite.validity', { days: Math.round((request.validHours ?? 168) / 24) }),
        ],
        ...action(t('mail.invite.action')),
        note: t('mail.invite.note'),
      });
  }
}

/** The account pages' link that confirms a new address. */
export function emailChangeMail(locale: Locale, brand: Brand, url: string): ComposedMail {
  const { t } = locale;
  return composeMail(locale, brand, {
    subject: t('account.mail.change.subject'),
    paragraphs: [t('account.mail.change.body', { tenant: brand.name })],
    action: { label: t('account.mail.change.action'), url },
    note: t('account.mail.change.note'),
  });
}

/** What a new address gets when it already has an account, so the page never has to say so. */
export function emailTakenMail(locale: Locale, brand: Brand): ComposedMail {
  const { t } = locale;
  return composeMail(locale, brand, {
    subject: t('account.mail.taken.subject'),
    paragraphs: [t('account.mail.taken.body', { tenant: brand.name })],
    note: t('account.mail.taken.note'),
  });
}

/** Times in mail name their zone: the reader may be anywhere. */
const WHEN: Intl.DateTimeFormatOptions = { dateStyle: 'long', timeStyle: 'long', timeZone: 'UTC' };

/**
 * What the previous address gets once the account's address changed: the new one masked (the
 * caller masks it), when, and whom to ask (the tenant's support contact, or its administrators).
 */
export function emailChangedMail(
  locale: Locale,
  brand: Brand,
  change: { maskedAddress: string; at: Date },
): ComposedMail {
  const { t } = locale;
  const tenant = brand.name;
  return composeMail(locale, brand, {
    subject: t('mail.emailChanged.subject', { tenant }),
    paragraphs: [
      t('mail.emailChanged.body', {
        tenant,
        address: change.maskedAddress,
        when: locale.date(change.at, WHEN),
      }),
      brand.support
        ? t('mail.emailChanged.contact', { contact: brand.support.label })
        : t('mail.emailChanged.contactAdmin', { tenant }),
    ],
    note: t('mail.emailChanged.note'),
  });
}
