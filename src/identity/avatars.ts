// Profile media: a user's avatar. Only JPEG, PNG, WebP, GIF and AVIF bytes are accepted (sniffed,
// never trusted from a name or header), re-encoded to WebP, and kept in the object store under the tenant's id.
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Metadata } from 'sharp';
import { appendAudit } from '../audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import { isOrthIdError, OrthIdError } from '../core/errors.js';
import { isUuid } from '../core/ids.js';
import type { Queryable } from '../core/sql.js';
import type { TenantKeys } from '../crypto/tenant-keys.js';
import type { ObjectStore } from '../storage/objects/object-store.js';
import { createUsersQueries } from './users.queries.js';

/** Largest upload accepted (5 MiB); the HTTP layer refuses longer bodies before reading them whole. */
export const AVATAR_MAX_BYTES = 5 * 1024 * 1024;
/** Largest input side: a small file can still declare a huge canvas (a decompression bomb). */
export const AVATAR_MAX_INPUT_SIDE = 8192;
/** Stored avatars fit in this square; nobody needs more for a profile picture. */
export const AVATAR_SIDE = 512;
export const AVATAR_CONTENT_TYPE = 'image/webp';

export type AvatarSourceFormat = 'jpeg' | 'png' | 'webp' | 'gif' | 'avif';

/** What an upload became: re-encoded bytes that carry no EXIF, GPS, XMP or ICC metadata. */
export interface PreparedAvatar {
  bytes: Buffer;
  sha256: string;
  width: number;
  height: number;
  source: AvatarSourceFormat;
}

export interface AvatarInfo {
  contentType: string;
  size: number;
  width: number;
  height: number;
  /** SHA-256 of the stored bytes (the ETag). */
  sha256: string;
  source: AvatarSourceFormat;
}

export interface StoredAvatar {
  bytes: Buffer;
  contentType: string;
  sha256: string;
  updatedAt: Date;
}

const startsWith = (bytes: Uint8Array, at: number, ascii: string) =>
  bytes.length >= at + ascii.length &&
  Buffer.from(bytes.subarray(at, at + ascii.length)).toString('latin1') === ascii;

/**
 * The image format the bytes announce, from their magic numbers; undefined for anything else
 * (a PDF, an SVG, HTML, HEIC). Decoders are only ever handed bytes this function recognised,
 * so a file cannot pick a decoder (e.g. SVG, with its external references) by lying about its name.
 */
export function sniffImageFormat(bytes: Uint8Array): AvatarSourceFormat | undefined {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (startsWith(bytes, 0, '\x89PNG\r\n\x1a\n')) return 'png';
  if (startsWith(bytes, 0, 'GIF87a') || startsWith(bytes, 0, 'GIF89a')) return 'gif';
  if (startsWith(bytes, 0, 'RIFF') && startsWith(bytes, 8, 'WEBP')) return 'webp';
  if (startsWith(bytes, 4, 'ftyp')) {
    // ISO BMFF: the major brand, then compatible brands up to the end of the ftyp box.
    const boxSize = Buffer.from(bytes.subarray(0, 4)).readUInt32BE(0);
    const end = Math.min(bytes.length, boxSize);
    for (let at = 8; at + 4 <= end; at += 4) {
      if (at === 12) continue; // minor version, not a brand
      if (startsWith(bytes, at, 'avif') || startsWith(bytes, at, 'avis')) return 'avif';
    }
  }
  return undefined;
}

function unsupported(): OrthIdError {
  return new OrthIdError(
    'media.unsupported_type',
    'The upload is not a JPEG, PNG, WebP, GIF or AVIF image (judged by its bytes, not its name or content type). Export the picture in one of those formats and try again.',
  );
}

/** Decoder name sharp reports for each accepted format (AVIF is read by the HEIF loader, as AV1). */
const DECODED_AS: Record<AvatarSourceFormat, string> = {
  jpeg: 'jpeg',
  png: 'png',
  webp: 'webp',
  gif: 'gif',
  avif: 'heif',
};

