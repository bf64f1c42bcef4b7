// Profile media over HTTP: raw image request bodies (size-limited, typed by their bytes later,
// not by Content-Type) and avatar responses with the headers that keep them private and inert.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isOrthIdError, OrthIdError } from '../../core/errors.js';
import { AVATAR_MAX_BYTES, type StoredAvatar } from '../../identity/avatars.js';

/** Media types an image upload may be sent as; the bytes decide what it really is. */
export const IMAGE_BODY_TYPES = ['image/jpeg', 'image/png', 'image/webp', 'image/gif', 'image/avif'];

/** How long a browser may reuse an avatar without asking; it revalidates with the ETag after. */
const AVATAR_MAX_AGE_SECONDS = 300;

/**
 * Lets the routes of `scope` take a raw image body (any `image/*` or `application/octet-stream`,
 * up to 5 MiB) as a Buffer. Refusals keep the media codes: a body that is too long is
 * `media.too_large`, a body sent as another media type is `media.unsupported_type`; the upload
 * limits' refusals (`media.rate_limited`, `media.busy`) carry a Retry-After header.
 */
export function registerImageBody(scope: FastifyInstance): void {
  for (const type of [/^image\/[a-z0-9.+-]+$/i, 'application/octet-stream']) {
    scope.addContentTypeParser(
      type,
      { parseAs: 'buffer', bodyLimit: AVATAR_MAX_BYTES },
      (_request, body, done) => done(null, body),
    );
  }
  scope.setErrorHandler((error: FastifyError, _request, reply) => {
    // Thrown on to the application's problem+json handler, which keeps the headers set here.
    if (
      isOrthIdError(error) &&
      (error.code === 'media.rate_limited' || error.code === 'media.busy') &&
      typeof error.details?.retryAfterSeconds === 'number'
    ) {
      void reply.header('retry-after', String(error.details.retryAfterSeconds));
      throw error;
    }
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      throw new OrthIdError('media.too_large', `Upload at most ${AVATAR_MAX_BYTES} bytes (5 MiB).`);
    }
    if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      throw new OrthIdError(
        'media.unsupported_type',
        'Send the image bytes as the request body with Content-Type image/jpeg, image/png, image/webp, image/gif, image/avif or application/octet-stream.',
      );
    }
    throw error;
  });
}

/** The raw image body of a request that went through registerImageBody. */
export function imageBodyOf(request: FastifyRequest): Buffer {
  const body = request.body;
  if (!Buffer.isBuffer(body) || body.length === 0) {
    throw new OrthIdError(
      'media.unsupported_type',
      'Send the image bytes as the request body (Content-Type image/* or application/octet-stream), not JSON or a form.',
    );
  }
  return body;
}

/**
 * Sends an avatar only to a caller already allowed to see it: `private` so shared caches keep no
 * copy, the content hash as a strong ETag (a matching If-None-Match gets 304), and `nosniff` plus
 * a sandboxing CSP so a browser never treats the bytes as anything but an image.
 */
export function sendAvatar(request: FastifyRequest, reply: FastifyReply, avatar: StoredAvatar): FastifyReply {
  const etag = `"${avatar.sha256}"`;
  void reply.headers({
    'cache-control': `private, max-age=${AVATAR_MAX_AGE_SECONDS}`,
    etag,
    'last-modified': avatar.updatedAt.toUTCString(),
    vary: 'Authorization',
    'x-content-type-options': 'nosniff',
    'content-security-policy': "default-src 'none'; sandbox",
  });
  const presented = request.headers['if-none-match'];
  if (presented?.split(/\s*,\s*/).some((tag) => tag.replace(/^W\//, '') === etag || tag === '*')) {
    return reply.code(304).send();
  }
  return reply.code(200).type(avatar.contentType).send(avatar.bytes);
}
