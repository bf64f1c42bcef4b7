// Profile media: a user's avatar. Only JPEG, PNG, WebP, GIF and AVIF bytes are accepted (sniffed,
// never trusted from a name or header), re-encoded to WebP, and kept in the object store under the tenant's id.
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Metadata } from 'sharp';
import { appendAudit } from '../audit/audit-log.js';
import type { Clock } from '../core/clock.js';
import { isOrthIdError, OrthIdError } from '../core/errors.js';
import { isUuid } from '../core/ids.js';
import { createSemaphore } from '../core/semaphore.js';
import type { Queryable } from '../core/sql.js';
import type { TenantKeys } from '../crypto/tenant-keys.js';
import type { ObjectStore } from '../storage/objects/object-store.js';
import { tenantMediaPrefix } from '../tenancy/tenants.js';
import { createUploadLimitQueries } from './upload-limit.queries.js';
import { createUsersQueries } from './users.queries.js';

/** Largest upload accepted (5 MiB); the HTTP layer refuses longer bodies before reading them whole. */
export const AVATAR_MAX_BYTES = 5 * 1024 * 1024;
/** Largest input side: a small file can still declare a huge canvas (a decompression bomb). */
export const AVATAR_MAX_INPUT_SIDE = 8192;
/**
 * Largest input canvas, 25 megapixels (a 6000×4000 camera photo fits): decoding holds the whole
 * canvas in memory, 75-100 MiB at this size, so a 272 KiB PNG declaring 8192×8192 is refused.
 */
export const AVATAR_MAX_INPUT_PIXELS = 25_000_000;
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

type Sharp = typeof import('sharp')['default'];
let loaded: Promise<Sharp> | undefined;

/**
 * Loads sharp on the first upload (libvips costs start-up time most processes never need) with
 * its operation cache off: the cache would keep recently decoded canvases alive after a burst
 * of uploads, and an avatar is never decoded twice.
 */
function loadSharp(): Promise<Sharp> {
  loaded ??= import('sharp').then(({ default: sharp }) => {
    sharp.cache(false);
    return sharp;
  });
  return loaded as Promise<Sharp>;
}

function unreadable(source: AvatarSourceFormat, cause: unknown): OrthIdError {
  return new OrthIdError(
    'media.unreadable',
    `The ${source.toUpperCase()} image cannot be decoded; it may be damaged.`,
    {
      cause,
    },
  );
}

/** What an upload's header says, read before any pixel is decoded. */
export interface AvatarHeader {
  source: AvatarSourceFormat;
  width: number;
  height: number;
}

/**
 * Checks an upload from its bytes and its image header only (sharp's metadata() decodes no
 * pixels): at most 5 MiB, a format we accept, at most 8192 px a side and 25 megapixels.
 * `media.too_large` refuses a decompression bomb here, before it can cost any memory.
 */
export async function readAvatarHeader(input: Uint8Array): Promise<AvatarHeader> {
  if (input.length > AVATAR_MAX_BYTES) {
    throw new OrthIdError(
      'media.too_large',
      `The image is ${input.length} bytes; upload at most ${AVATAR_MAX_BYTES} bytes (5 MiB).`,
    );
  }
  const source = sniffImageFormat(input);
  if (!source) throw unsupported();
  const sharp = await loadSharp();
  let metadata: Metadata;
  try {
    metadata = await sharp(input, { pages: 1, failOn: 'error', limitInputPixels: false }).metadata();
  } catch (cause) {
    throw unreadable(source, cause);
  }
  if (metadata.format !== DECODED_AS[source] || (source === 'avif' && metadata.compression !== 'av1')) {
    throw unsupported();
  }
  const width = metadata.width ?? 0;
  const height = metadata.height ?? 0;
  if (
    width > AVATAR_MAX_INPUT_SIDE ||
    height > AVATAR_MAX_INPUT_SIDE ||
    width * height > AVATAR_MAX_INPUT_PIXELS
  ) {
    throw new OrthIdError(
      'media.too_large',
      `The image is ${width}×${height} pixels; upload one of at most ${AVATAR_MAX_INPUT_PIXELS / 1_000_000} megapixels and ${AVATAR_MAX_INPUT_SIDE} pixels on each side.`,
    );
  }
  return { source, width, height };
}

/** Decodes and re-encodes an upload whose header passed readAvatarHeader. */
async function decodeAvatar(input: Uint8Array, header: AvatarHeader): Promise<PreparedAvatar> {
  const sharp = await loadSharp();
  try {
    // The pixel limit again, now enforced by the decoder itself: the header is the file's word,
    // and a decoder that finds more pixels than declared stops instead of allocating them.
    const { data, info } = await sharp(input, {
      limitInputPixels: AVATAR_MAX_INPUT_PIXELS,
      pages: 1,
      failOn: 'error',
    })
      .autoOrient()
      .resize(AVATAR_SIDE, AVATAR_SIDE, { fit: 'inside', withoutEnlargement: true })
      .webp({ quality: 85 })
      .toBuffer({ resolveWithObject: true });
    return {
      bytes: data,
      sha256: createHash('sha256').update(data).digest('hex'),
      width: info.width,
      height: info.height,
      source: header.source,
    };
  } catch (cause) {
    throw unreadable(header.source, cause);
  }
}

/**
 * Checks and re-encodes an upload: at most 5 MiB, 8192 px a side and 25 megapixels (judged from
 * the header, before decoding), oriented by its EXIF tag, scaled to fit 512 px (never
 * enlarged), first frame only, written as WebP. Re-encoding is what strips the metadata: sharp
 * copies none of it unless asked to. Servers go through createAvatars().prepare, which also
 * bounds how many decodes run at once.
 *
 * @example
 * const prepared = await prepareAvatar(await readFile('me.jpg')); // throws media.unsupported_type for a PDF
 */