/**
 * Checks and re-encodes an upload: at most 5 MiB and 8192 px a side, oriented by its EXIF tag,
 * scaled to fit 512 px (never enlarged), first frame only, written as WebP. Re-encoding is what
 * strips the metadata: sharp copies none of it unless asked to.
 *
 * @example
 * const prepared = await prepareAvatar(await readFile('me.jpg')); // throws media.unsupported_type for a PDF
 */
export async function prepareAvatar(input: Uint8Array): Promise<PreparedAvatar> {
  if (input.length > AVATAR_MAX_BYTES) {
    throw new OrthIdError(
      'media.too_large',
      `The image is ${input.length} bytes; upload at most ${AVATAR_MAX_BYTES} bytes (5 MiB).`,
    );
  }
  const source = sniffImageFormat(input);
  if (!source) throw unsupported();
  const options = {
    limitInputPixels: AVATAR_MAX_INPUT_SIDE * AVATAR_MAX_INPUT_SIDE,
    pages: 1,
    failOn: 'error',
  } as const;
  // Loaded on the first upload: libvips costs start-up time most processes never need.
  const { default: sharp } = await import('sharp');
  let metadata: Metadata;
  try {
    metadata = await sharp(input, options).metadata();
  } catch (cause) {
    throw new OrthIdError(
      'media.unreadable',
      `The ${source.toUpperCase()} image cannot be decoded; it may be damaged.`,
      {
        cause,
      },
    );
  }
  if (metadata.format !== DECODED_AS[source] || (source === 'avif' && metadata.compression !== 'av1')) {
    throw unsupported();
  }
  const width = metadata.width ?? 0;
  const height = metadata.height ?? 0;
  if (width > AVATAR_MAX_INPUT_SIDE || height > AVATAR_MAX_INPUT_SIDE) {
    throw new OrthIdError(
      'media.too_large',
      `The image is ${width}×${height} pixels; upload one at most ${AVATAR_MAX_INPUT_SIDE} pixels on each side.`,
    );
  }
  try {
    const { data, info } = await sharp(input, options)
      .autoOrient()
      .resize(AVATAR_SIDE, AVATAR_SIDE, { fit: 'inside', withoutEnlargement: true })
      .webp({ quality: 85 })
      .toBuffer({ resolveWithObject: true });
    return {
      bytes: data,
      sha256: createHash('sha256').update(data).digest('hex'),
      width: info.width,
      height: info.height,
      source,
    };
  } catch (cause) {
    throw new OrthIdError(
      'media.unreadable',
      `The ${source.toUpperCase()} image cannot be decoded; it may be damaged.`,
      {
        cause,
      },
    );
  }
}

/** Every object that belongs to one user's profile media. Keyed by ids, which never change or repeat. */
export function userMediaPrefix(tenantId: string, userId: string): string {
  return `media/${tenantId}/users/${userId}/`;
}

/**
 * One fixed key per user: replacing an avatar is one atomic put, and there is never an old
 * version to find or forget. Caches tell versions apart by the ETag (the content hash).
 */
export function avatarKey(tenantId: string, userId: string): string {
  return `${userMediaPrefix(tenantId, userId)}avatar.webp`;
}

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The stored avatar, or undefined. Does not check the user (the caller has, or is exporting them). */
export async function readAvatar(
  objects: ObjectStore,
  tenantId: string,
  userId: string,
): Promise<StoredAvatar | undefined> {
  if (!isUuid(userId)) return undefined;
  let opened: Awaited<ReturnType<ObjectStore['get']>>;
  try {
    opened = await objects.get(avatarKey(tenantId, userId));
  } catch (error) {
    if (isOrthIdError(error, 'objects.not_found')) return undefined;
    throw error;
  }
  // Avatars are small (at most 512 px WebP), and hashing them here gives an ETag even when the
  // store has lost its record of the checksum.
  const bytes = await readAll(opened.body);
  return {
    bytes,
    contentType: AVATAR_CONTENT_TYPE,
    sha256: createHash('sha256').update(bytes).digest('hex'),
    updatedAt: opened.info.lastModified,
  };
}

