// The hosted pages' catalogues and the choice of language, without a server: every translation
// has exactly English's keys with the same placeholders, every message parses as ICU
// MessageFormat, and the choice honours ui_locales, then Accept-Language q-values, then the
// tenant's default, then English.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type MessageFormatElement, parse, TYPE } from '@formatjs/icu-messageformat-parser';
import {
  CATALOGUES,
  localeOf,
  type MessageKey,
  negotiateLocale,
  SUPPORTED_LOCALES,
  supportedLocale,
} from '../../src/web/i18n.js';
import { enrolPasskeyPage } from '../../src/web/pages/passkeys.js';
import { stepErrorText } from '../../src/web/user-error.js';

/** The placeholders a message uses, with their kind (argument, plural, select, date, number). */
function placeholders(elements: MessageFormatElement[], out = new Set<string>()): Set<string> {
  for (const e of elements) {
    if (e.type === TYPE.literal || e.type === TYPE.pound) continue;
    if (e.type === TYPE.tag) {
      out.add(`<${e.value}>`);
      placeholders(e.children, out);
      continue;
    }
    out.add(`${e.value}:${TYPE[e.type]}`);
    if (e.type === TYPE.plural || e.type === TYPE.select) {
      for (const option of Object.values(e.options)) placeholders(option.value, out);
    }
  }
  return out;
}

