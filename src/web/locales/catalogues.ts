// The hosted pages' and mails' message catalogues, one file per area and language
// (`<area>.<locale>.json`), merged here into one catalogue per language. English is the
// reference: its keys are the type, and a test keeps every translation complete.
import coreDe from './core.de.json' with { type: 'json' };
import coreEn from './core.en.json' with { type: 'json' };
import coreFr from './core.fr.json' with { type: 'json' };
import mailDe from './mail.de.json' with { type: 'json' };
import mailEn from './mail.en.json' with { type: 'json' };
import mailFr from './mail.fr.json' with { type: 'json' };
import resetDe from './reset.de.json' with { type: 'json' };
import resetEn from './reset.en.json' with { type: 'json' };
import resetFr from './reset.fr.json' with { type: 'json' };

export const en = { ...coreEn, ...mailEn, ...resetEn };
export const de: Record<string, string> = { ...coreDe, ...mailDe, ...resetDe };
export const fr: Record<string, string> = { ...coreFr, ...mailFr, ...resetFr };
