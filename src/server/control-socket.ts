// The embedded server's control socket: a Unix socket in the data directory (mode 0600) on
// which the CLI asks the running process to run an operation, since only one process may open
// PGlite. It is a Fastify instance of its own, answering failures with the same problem details
// as the HTTP API, and never reachable over the network.
import { chmod, rm } from 'node:fs/promises';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type { Logger } from '../core/logger.js';
import { CONTROL_SOCKET_ACTOR, checkInput, checkOutput } from '../ops/operation.js';
import { operationNamed } from '../ops/operations.js';
import type { OrthId } from '../ops/orthid.js';
import { registerProblemDetails } from './plugins/problem-details.js';

/** Largest operation input accepted: inputs are flags and small reports, never data. */
const MAX_BODY = 1024 * 1024;

export async function startControlSocket(app: OrthId, path: string, log: Logger): Promise<FastifyInstance> {
  await rm(path, { force: true });
  const server = Fastify({
    loggerInstance: log.child({ component: 'control-socket' }) as FastifyBaseLogger,
    // One line per CLI call would be noise; failures are logged by the problem-details handler.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: MAX_BODY,
  });
  registerProblemDetails(server);
  server.post<{ Params: { name: string }; Body: unknown }>('/ops/:name', async (request) => {
    const operation = operationNamed(request.params.name);
    // Audited as coming through the socket, not as a CLI that opened the database itself.
    const result = await operation.run(app, checkInput(operation, request.body ?? {}), {
      actor: CONTROL_SOCKET_ACTOR,
    });
    return { result: checkOutput(operation, result, 'sent') };
  });
  await server.listen({ path });
  await chmod(path, 0o600);
  return server;
}
