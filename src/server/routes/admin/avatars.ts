// Admin API: a user's avatar (set from raw image bytes, read, delete), through the avatars
// service of src/identity. Its own scope, so only these routes accept image bodies.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Avatars } from '../../../identity/avatars.js';
import { IMAGE_BODY_TYPES, imageBodyOf, registerImageBody, sendAvatar } from '../../plugins/media.js';
import { type AdminApi, inTenant, type TenantScope } from './context.js';
import { NoContent, Params, PROBLEMS, Uuid } from './schemas.js';
import { adminValidatorCompiler } from './validation.js';

const tags = ['users'];
const ImageBody = Type.Unsafe<Buffer>({ type: 'string', format: 'binary', description: 'The image bytes.' });
const ById = Params({ userId: Uuid });

export const AvatarInfo = Type.Object({
  contentType: Type.String(),
  size: Type.Integer(),
  width: Type.Integer(),
  height: Type.Integer(),
  sha256: Type.String({ description: 'SHA-256 of the stored image; also its ETag.' }),
  source: Type.Union(
    ['jpeg', 'png', 'webp', 'gif', 'avif'].map((f) => Type.Literal(f)),
    {
      description: 'The format the upload was detected as (from its bytes).',
    },
  ),
});

/** The image response, documented in OpenAPI (the route sends the bytes as they are). */
export const AVATAR_RESPONSES = {
  200: {
    description:
      'The avatar as WebP, with Cache-Control: private, an ETag (its SHA-256) and X-Content-Type-Options: nosniff.',
    content: { 'image/webp': { schema: { type: 'string', format: 'binary' } } },
  },
  304: { description: 'If-None-Match named the current ETag.', type: 'null' },
} as const;

export const AVATAR_UPLOAD_NOTE =
  'Send the image bytes as the body (Content-Type image/* or application/octet-stream, at most 5 MiB, at most 8192 px a side and 25 megapixels, judged from the header before decoding). JPEG, PNG, WebP, GIF (first frame) and AVIF are accepted, detected from the bytes; anything else is refused with media.unsupported_type. Each caller may upload 10 images per 10 minutes (then 429 media.rate_limited with Retry-After); when too many images wait to be decoded, 503 media.busy with Retry-After. The image is re-encoded as WebP within 512x512 px, which drops EXIF, GPS and other metadata.';

export async function registerAvatarRoutes(
  api: AdminApi,
  deps: TenantScope,
  avatars: Avatars,
): Promise<void> {
  await api.register(async (media) => {
    registerImageBody(media);
    // The body schema below only documents the upload: its bytes are judged by avatars.prepare.
    media.setValidatorCompiler((route) =>
      route.httpPart === 'body' ? () => true : adminValidatorCompiler(route),
    );
    const scope = media.withTypeProvider<TypeBoxTypeProvider>();

    scope.put(
      '/users/:userId/avatar',
      {
        schema: {
          tags,
          summary: "Set a user's avatar",
          description: AVATAR_UPLOAD_NOTE,
          consumes: IMAGE_BODY_TYPES,
          params: ById,
          body: ImageBody,
          response: { 200: AvatarInfo, ...PROBLEMS },
        },
      },
      async (request) => {
        const body = imageBodyOf(request);
        // Counted (and committed) per admin actor before any decoding.
        await inTenant(deps, request, (tx, { tenant, actor }) => avatars.countUpload(tx, tenant.id, actor));
        const prepared = await avatars.prepare(body);
        return inTenant(deps, request, (tx, { tenant, actor }) =>
          avatars.set(tx, tenant.id, request.params.userId, prepared, actor),
        );
      },
    );

    scope.get(
      '/users/:userId/avatar',
      {
        schema: {
          tags,
          summary: "Read a user's avatar",
          params: ById,
          response: { ...AVATAR_RESPONSES, ...PROBLEMS },
        },
      },
      async (request, reply) => {
        const avatar = await inTenant(deps, request, (tx, { tenant }) =>
          avatars.get(tx, tenant.id, request.params.userId),
        );
        return sendAvatar(request, reply, avatar);
      },
    );

    scope.delete(
      '/users/:userId/avatar',
      {
        schema: {
          tags,
          summary: "Delete a user's avatar",
          params: ById,
          response: { 204: NoContent, ...PROBLEMS },
        },
      },
      async (request, reply) => {
        await inTenant(deps, request, (tx, { tenant, actor }) =>
          avatars.delete(tx, tenant.id, request.params.userId, actor),
        );
        return reply.code(204).send(null);
      },
    );
  });
}
