// The Fastify application: plugins in layers (errors, then routes), built from a wired OrthId.
// Listening and shutdown belong to the `start` command.
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { OrthId } from '../main.js';
import { registerProblemDetails } from './plugins/problem-details.js';
import { registerHealthRoutes } from './routes/health.js';

export async function buildServer(orthid: OrthId): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: orthid.log as FastifyBaseLogger,
    trustProxy: true,
    bodyLimit: 1024 * 1024,
  });
  registerProblemDetails(app);
  registerHealthRoutes(app, orthid);
  await app.ready();
  return app;
}