export async function prepareAvatar(input: Uint8Array): Promise<PreparedAvatar> {
  return decodeAvatar(input, await readAvatarHeader(input));
}

/** A PNG copy of a prepared image, for readers that do not show WebP (many mail clients). */
export interface PngRendition {
  bytes: Buffer;
  sha256: string;
  width: number;
  height: number;
}

/**
 * Renders a prepared image (the WebP bytes `prepare` made: at most 512 px a side, so decoding it
 * costs little and needs no decode slot) as a PNG fitted in `box`, never enlarged. A palette
 * keeps a logo's flat colours exact at a fraction of a full-colour PNG's size.
 */
export async function renderPng(
  prepared: Pick<PreparedAvatar, 'bytes'>,
  box: { width: number; height: number },
): Promise<PngRendition> {
  const sharp = await loadSharp();
  try {
    const { data, info } = await sharp(prepared.bytes, {
      limitInputPixels: AVATAR_SIDE * AVATAR_SIDE,
      failOn: 'error',
    })
      .resize(box.width, box.height, { fit: 'inside', withoutEnlargement: true })
      .png({ palette: true, compressionLevel: 9 })
      .toBuffer({ resolveWithObject: true });
    return {
      bytes: data,
      sha256: createHash('sha256').update(data).digest('hex'),
      width: info.width,
      height: info.height,
    };
  } catch (cause) {
    throw unreadable('webp', cause);
  }
}

/** Every object that belongs to one user's profile media. Keyed by ids, which never change or repeat. */
export function userMediaPrefix(tenantId: string, userId: string): string {
  return `${tenantMediaPrefix(tenantId)}users/${userId}/`;
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

/** How much decoding work uploads may cause; every field has a default. */
export interface AvatarLimits {
  /** Decodes running at once in this process (default 2: each may hold up to ~100 MiB). */
  concurrentDecodes?: number;
  /** Uploads waiting for a decode slot; one more is refused with media.busy (default 8). */
  queuedDecodes?: number;
  /** Uploads one actor (a user, or an admin client) may make per window (default 10). */
  uploadsPerWindow?: number;
  /** The window, in seconds (default 600). */
  uploadWindowSeconds?: number;
  /** Called inside each decode slot before decoding: lets a test hold decodes to observe the bound. */
  beforeDecode?: () => Promise<void>;
}

export const DEFAULT_AVATAR_LIMITS = Object.freeze({
  concurrentDecodes: 2,
  queuedDecodes: 8,
  uploadsPerWindow: 10,
  uploadWindowSeconds: 600,
});

/** The upload counter of one actor (shared by every replica, in PostgreSQL). */
export function uploadLimitKey(actor: string): string {
  return `upload:${actor}`;
}

function userNotFound(id: string): OrthIdError {
  return new OrthIdError('user.not_found', `No user ${id} in this tenant.`);
}

function noAvatar(): OrthIdError {
  return new OrthIdError('media.not_found', 'This user has no avatar.');
}

export function createAvatars(deps: AvatarsDeps, limits: AvatarLimits = {}) {
  const d = DEFAULT_AVATAR_LIMITS;
  const policy = {
    concurrentDecodes: limits.concurrentDecodes ?? d.concurrentDecodes,
    queuedDecodes: limits.queuedDecodes ?? d.queuedDecodes,
    uploadsPerWindow: limits.uploadsPerWindow ?? d.uploadsPerWindow,
    uploadWindowSeconds: limits.uploadWindowSeconds ?? d.uploadWindowSeconds,
  };
  // One per service, and the service is built once per process: the bound is per process.
  const decodes = createSemaphore(policy.concurrentDecodes, policy.queuedDecodes);

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
     * Counts an upload by `actor` against its window, in the caller's tenant transaction (commit
     * it before decoding: a refused or broken upload still counts). Over the limit it throws
     * `media.rate_limited` with `details.retryAfterSeconds`; that refusal counts nothing more.
     */
    async countUpload(tx: Queryable, tenantId: string, actor: string): Promise<void> {
      const now = deps.clock.now();
      const windowMs = policy.uploadWindowSeconds * 1000;
      const window = await createUploadLimitQueries(tx).count(
        tenantId,
        uploadLimitKey(actor),
        now,
        new Date(now.getTime() - windowMs),
      );
      if (window.count > policy.uploadsPerWindow) {
        const retryAfterSeconds = Math.max(
          1,
          Math.ceil((window.started_at.getTime() + windowMs - now.getTime()) / 1000),
        );
        throw new OrthIdError(
          'media.rate_limited',
          `At most ${policy.uploadsPerWindow} uploads per ${policy.uploadWindowSeconds} seconds; wait ${retryAfterSeconds} seconds before uploading again.`,
          { details: { retryAfterSeconds } },
        );
      }
    },

    /**
     * prepareAvatar, with the header checked first (a bomb never waits for a slot) and at most
     * `concurrentDecodes` decodes at a time. Uploads queue for a slot; past `queuedDecodes`
     * waiting, `media.busy` with `details.retryAfterSeconds` (a queue without end would only
     * hold more 5 MiB bodies in memory while every caller times out).
     */
    async prepare(input: Uint8Array): Promise<PreparedAvatar> {
      const header = await readAvatarHeader(input);
      const ran = await decodes.run(async () => {
        await limits.beforeDecode?.();
        return decodeAvatar(input, header);
      });
      if (!ran) {
        throw new OrthIdError(
          'media.busy',
          'The server is busy processing other images; try again in a few seconds.',
          {
            details: { retryAfterSeconds: 5 },
          },
        );
      }
      return ran.value;
    },

    /** How many decodes are running and waiting (the bound is observable, e.g. in tests). */
    decodeState: () => decodes.state(),

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