describe('hosted page catalogues', () => {
  const english = CATALOGUES.en;

  for (const tag of SUPPORTED_LOCALES.filter((l) => l !== 'en')) {
    test(`${tag} has exactly the English keys, each with the same placeholders`, () => {
      const catalogue = CATALOGUES[tag];
      assert.deepEqual(
        Object.keys(english).filter((k) => !(k in catalogue)),
        [],
        `keys missing from ${tag}`,
      );
      assert.deepEqual(
        Object.keys(catalogue).filter((k) => !(k in english)),
        [],
        `keys in ${tag} that English does not have`,
      );
      for (const [key, message] of Object.entries(english)) {
        assert.deepEqual(
          [...placeholders(parse(catalogue[key]!))].sort(),
          [...placeholders(parse(message))].sort(),
          `${tag} "${key}" must use the placeholders of English`,
        );
      }
    });

    test(`${tag} translates: no message is left in English`, () => {
      // Words that are the same in both languages (a code, a placeholder alone) are allowed.
      const same = Object.keys(english).filter(
        (k) => CATALOGUES[tag][k] === english[k] && !['device.codeLabel'].includes(k),
      );
      assert.deepEqual(same, [], `${tag}.json messages identical to English`);
    });
  }

  test('every message of every catalogue parses and formats', () => {
    for (const tag of SUPPORTED_LOCALES) {
      const locale = localeOf(tag);
      for (const key of Object.keys(english) as MessageKey[]) {
        const text = locale.t(key, {
          client: 'Acme Web',
          tenant: 'Acme',
          resource: 'https://api.acme.test',
          seconds: 3,
          code: 'invalid_request',
          minutes: 60,
          min: 15,
          max: 256,
          expires: '1 June 2026, 10:00:00 UTC',
          when: '1 June 2026, 09:00:00 UTC',
          email: 'ada@acme.test',
          hours: 24,
          days: 7,
          organisation: 'Sales',
          count: 4,
          date: 'March 5, 2026',
          name: 'Work laptop',
          address: 'a•••@e•••.org',
          contact: 'help@acme.test',
        });
        assert.ok(text.length > 0 && !text.includes('{'), `${tag} ${key}: ${text}`);
      }
    }
  });

  test('a missing placeholder value is an error, not a blank', () => {
    assert.throws(() => localeOf('de').t('signIn.subtitle'));
  });

  test('plurals and numbers follow the language', () => {
    assert.equal(
      localeOf('en').t('device.error.throttled', { seconds: 1 }),
      'Too many incorrect codes from this network. Try again in 1 second.',
    );
    assert.equal(
      localeOf('de').t('device.error.throttled', { seconds: 1500 }),
      'Zu viele falsche Codes aus diesem Netzwerk. Versuchen Sie es in 1.500 Sekunden erneut.',
    );
    // French groups thousands with a narrow no-break space.
    assert.equal(
      localeOf('fr').t('device.error.throttled', { seconds: 1500 }),
      'Trop de codes incorrects depuis ce réseau. Réessayez dans 1\u202f500 secondes.',
    );
  });

  test('recovery codes left: the plural and the digits of the language', () => {
    assert.equal(localeOf('en').t('mfa.used.remaining', { count: 1 }), 'You have 1 recovery code left.');
    assert.equal(
      localeOf('de').t('mfa.used.remaining', { count: 1500 }),
      'Sie haben noch 1.500 Wiederherstellungscodes.',
    );
    assert.equal(localeOf('fr').t('mfa.used.remaining', { count: 1 }), 'Il vous reste 1 code de secours.');
    assert.equal(
      localeOf('fr').t('mfa.used.remaining', { count: 1500 }),
      'Il vous reste 1\u202f500 codes de secours.',
    );
  });

  test('every refusal a sign-in step shows has words in every language', () => {
    // The codes the second-factor and passkey steps render; a new one must be translated.
    for (const code of [
      'mfa.code_malformed',
      'mfa.code_invalid',
      'mfa.code_replayed',
      'mfa.recovery_code_used',
      'mfa.enrolment_foreign',
      'mfa.step_expired',
      'auth.throttled',
      'passkey.not_found',
      'passkey.name_invalid',
      'passkey.already_registered',
      'passkey.challenge_missing',
      'passkey.origin_mismatch',
      'passkey.unknown_credential',
      'passkey.verification_failed',
      'passkey.counter_regressed',
      'passkey.flags_inconsistent',
    ]) {
      for (const tag of SUPPORTED_LOCALES) {
        assert.ok(localeOf(tag).has(`error.code.${code}`), `${tag} error.code.${code}`);
      }
      const error = { code, message: 'English own words', details: {} };
      assert.equal(stepErrorText(localeOf('en'), error), 'English own words');
      assert.notEqual(stepErrorText(localeOf('de'), error), localeOf('de').t('error.generic'));
    }
  });

  test("the passkey page lists passkeys with dates in the reader's language", () => {
    const render = (tag: 'en' | 'de' | 'fr') =>
      enrolPasskeyPage({
        locale: localeOf(tag),
        brand: { name: 'Acme' },
        csrf: 'c',
        action: '/a',
        options: '/o',
        script: '/s.js',
        removeAction: '/r',
        doneAction: '/d',
        totpAction: '/t',
        passkeys: [
          {
            id: 'k1',
            name: 'Laptop',
            createdAt: '2026-03-05T14:30:00Z',
            lastUsedAt: '2026-04-01T08:00:00Z',
            backupEligible: false,
          },
        ],
      });
    assert.match(
      render('en'),
      /Laptop<\/strong> · this device only · added Mar 5, 2026 · last used Apr 1, 2026/,
    );
    assert.match(
      render('de'),
      /Laptop<\/strong> · nur dieses Gerät · hinzugefügt am 05\.03\.2026 · zuletzt verwendet am 01\.04\.2026/,
    );
    const fr = render('fr');
    assert.match(fr, /<html lang="fr">/);
    assert.match(fr, /cet appareil uniquement · ajoutée le 5 mars 2026/);
    assert.match(fr, /data-msg-registered="Cet authentificateur contient déjà une clé d’accès/);
    assert.match(fr, />Supprimer Laptop<\/button>/);
  });

  test('dates and numbers are formatted per locale', () => {
    const when = new Date('2026-03-05T14:30:00Z');
    const utc = { dateStyle: 'long', timeStyle: 'short', timeZone: 'UTC' } as const;
    assert.equal(localeOf('en').date(when, utc), 'March 5, 2026 at 2:30 PM');
    assert.equal(localeOf('de').date(when, utc), '5. März 2026 um 14:30');
    assert.equal(localeOf('fr').date(when, utc), '5 mars 2026 à 14:30');
    assert.equal(localeOf('en').number(1234.5), '1,234.5');
    assert.equal(localeOf('de').number(1234.5), '1.234,5');
    assert.equal(localeOf('fr').number(1234.5), '1\u202f234,5');
  });
});

describe('choosing the language', () => {
  test('ui_locales comes first, in its own order, skipping languages without a catalogue', () => {
    assert.equal(negotiateLocale({ uiLocales: 'fr', acceptLanguage: 'de' }), 'fr');
    assert.equal(negotiateLocale({ uiLocales: 'ja fr-CA de', acceptLanguage: 'de' }), 'fr');
    assert.equal(negotiateLocale({ uiLocales: 'ja es', acceptLanguage: 'de' }), 'de');
    assert.equal(negotiateLocale({ uiLocales: 'not a tag!', acceptLanguage: 'de' }), 'de');
  });

  test('Accept-Language is read by q-value, not by position', () => {
    assert.equal(negotiateLocale({ acceptLanguage: 'fr;q=0.3, de;q=0.8, en;q=0.5' }), 'de');
    assert.equal(negotiateLocale({ acceptLanguage: 'en;q=0.1, fr-CH;q=0.9' }), 'fr');
    assert.equal(negotiateLocale({ acceptLanguage: 'de-AT' }), 'de');
    // q=0 means "not this one".
    assert.equal(negotiateLocale({ acceptLanguage: 'de;q=0, fr;q=0.1', tenantDefault: 'de' }), 'fr');
  });

  test('nothing supported asked for: the tenant default, then English', () => {
    assert.equal(negotiateLocale({ acceptLanguage: 'ja, es;q=0.5', tenantDefault: 'de' }), 'de');
    assert.equal(negotiateLocale({ acceptLanguage: '*', tenantDefault: 'fr' }), 'fr');
    assert.equal(negotiateLocale({ acceptLanguage: 'ja' }), 'en');
    assert.equal(negotiateLocale({ tenantDefault: 'xx' }), 'en');
    assert.equal(negotiateLocale({}), 'en');
  });

  test('a tag is matched by its language', () => {
    assert.equal(supportedLocale('DE-ch'), 'de');
    assert.equal(supportedLocale('fr-Latn-FR'), 'fr');
    assert.equal(supportedLocale('frr'), undefined);
    assert.equal(supportedLocale(''), undefined);
  });
});
