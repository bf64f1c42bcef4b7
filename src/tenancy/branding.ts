// A tenant's branding: its display name, primary colour (refused unless white text on it, and it
// on white, reach the WCAG 2.x contrast ratio of 4.5:1), support contact and logo (re-encoded
// bytes in the object store, with a PNG rendition for mail). The checked values live in the
// tenant's settings.
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { appendAudit } from '../audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import { isOrthIdError, OrthIdError } from '../core/errors.js';
import type { Queryable } from '../core/sql.js';
import type { TenantKeys } from '../crypto/tenant-keys.js';
import type { ObjectStore } from '../storage/objects/object-store.js';
import { tenantMediaPrefix } from './tenants.js';
import { createTenantsQueries } from './tenants.queries.js';

/** The settings keys branding is kept under (read by src/web/brand.ts). */
export const BRAND_SETTINGS = {
  colour: 'brandColour',
  contact: 'supportContact',
  logo: 'brandLogo',
} as const;

/** WCAG 2.x, success criterion 1.4.3: normal text needs 4.5:1. */
export const MIN_CONTRAST_RATIO = 4.5;
const WHITE = '#ffffff';
const NAME_MAX = 100;
const CONTACT_MAX = 254;

function rgbOf(hex: string): [number, number, number] {
  const n = Number.parseInt(hex.slice(1), 16);
  return [(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
}

/** WCAG 2.x relative luminance of an sRGB colour given as #rrggbb. */
export function relativeLuminance(hex: string): number {
  const [r, g, b] = rgbOf(hex).map((c) => {
    const s = c / 255;
    return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  }) as [number, number, number];
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

/** (L1 + 0.05) / (L2 + 0.05), the lighter over the darker: 1 to 21. */
export function contrastRatio(a: string, b: string): number {
  const [x, y] = [relativeLuminance(a), relativeLuminance(b)].sort((p, q) => q - p) as [number, number];
  return (x + 0.05) / (y + 0.05);
}

/**
 * `#rgb` or `#rrggbb` (any case) as lowercase `#rrggbb`. The colour is the buttons' background
 * under white text and the links' colour on white, so both must be readable: one ratio decides.
 */
export function checkBrandColour(value: string): string {
  const v = value.trim();
  const match = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(v);
  if (!match) {
    throw new OrthIdError(
      'brand.colour_invalid',
      'The brand colour must be a hex colour such as #1f4fd1 (or #14d), or "default" for OrthID\'s own.',
      { details: { field: 'brandColour' } },
    );
  }
  const digits = match[1]!.toLowerCase();
  const hex = `#${digits.length === 3 ? [...digits].map((d) => d + d).join('') : digits}`;
  const ratio = contrastRatio(hex, WHITE);
  if (ratio < MIN_CONTRAST_RATIO) {
    throw new OrthIdError(
      'brand.contrast_insufficient',
      `White text on ${hex} has a contrast ratio of ${ratio.toFixed(2)}:1; WCAG asks for at least ${MIN_CONTRAST_RATIO}:1. Choose a darker colour.`,
      {
        details: { field: 'brandColour', ratio: Math.round(ratio * 100) / 100, minimum: MIN_CONTRAST_RATIO },
      },
    );
  }
  return hex;
}

/** An e-mail address (shown as a mailto: link) or an https:// URL, as given. */
export function checkSupportContact(value: string): string {
  const v = value.trim();
  const refused = () =>
    new OrthIdError(
      'brand.contact_invalid',
      'The support contact must be an e-mail address or an https:// URL, or "none" to remove it.',
      { details: { field: 'supportContact' } },
    );
  if (v.length > CONTACT_MAX || /[\s<>"'\\]/.test(v)) throw refused();
  if (/^[^@:/]+@[^@:/]+\.[^@:/]+$/.test(v)) return v;
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    throw refused();
  }
  if (url.protocol !== 'https:' || url.username || url.password || !url.hostname) throw refused();
  return url.href;
}

export function checkDisplayName(value: string): string {
  const v = value.trim();
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (v.length === 0 || v.length > NAME_MAX || /[\u0000-\u001f\u007f]/.test(v)) {
    throw new OrthIdError(
      'brand.name_invalid',
      `The display name must be 1 to ${NAME_MAX} characters without control characters.`,
      { details: { field: 'displayName' } },
    );
  }
  return v;
}

export interface BrandingChange {
  displayName?: string;
  /** A hex colour, or "default" to remove the tenant's own. */
  brandColour?: string;
  /** An e-mail address or https URL, or "none" to remove it. */
  supportContact?: string;
}

/**
 * The checked settings a change makes (null removes one) and the new display name; throws a
 * `brand.*` code before anything is written.
 */
export function brandingChange(change: BrandingChange): {
  settings: Record<string, string | null>;
  displayName?: string;
} {
  const settings: Record<string, string | null> = {};
  if (change.brandColour !== undefined) {
    settings[BRAND_SETTINGS.colour] =
      change.brandColour.trim().toLowerCase() === 'default' ? null : checkBrandColour(change.brandColour);
  }
  if (change.supportContact !== undefined) {
    settings[BRAND_SETTINGS.contact] =
      change.supportContact.trim().toLowerCase() === 'none'
        ? null
        : checkSupportContact(change.supportContact);
  }
  return {
    settings,
    ...(change.displayName === undefined ? {} : { displayName: checkDisplayName(change.displayName) }),
  };
}

/** What the audit keeps of a settings change: a support address is recorded as set, not spelled out. */
export function auditedSettings(settings: Record<string, unknown>): Record<string, unknown> {
  const contact = settings[BRAND_SETTINGS.contact];
  if (contact === undefined) return settings;
  return { ...settings, [BRAND_SETTINGS.contact]: contact === null ? null : 'set' };
}

/** What the tenant's settings record of its logo: enough to build its URL and <img> size. */
export interface BrandLogoRecord {
  sha256: string;
  width: number;
  height: number;
}

/**
 * The logo's PNG rendition for mail, as the settings record it (`brandLogo.mail`): mail clients
 * do not all show WebP, and a mail carries its logo inline, so it is small and made once, at upload.
 */
export interface MailLogoRecord {
  sha256: string;
  width: number;
  height: number;
}

/** What the tenant's settings keep under `brandLogo`: absent `mail` for a logo stored before renditions. */
export interface StoredLogoRecord extends BrandLogoRecord {
  mail?: MailLogoRecord;
}

/** A re-encoded logo, ready to store, with its PNG rendition for mail. */
export interface PreparedLogo extends BrandLogoRecord {
  bytes: Buffer;
  contentType: string;
  mail: MailLogoRecord & { bytes: Buffer };
}

export interface StoredLogo {
  bytes: Buffer;
  contentType: string;
  sha256: string;
  updatedAt: Date;
}

export const LOGO_CONTENT_TYPE = 'image/webp';
export const MAIL_LOGO_CONTENT_TYPE = 'image/png';
/**
 * The mail rendition fits this box: twice the 192×64 CSS pixels a mail draws it at
 * (src/web/mails/compose.ts), so it stays sharp on high-density screens.
 */
export const MAIL_LOGO_BOX = Object.freeze({ width: 384, height: 128 });

/** One fixed key per tenant, under its media prefix: replacing a logo is one put. */
export function logoKey(tenantId: string): string {
  return `${tenantMediaPrefix(tenantId)}branding/logo.webp`;
}

/** The mail rendition's key, beside the logo. */
export function mailLogoKey(tenantId: string): string {
  return `${tenantMediaPrefix(tenantId)}branding/logo-mail.png`;
}

export interface BrandLogoDeps {
  objects: ObjectStore;
  tenantKeys: TenantKeys;
  clock: Clock;
}

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function readObject(
  objects: ObjectStore,
  key: string,
): Promise<{ bytes: Buffer; updatedAt: Date } | undefined> {
  let opened: Awaited<ReturnType<ObjectStore['get']>>;
  try {
    opened = await objects.get(key);
  } catch (error) {
    if (isOrthIdError(error, 'objects.not_found')) return undefined;
    throw error;
  }
  return { bytes: await readAll(opened.body), updatedAt: opened.info.lastModified };
}

export function createBrandLogos(deps: BrandLogoDeps) {
  async function audit(
    tx: Queryable,
    tenantId: string,
    actor: string,
    action: string,
    details?: Record<string, unknown>,
  ) {
    await appendAudit(
      tx,
      await deps.tenantKeys.forTenant(tx, tenantId),
      { actor, action, target: `tenant:${tenantId}`, outcome: 'success', details },
      deps.clock,
    );
  }

  return {
    /**
     * Stores a re-encoded logo and records it in the settings, in the caller's tenant
     * transaction: the audit event and the settings come first, so a failed put rolls them back.
     */
    async set(tx: Queryable, tenantId: string, logo: PreparedLogo, actor: string): Promise<BrandLogoRecord> {
      const record: BrandLogoRecord = { sha256: logo.sha256, width: logo.width, height: logo.height };
      const mail: MailLogoRecord = {
        sha256: logo.mail.sha256,
        width: logo.mail.width,
        height: logo.mail.height,
      };
      await audit(tx, tenantId, actor, 'tenant.logo_set', { ...record });
      await createTenantsQueries(tx).mergeSettings(tenantId, {
        [BRAND_SETTINGS.logo]: { ...record, mail } satisfies StoredLogoRecord,
      });
      // Should the second put fail, the transaction rolls back: the settings still name the
      // previous logo, whose rendition is replaced already, so mail finds its hash changed and
      // goes without a logo (the pages keep the old one) until the upload is tried again.
      await deps.objects.put(mailLogoKey(tenantId), logo.mail.bytes, {
        contentType: MAIL_LOGO_CONTENT_TYPE,
        sha256: mail.sha256,
      });
      await deps.objects.put(logoKey(tenantId), logo.bytes, {
        contentType: logo.contentType,
        sha256: logo.sha256,
      });
      return record;
    },

    /** Removes the logo (`media.not_found` when there is none). */
    async remove(tx: Queryable, tenantId: string, actor: string): Promise<void> {
      const key = logoKey(tenantId);
      if (!(await deps.objects.head(key))) {
        throw new OrthIdError('media.not_found', 'This tenant has no logo.');
      }
      await audit(tx, tenantId, actor, 'tenant.logo_removed');
      await createTenantsQueries(tx).mergeSettings(tenantId, { [BRAND_SETTINGS.logo]: null });
      await deps.objects.delete(key);
      // A logo stored before renditions has none; removing a missing key succeeds.
      await deps.objects.delete(mailLogoKey(tenantId));
    },

    /** The stored logo, or undefined. Public: a logo is shown to every visitor of the sign-in page. */
    async read(tenantId: string): Promise<StoredLogo | undefined> {
      const stored = await readObject(deps.objects, logoKey(tenantId));
      if (!stored) return undefined;
      return {
        ...stored,
        contentType: LOGO_CONTENT_TYPE,
        sha256: createHash('sha256').update(stored.bytes).digest('hex'),
      };
    },

    /** The mail rendition, or undefined (no logo, or one stored before renditions). */
    async readMail(tenantId: string): Promise<StoredLogo | undefined> {
      const stored = await readObject(deps.objects, mailLogoKey(tenantId));
      if (!stored) return undefined;
      return {
        ...stored,
        contentType: MAIL_LOGO_CONTENT_TYPE,
        sha256: createHash('sha256').update(stored.bytes).digest('hex'),
      };
    },
  };
}

export type BrandLogos = ReturnType<typeof createBrandLogos>;
