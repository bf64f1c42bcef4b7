// Mounts each tenant's oidc-provider under /t/:tenant. The provider reads its own request
// bodies, so this plugin registers no body parsers and hands the raw request over untouched.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { OidcProviders } from '../../oidc/providers.js';
import { CLIENT_ADDRESS, type RequestWithClientAddress } from '../../oidc/public-origin.js';

type RawWithOriginal = RequestWithClientAddress & { originalUrl?: string };

export async function oidcRoutes(app: FastifyInstance, opts: { providers: OidcProviders }): Promise<void> {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null));

  const forward = async (request: FastifyRequest<{ Params: { tenant: string } }>, reply: FastifyReply) => {
    const { handle } = await opts.providers.get(request.params.tenant);
    const raw = request.raw as RawWithOriginal;
    const prefix = `/t/${request.params.tenant}`;
    raw.originalUrl = raw.url;
    // Fastify applied ORTHID_TRUST_PROXY (addresses and CIDRs) to find this; the provider reuses it.
    raw[CLIENT_ADDRESS] = request.ip;
    raw.url = raw.url!.slice(prefix.length) || '/';
    reply.hijack();
    handle(raw, reply.raw);
  };

  app.all('/t/:tenant', forward);
  app.all('/t/:tenant/*', forward);
}
