// Answers every request as the configured public URL's server: behind https, browsers are told
// to come back only over https (HSTS). URLs themselves are built from ORTHID_PUBLIC_URL, never
// from Host or X-Forwarded-* (see oidc/public-origin.ts for the provider's side).
import type { FastifyInstance } from 'fastify';

/** One year, the value browsers' preload lists ask for; subdomains are not OrthID's to pin. */
export const HSTS = 'max-age=31536000';

export function registerPublicOrigin(app: FastifyInstance, publicUrl: string): void {
  if (new URL(publicUrl).protocol !== 'https:') return;
  app.addHook('onRequest', async (_request, reply) => {
    // On the raw response: the OIDC routes hand it to the provider, past Fastify's reply headers.
    reply.raw.setHeader('strict-transport-security', HSTS);
  });
}
