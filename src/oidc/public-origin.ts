// Makes a tenant's provider build every URL from its configured issuer and see the client address
// the server resolved, so neither Host, X-Forwarded-Host nor X-Forwarded-Proto moves an endpoint.
import type { IncomingMessage } from 'node:http';
import type Provider from 'oidc-provider';

/** Where the HTTP layer leaves the client address it resolved (ORTHID_TRUST_PROXY applied). */
export const CLIENT_ADDRESS = Symbol.for('orthid.clientAddress');

export type RequestWithClientAddress = IncomingMessage & { [CLIENT_ADDRESS]?: string };

/**
 * Pins the provider to `issuer`. oidc-provider builds discovery, redirects (the interaction's
 * returnTo, post-logout), cookie paths and DPoP/JWT audiences with `ctx.oidc.urlFor`, which
 * resolves against the request's Host; here it resolves against the issuer instead, keeping the
 * issuer's path (a public URL under a path prefix works too). Koa's own notion of the request's
 * protocol and host is pinned as well, so `ctx.secure` (Secure cookies) follows the public URL's
 * scheme rather than a header.
 */
export function pinPublicOrigin(provider: Provider, issuer: string): void {
  const url = new URL(issuer);
  const mountPath = url.pathname.replace(/\/+$/, '');
  const protocol = url.protocol.slice(0, -1);
  provider.OIDCContext.prototype.urlFor = function urlFor(name: string, options?: Record<string, unknown>) {
    return new URL(provider.pathFor(name, { mountPath, ...options }), url.origin).href;
  };
  // Koa believes X-Forwarded-* from anyone once `proxy` is on; the server already decided
  // which proxies to believe, so the provider never reads those headers itself.
  provider.proxy = false;
  provider.use(async (ctx, next) => {
    Object.defineProperties(ctx.request, {
      protocol: { value: protocol },
      host: { value: url.host },
      hostname: { value: url.hostname },
    });
    const address = (ctx.req as RequestWithClientAddress)[CLIENT_ADDRESS];
    if (address !== undefined) ctx.request.ip = address;
    await next();
  });
}
