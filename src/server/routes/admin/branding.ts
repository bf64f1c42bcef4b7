// Admin API: the tenant's logo (set from raw image bytes, removed), through src/ops/brand-logo.ts.
// Its own scope, so only these routes (and the avatars') accept image bodies.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import {
  type BrandLogoServices,
  LOGO_MAX_BYTES,
  LogoOutput,
  removeTenantLogo,
  setTenantLogo,
} from '../../../ops/brand-logo.js';
import { adminContextOf } from '../../plugins/admin-auth.js';
import { IMAGE_BODY_TYPES, imageBodyOf, registerImageBody } from '../../plugins/media.js';
import type { AdminApi } from './context.js';
import { NoContent, Params, PROBLEMS } from './schemas.js';
import { adminValidatorCompiler } from './validation.js';

const tags = ['tenant'];
const ImageBody = Type.Unsafe<Buffer>({ type: 'string', format: 'binary', description: 'The image bytes.' });

export async function registerBrandingRoutes(api: AdminApi, services: BrandLogoServices): Promise<void> {
  await api.register(async (media) => {
    registerImageBody(media);
    // The body schema only documents the upload: its bytes are judged by setTenantLogo.
    media.setValidatorCompiler((route) =>
      route.httpPart === 'body' ? () => true : adminValidatorCompiler(route),
    );
    const scope = media.withTypeProvider<TypeBoxTypeProvider>();

    scope.put(
      '/branding/logo',
      {
        schema: {
          tags,
          summary: "Set the tenant's logo",
          description: `Send a PNG, JPEG or WebP image as the body (at most ${LOGO_MAX_BYTES} bytes, detected from its bytes; anything else is refused with media.unsupported_type, and nothing changes). It is re-encoded as WebP within 512x512 px, without metadata, and served at /t/<tenant>/branding/logo.`,
          consumes: IMAGE_BODY_TYPES,
          params: Params({}),
          body: ImageBody,
          response: { 200: LogoOutput, ...PROBLEMS },
        },
      },
      async (request) => {
        const { tenant, actor } = adminContextOf(request);
        return setTenantLogo(services, tenant, imageBodyOf(request), actor);
      },
    );

    scope.delete(
      '/branding/logo',
      {
        schema: {
          tags,
          summary: "Remove the tenant's logo",
          params: Params({}),
          response: { 204: NoContent, ...PROBLEMS },
        },
      },
      async (request, reply) => {
        const { tenant, actor } = adminContextOf(request);
        await removeTenantLogo(services, tenant, actor);
        return reply.code(204).send(null);
      },
    );
  });
}
