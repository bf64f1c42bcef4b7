// The hosted pages' and mails' message catalogues, one file per area and language
// (`<area>.<locale>.json`), merged here into one catalogue per language. English is the
// reference: its keys are the type, and a test keeps every translation complete.
import accountDe from './account.de.json' with { type: 'json' };
import accountEn from './account.en.json' with { type: 'json' };
import accountFr from './account.fr.json' with { type: 'json' };
import brandDe from './brand.de.json' with { type: 'json' };
import brandEn from './brand.en.json' with { type: 'json' };
import brandFr from './brand.fr.json' with { type: 'json' };
import coreDe from './core.de.json' with { type: 'json' };
import coreEn from './core.en.json' with { type: 'json' };
import coreFr from './core.fr.json' with { type: 'json' };
import mailDe from './mail.de.json' with { type: 'json' };
import mailEn from './mail.en.json' with { type: 'json' };
import mailFr from './mail.fr.json' with { type: 'json' };
import mfaDe from './mfa.de.json' with { type: 'json' };
import mfaEn from './mfa.en.json' with { type: 'json' };
import mfaFr from './mfa.fr.json' with { type: 'json' };
import resetDe from './reset.de.json' with { type: 'json' };
import resetEn from './reset.en.json' with { type: 'json' };
import resetFr from './reset.fr.json' with { type: 'json' };
import signupDe from './signup.de.json' with { type: 'json' };
import signupEn from './signup.en.json' with { type: 'json' };
import signupFr from './signup.fr.json' with { type: 'json' };

export const en = { ...coreEn, ...mailEn, ...resetEn, ...signupEn, ...mfaEn, ...brandEn, ...accountEn };
export const de: Record<string, string> = {
  ...coreDe,
  ...mailDe,
  ...resetDe,
  ...signupDe,
  ...mfaDe,
  ...brandDe,
  ...accountDe,
};
export const fr: Record<string, string> = {
  ...coreFr,
  ...mailFr,
  ...resetFr,
  ...signupFr,
  ...mfaFr,
  ...brandFr,
  ...accountFr,
};
