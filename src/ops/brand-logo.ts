// A tenant's logo: checked (PNG, JPEG or WebP, at most 512 KiB, judged by its bytes), re-encoded
// like an avatar (WebP within 512×512, no metadata) with a small PNG rendition for mail, stored,
// audited; and the CLI's operations.
import { Type } from '@sinclair/typebox';
import type { Clock } from '../core/clock.js';
import { OrthIdError } from '../core/errors.js';
import type { TenantKeys } from '../crypto/tenant-keys.js';
import { type Avatars, readAvatarHeader, renderPng } from '../identity/avatars.js';
import { announceTenantChange } from '../oidc/tenant-changes.js';
import { type Database, withTenant } from '../storage/db/database.js';
import type { ObjectStore } from '../storage/objects/object-store.js';
import {
  type BrandLogoRecord,
  createBrandLogos,
  LOGO_CONTENT_TYPE,
  MAIL_LOGO_BOX,
} from '../tenancy/branding.js';
import type { Tenant } from '../tenancy/tenants.js';
import { actorOf, defineOperation } from './operation.js';

/** Largest logo accepted: a logo is small, and the CLI's control socket takes at most 1 MiB. */
export const LOGO_MAX_BYTES = 512 * 1024;
const LOGO_SOURCES = ['png', 'jpeg', 'webp'];

export interface BrandLogoServices {
  db: Database;
  objects: ObjectStore;
  tenantKeys: TenantKeys;
  clock: Clock;
  avatars: Pick<Avatars, 'prepare' | 'countUpload'>;
}

export interface LogoInfo extends BrandLogoRecord {
  contentType: string;
  size: number;
}

/**
 * Checks, re-encodes and stores `bytes` as the tenant's logo; a refusal (`media.*`) changes
 * nothing. Each upload counts against `actor`'s upload window, as avatars do.
 */
export async function setTenantLogo(
  s: BrandLogoServices,
  tenant: Pick<Tenant, 'id'>,
  bytes: Uint8Array,
  actor: string,
): Promise<LogoInfo> {
  if (bytes.length > LOGO_MAX_BYTES) {
    throw new OrthIdError(
      'media.too_large',
      `The logo is ${bytes.length} bytes; upload at most ${LOGO_MAX_BYTES} bytes (512 KiB).`,
    );
  }
  const header = await readAvatarHeader(bytes);
  if (!LOGO_SOURCES.includes(header.source)) {
    throw new OrthIdError(
      'media.unsupported_type',
      'A logo must be a PNG, JPEG or WebP image (judged by its bytes). Export it in one of those formats and try again.',
    );
  }
  await withTenant(s.db, tenant.id, (tx) => s.avatars.countUpload(tx, tenant.id, actor));
  const prepared = await s.avatars.prepare(bytes);
  // Made once here, so no mail ever decodes an image.
  const mail = await renderPng(prepared, MAIL_LOGO_BOX);
  const logos = createBrandLogos(s);
  const record = await withTenant(s.db, tenant.id, async (tx) => {
    const stored = await logos.set(
      tx,
      tenant.id,
      { ...prepared, contentType: LOGO_CONTENT_TYPE, mail },
      actor,
    );
    await announceTenantChange(tx, tenant.id);
    return stored;
  });
  return { ...record, contentType: LOGO_CONTENT_TYPE, size: prepared.bytes.length };
}

/** Removes the tenant's logo (`media.not_found` when it has none). */
export async function removeTenantLogo(
  s: BrandLogoServices,
  tenant: Pick<Tenant, 'id'>,
  actor: string,
): Promise<void> {
  const logos = createBrandLogos(s);
  await withTenant(s.db, tenant.id, async (tx) => {
    await logos.remove(tx, tenant.id, actor);
    await announceTenantChange(tx, tenant.id);
  });
}

export const LogoOutput = Type.Object({
  contentType: Type.String(),
  size: Type.Integer(),
  width: Type.Integer(),
  height: Type.Integer(),
  sha256: Type.String(),
});

/** `orthid tenant logo set`: the CLI reads the file and sends its bytes as base64. */
export const tenantLogoSet = defineOperation({
  name: 'tenant.logo-set',
  input: Type.Object({
    tenant: Type.String({ minLength: 1 }),
    imageBase64: Type.String({ minLength: 1, errorMessage: '--file must name a non-empty image file.' }),
  }),
  output: LogoOutput,
  async run(app, input, context) {
    const tenant = await app.tenants.get(input.tenant);
    return setTenantLogo(app, tenant, Buffer.from(input.imageBase64, 'base64'), actorOf(context));
  },
});

export const tenantLogoRemove = defineOperation({
  name: 'tenant.logo-remove',
  input: Type.Object({ tenant: Type.String({ minLength: 1 }) }),
  output: Type.Object({ removed: Type.Literal(true) }),
  async run(app, input, context) {
    await removeTenantLogo(app, await app.tenants.get(input.tenant), actorOf(context));
    return { removed: true as const };
  },
});
