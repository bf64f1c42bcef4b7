// The Fastify application: plugins in layers (errors, then routes), built from a wired OrthId.
// Listening and shutdown belong to the `start` command.
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { OrthId } from '../ops/orthid.js';
import { withTenant } from '../storage/db/database.js';
import { deferredSchemaController } from './lazy-schemas.js';
import { registerProblemDetails } from './plugins/problem-details.js';
import { registerPublicOrigin } from './plugins/public-origin.js';
import { requestLogSerializers } from './plugins/request-log.js';
import { accountRoutes } from './routes/account.js';
import { registerAdminApi } from './routes/admin/index.js';
import { registerHealthRoutes } from './routes/health.js';
import { interactionRoutes } from './routes/interactions.js';
import { registerMetricsRoute } from './routes/metrics.js';
import { oidcRoutes } from './routes/oidc.js';

export async function buildServer(orthid: OrthId): Promise<FastifyInstance> {
  const app = Fastify({
    // Fastify's default request serializer would log the full URL (tokens, hints) and address.
    loggerInstance: orthid.log.child(
      {},
      { serializers: requestLogSerializers(orthid.config.logClientAddress) },
    ) as FastifyBaseLogger,
    trustProxy: orthid.config.trustProxy,
    bodyLimit: 1024 * 1024,
    schemaController: deferredSchemaController(),
  });
  registerProblemDetails(app);
  registerPublicOrigin(app, orthid.config.publicUrl);
  registerHealthRoutes(app, orthid);
  await registerMetricsRoute(app, orthid);
  await registerAdminApi(app, orthid);
  await app.register(oidcRoutes, { providers: orthid.oidc });
  await app.register(accountRoutes, { orthid });
  await app.register(interactionRoutes, {
    providers: orthid.oidc,
    signIn: (input) => orthid.signInWithPassword(input),
    passkeys: orthid.passkeys,
    mfa: {
      mfa: orthid.mfa,
      db: orthid.db,
      accountName: (tenantId, userId) =>
        withTenant(orthid.db, tenantId, async (tx) => (await orthid.users.get(tx, tenantId, userId)).email),
    },
  });
  await app.ready();
  return app;
}
