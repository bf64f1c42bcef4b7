// A tenant's look on its hosted pages and mail: what the layout shows besides the page itself.
// Built from the tenant record alone (its shape, not its module: web depends on core only).
import { createHash } from 'node:crypto';

export interface Brand {
  /** The tenant's display name: the page title's suffix, the footer and the logo's alt text. */
  name: string;
  /** The primary colour, `#rrggbb`, checked for contrast with white when it was set. */
  colour?: string;
  /** Where people get help: a mailto: or https: link and its words. */
  support?: { href: string; label: string };
  /** The logo's same-origin URL (versioned by its content hash) and size. */
  logo?: { src: string; width: number; height: number };
  /**
   * The logo's PNG rendition a mail carries inline, named by its content hash, and its size in
   * pixels. Absent for a logo stored before renditions were made: its mail shows no logo.
   */
  mailLogo?: { sha256: string; width: number; height: number };
  /** The tenant's stylesheet (its colour), same-origin and versioned by its content. */
  stylesheet?: string;
}

/** The parts of a tenant record a brand is made of. */
export interface BrandSource {
  slug?: string;
  displayName: string;
  settings: Readonly<Record<string, unknown>>;
}

/** The default primary colour of the pages and mails. */
export const DEFAULT_COLOUR = '#3b5bdb';

const HEX = /^#[0-9a-f]{6}$/;

/** The colour's rules: buttons, links and focus rings. Static text around one checked value. */
export function brandCss(colour: string): string {
  return `button{background:${colour}}button.secondary{background:#e9ecf2}a{color:${colour}}input:focus{outline-color:${colour};border-color:${colour}}\n`;
}

function supportOf(contact: unknown): Brand['support'] {
  if (typeof contact !== 'string' || contact === '') return undefined;
  if (contact.startsWith('https://'))
    return { href: contact, label: contact.replace(/^https:\/\//, '').replace(/\/$/, '') };
  return { href: `mailto:${contact}`, label: contact };
}

function mailLogoOf(record: unknown): Brand['mailLogo'] {
  const r = record as { sha256?: unknown; width?: unknown; height?: unknown } | null | undefined;
  if (
    typeof r?.sha256 !== 'string' ||
    !/^[0-9a-f]{64}$/.test(r.sha256) ||
    !Number.isInteger(r.width) ||
    !Number.isInteger(r.height) ||
    (r.width as number) < 1 ||
    (r.height as number) < 1
  ) {
    return undefined;
  }
  return { sha256: r.sha256, width: r.width as number, height: r.height as number };
}

/**
 * `issuer`: the tenant's issuer URL, whose path the brand's own URLs go under (a public URL
 * with a path prefix keeps it); without it, `/t/<slug>`.
 */
export function brandOf(tenant: BrandSource, issuer?: string): Brand {
  const base = issuer
    ? new URL(issuer).pathname.replace(/\/+$/, '')
    : tenant.slug
      ? `/t/${tenant.slug}`
      : undefined;
  const colour =
    typeof tenant.settings.brandColour === 'string' && HEX.test(tenant.settings.brandColour)
      ? tenant.settings.brandColour
      : undefined;
  const logo = tenant.settings.brandLogo as
    | { sha256?: unknown; width?: unknown; height?: unknown; mail?: unknown }
    | null
    | undefined;
  const mailLogo = mailLogoOf(logo?.mail);
  const version = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 16);
  return {
    name: tenant.displayName,
    ...(colour ? { colour } : {}),
    ...(supportOf(tenant.settings.supportContact)
      ? { support: supportOf(tenant.settings.supportContact) }
      : {}),
    ...(base &&
    logo &&
    typeof logo.sha256 === 'string' &&
    typeof logo.width === 'number' &&
    typeof logo.height === 'number'
      ? {
          logo: {
            src: `${base}/branding/logo?v=${logo.sha256.slice(0, 16)}`,
            width: logo.width,
            height: logo.height,
          },
        }
      : {}),
    ...(mailLogo ? { mailLogo } : {}),
    ...(base && colour ? { stylesheet: `${base}/branding.css?v=${version(brandCss(colour))}` } : {}),
  };
}
