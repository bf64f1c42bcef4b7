// A tenant's brand assets on its own origin: the stylesheet that carries its colour (so pages
// keep one CSP for every tenant and no tenant value is inlined) and its logo. Both are public:
// the sign-in page shows them to anyone.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isOrthIdError, OrthIdError } from '../../core/errors.js';
import type { BrandLogos } from '../../tenancy/branding.js';
import type { Tenant } from '../../tenancy/tenants.js';
import { brandCss, brandOf } from '../../web/brand.js';

/** The URLs carry a content hash (`?v=`), so a changed brand is a new URL; this bounds the rest. */
const MAX_AGE_SECONDS = 300;

export async function brandingRoutes(
  app: FastifyInstance,
  opts: { tenant(slug: string): Promise<Tenant>; logos: Pick<BrandLogos, 'read'> },
): Promise<void> {
  const common = {
    'cache-control': `public, max-age=${MAX_AGE_SECONDS}`,
    'x-content-type-options': 'nosniff',
  };

  function fresh(request: FastifyRequest, reply: FastifyReply, etag: string): boolean {
    void reply.header('etag', etag);
    const presented = request.headers['if-none-match'];
    return presented?.split(/\s*,\s*/).some((tag) => tag.replace(/^W\//, '') === etag) ?? false;
  }

  app.get<{ Params: { tenant: string } }>('/t/:tenant/branding.css', async (request, reply) => {
    const brand = brandOf(await opts.tenant(request.params.tenant));
    const css = brand.colour ? brandCss(brand.colour) : '';
    void reply.headers({ ...common, 'content-type': 'text/css; charset=utf-8' });
    if (fresh(request, reply, `"${brand.stylesheet?.split('?v=')[1] ?? 'none'}"`))
      return reply.code(304).send();
    return reply.send(css);
  });

  app.get<{ Params: { tenant: string } }>('/t/:tenant/branding/logo', async (request, reply) => {
    const tenant = await opts.tenant(request.params.tenant);
    const logo = await opts.logos.read(tenant.id);
    if (!logo) throw new OrthIdError('media.not_found', 'This tenant has no logo.');
    // Inert whatever a browser thinks: only ever an image, never a document that runs anything.
    void reply.headers({
      ...common,
      'last-modified': logo.updatedAt.toUTCString(),
      'content-security-policy': "default-src 'none'; sandbox",
      'cross-origin-resource-policy': 'same-origin',
    });
    if (fresh(request, reply, `"${logo.sha256}"`)) return reply.code(304).send();
    return reply.type(logo.contentType).send(logo.bytes);
  });

  app.setErrorHandler((error, _request, reply) => {
    if (isOrthIdError(error) && (error.code === 'tenant.not_found' || error.code === 'media.not_found')) {
      return reply
        .code(404)
        .type('text/plain; charset=utf-8')
        .header('x-content-type-options', 'nosniff')
        .send('Not found\n');
    }
    throw error;
  });
}
