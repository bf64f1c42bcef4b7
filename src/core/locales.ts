// The languages OrthID's hosted pages are translated into: the web layer's catalogues and the
// tenant setting that picks a default both name them from here. The first is the last resort.
export const SUPPORTED_LOCALES = ['en', 'de', 'fr'] as const;
export type SupportedLocale = (typeof SUPPORTED_LOCALES)[number];

export function isSupportedLocale(value: unknown): value is SupportedLocale {
  return SUPPORTED_LOCALES.includes(value as SupportedLocale);
}