export interface AvatarsDeps {
  objects: ObjectStore;
  tenantKeys: TenantKeys;
  clock: Clock;
}

function userNotFound(id: string): OrthIdError {
  return new OrthIdError('user.not_found', `No user ${id} in this tenant.`);
}

function noAvatar(): OrthIdError {
  return new OrthIdError('media.not_found', 'This user has no avatar.');
}

export function createAvatars(deps: AvatarsDeps) {
  /**
   * Locks the user's row for the rest of the transaction: a deletion of the user waits until the
   * object write is done, and its clean-up afterwards then sees (and removes) the new object.
   */
  async function lockUser(tx: Queryable, userId: string): Promise<void> {
    if (!isUuid(userId) || !(await createUsersQueries(tx).byId(userId, true))) throw userNotFound(userId);
  }

  async function audit(
    tx: Queryable,
    tenantId: string,
    actor: string,
    action: string,
    userId: string,
    details?: Record<string, unknown>,
  ) {
    await appendAudit(
      tx,
      await deps.tenantKeys.forTenant(tx, tenantId),
      { actor, action, target: `user:${userId}`, outcome: 'success', details },
      deps.clock,
    );
  }

  return {
    /**
     * Stores a prepared avatar in a tenant-scoped transaction. The audit event is appended before
     * the put, so a failed put rolls the event back and a failed audit writes no object.
     */
    async set(
      tx: Queryable,
      tenantId: string,
      userId: string,
      avatar: PreparedAvatar,
      actor: string,
    ): Promise<AvatarInfo> {
      await lockUser(tx, userId);
      await audit(tx, tenantId, actor, 'user.avatar_set', userId, {
        sha256: avatar.sha256,
        width: avatar.width,
        height: avatar.height,
        source: avatar.source,
      });
      const info = await deps.objects.put(avatarKey(tenantId, userId), avatar.bytes, {
        contentType: AVATAR_CONTENT_TYPE,
        sha256: avatar.sha256,
      });
      return {
        contentType: AVATAR_CONTENT_TYPE,
        size: info.size,
        width: avatar.width,
        height: avatar.height,
        sha256: avatar.sha256,
        source: avatar.source,
      };
    },

    /** The user's avatar (`user.not_found`, or `media.not_found` when none is set). */
    async get(tx: Queryable, tenantId: string, userId: string): Promise<StoredAvatar> {
      if (!isUuid(userId) || !(await createUsersQueries(tx).byId(userId))) throw userNotFound(userId);
      const avatar = await readAvatar(deps.objects, tenantId, userId);
      if (!avatar) throw noAvatar();
      return avatar;
    },

    /** Removes the user's avatar (`media.not_found` when none is set). */
    async delete(tx: Queryable, tenantId: string, userId: string, actor: string): Promise<void> {
      await lockUser(tx, userId);
      const key = avatarKey(tenantId, userId);
      if (!(await deps.objects.head(key))) throw noAvatar();
      await audit(tx, tenantId, actor, 'user.avatar_deleted', userId);
      await deps.objects.delete(key);
    },

    /**
     * Deletes every media object of a user; call it after the user's deletion has committed (an
     * object store cannot join the database transaction). Safe to repeat. Returns how many went.
     */
    async purgeUser(tenantId: string, userId: string): Promise<number> {
      if (!isUuid(userId)) return 0;
      const prefix = userMediaPrefix(tenantId, userId);
      const keys: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await deps.objects.list(prefix, cursor === undefined ? {} : { cursor });
        keys.push(...page.items.map((item) => item.key));
        cursor = page.cursor;
      } while (cursor !== undefined);
      for (const key of keys) await deps.objects.delete(key);
      return keys.length;
    },
  };
}

export type Avatars = ReturnType<typeof createAvatars>;
