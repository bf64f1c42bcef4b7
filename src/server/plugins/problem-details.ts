// Renders every error as application/problem+json (RFC 9457) with OrthID's stable code, so API
// callers branch on `code`. Unexpected errors are logged in full and shown to no one; a database
// environment problem (a grant, a role, the server) is logged at error level with its code.
import type { FastifyError, FastifyInstance } from 'fastify';
import { OrthIdError } from '../../core/errors.js';
import { explainError } from '../../storage/db/database-errors.js';
import { DB_RETRY_AFTER_SECONDS } from '../../storage/db/pg-errors.js';

export interface Problem {
  type: string;
  title: string;
  status: number;
  code: string;
  detail: string;
  instance?: string;
  errors?: unknown;
}

export function problemFrom(error: OrthIdError, instance?: string): Problem {
  return {
    type: `https://orthid.dev/problems/${error.code}`,
    title: error.code,
    status: error.httpStatus,
    code: error.code,
    detail: error.message,
    ...(instance ? { instance } : {}),
    ...(error.details ? { errors: error.details } : {}),
  };
}

/** Maps Fastify's own errors (validation, body size, unknown route) into the OrthID family. */
function fromFastify(error: FastifyError): OrthIdError {
  if (error.validation) {
    return new OrthIdError('request.invalid', `The request is invalid: ${error.message}.`, {
      details: {
        fields: error.validation.map((v) => ({
          path: v.instancePath || (v.params as { missingProperty?: string }).missingProperty || '',
          message: v.message,
        })),
      },
    });
  }
  if (error.statusCode && error.statusCode >= 400 && error.statusCode < 500) {
    return new OrthIdError('request.invalid', error.message);
  }
  return explainError(error);
}

export function registerProblemDetails(app: FastifyInstance): void {
  // Every 503 is a condition that passes (the database is back, the keystore unsealed): say
  // when to try again, also on the pages and routes that render their own errors.
  app.addHook('onSend', async (_request, reply, payload) => {
    if (reply.statusCode === 503 && !reply.hasHeader('retry-after')) {
      void reply.header('retry-after', String(DB_RETRY_AFTER_SECONDS));
    }
    return payload;
  });
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const e = error instanceof OrthIdError ? error : fromFastify(error);
    if (e.kind === 'internal') request.log.error({ err: error }, 'request failed');
    // An outage (every request while PostgreSQL restarts) is a warning; a missing grant, an error.
    else if (e.code === 'db.unavailable') request.log.warn({ code: e.code }, e.message);
    else if (e.code.startsWith('db.')) request.log.error({ code: e.code }, e.message);
    void reply.status(e.httpStatus).type('application/problem+json').send(problemFrom(e, request.url));
  });
  app.setNotFoundHandler((request, reply) => {
    const e = new OrthIdError('request.not_found', `Nothing is served at ${request.method} ${request.url}.`);
    void reply.status(404).type('application/problem+json').send(problemFrom(e, request.url));
  });
}
