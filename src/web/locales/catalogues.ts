// The hosted pages' message catalogues, one file per area and language (`<area>.<locale>.json`),
// merged here into one catalogue per language. English is the reference: its keys are the type.
import coreDe from './core.de.json' with { type: 'json' };
import coreEn from './core.en.json' with { type: 'json' };
import coreFr from './core.fr.json' with { type: 'json' };

export const en = { ...coreEn };
export const de: Record<string, string> = { ...coreDe };
export const fr: Record<string, string> = { ...coreFr };
