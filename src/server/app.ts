// The Fastify application: plugins in layers (errors, then routes), built from a wired OrthId.
// Listening and shutdown belong to the `start` command.
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { ComposeOrthId, OrthId } from '../ops/orthid.js';
import { withTenant } from '../storage/db/database.js';
import { createBrandLogos } from '../tenancy/branding.js';
import { createHttpDrain, type HttpDrain } from './http-drain.js';
import { deferredSchemaController } from './lazy-schemas.js';
import { registerProblemDetails } from './plugins/problem-details.js';
import { registerPublicOrigin } from './plugins/public-origin.js';
import { requestLogSerializers } from './plugins/request-log.js';
import { accountRoutes } from './routes/account.js';
import { accountPages } from './routes/account-pages.js';
import { registerAdminApi } from './routes/admin/index.js';
import { brandingRoutes } from './routes/branding.js';
import { consoleRoutes } from './routes/console.js';
import { registerHealthRoutes } from './routes/health.js';
import { interactionRoutes } from './routes/interactions.js';
import { registerMetricsRoute } from './routes/metrics.js';
import { oidcRoutes } from './routes/oidc.js';
import { passwordResetRoutes } from './routes/password-reset.js';

export interface BuildServerOptions {
  /** The shutdown state /readyz reports and every response follows (`orthid start` drives it). */
  drain?: HttpDrain;
  /** The wiring admin API drills compose their restored copy with (`orthid start` passes it). */
  compose?: ComposeOrthId;
}

export async function buildServer(
  orthid: OrthId,
  options: BuildServerOptions = {},
): Promise<FastifyInstance> {
  const drain = options.drain ?? createHttpDrain();
  const app = Fastify({
    // Fastify's default request serializer would log the full URL (tokens, hints) and address.
    loggerInstance: orthid.log.child(
      {},
      { serializers: requestLogSerializers(orthid.config.logClientAddress) },
    ) as FastifyBaseLogger,
    trustProxy: orthid.config.trustProxy,
    bodyLimit: 1024 * 1024,
    schemaController: deferredSchemaController(),
    // A request arriving on a kept-alive connection while draining is served, with
    // `Connection: close` (http-drain.ts), not refused with Fastify's bare 503.
    return503OnClosing: false,
    // Every body here is small (token requests, admin JSON, avatars of at most 5 MiB): a request
    // still arriving after 60 s, or headers after 15 s, is answered 408 and closed rather than
    // held open (Fastify's default is never). Node checks these every second, not every 30 s.
    requestTimeout: 60_000,
    http: { headersTimeout: 15_000, connectionsCheckingInterval: 1_000 },
  });
  drain.attach(app.server);
  registerProblemDetails(app);
  registerPublicOrigin(app, orthid.config.publicUrl);
  registerHealthRoutes(app, orthid, drain);
  await registerMetricsRoute(app, orthid);
  await registerAdminApi(app, orthid, options.compose ? { compose: options.compose } : {});
  await app.register(oidcRoutes, { providers: orthid.oidc });
  await app.register(consoleRoutes, {});
  await app.register(accountRoutes, {
    db: orthid.db,
    oidc: orthid.oidc,
    users: orthid.users,
    avatars: orthid.avatars,
  });
  await app.register(brandingRoutes, {
    tenant: (slug) => orthid.tenants.get(slug),
    logos: createBrandLogos(orthid),
  });
  await app.register(accountPages, orthid);
  await app.register(interactionRoutes, {
    providers: orthid.oidc,
    signIn: (input) => orthid.signInWithPassword(input),
    passkeys: orthid.passkeys,
    signUp: orthid.signUp,
    mfa: {
      mfa: orthid.mfa,
      db: orthid.db,
      accountName: (tenantId, userId) =>
        withTenant(orthid.db, tenantId, async (tx) => (await orthid.users.get(tx, tenantId, userId)).email),
      passwordSetAt: (tenantId, userId) =>
        withTenant(orthid.db, tenantId, (tx) => orthid.users.passwordSetAt(tx, userId)),
    },
  });
  await app.register(passwordResetRoutes, { providers: orthid.oidc, passwordReset: orthid.passwordReset });
  await app.ready();
  return app;
}
