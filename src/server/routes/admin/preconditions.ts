// Conditional requests (RFC 9110 §13) for resources several operators edit: a change must name
// the version it was made against in If-Match, and a stale one is refused instead of applied.
import { Type } from '@sinclair/typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { OrthIdError } from '../../../core/errors.js';

/** Documents the If-Match header on a route's schema. */
export const IfMatchHeader = Type.Object({
  'if-match': Type.Optional(
    Type.String({
      maxLength: 1000,
      description:
        'The ETag of the version this change was made against (from GET). Required: 428 request.precondition_required without it, 412 request.precondition_failed when the resource changed since.',
    }),
  ),
});

/** The entity tags If-Match lists (`*` kept as is); weak tags never match a strong comparison. */
function listed(header: string): string[] {
  return header
    .split(',')
    .map((tag) => tag.trim())
    .filter((tag) => tag.length > 0);
}

/**
 * Refuses the request unless its If-Match names `current`: 428 without the header, 412 when the
 * resource changed since the caller read it (the error names the current version, so a client
 * can fetch it, show the difference and try again).
 */
export function requireIfMatch(request: FastifyRequest, current: string, what: string): void {
  const header = request.headers['if-match'];
  if (header === undefined || header.trim() === '') {
    throw new OrthIdError(
      'request.precondition_required',
      `Send the ETag of the ${what} you are changing as If-Match (GET it first), so a concurrent change is not overwritten.`,
    );
  }
  const tags = listed(header);
  if (tags.includes('*') || tags.includes(current)) return;
  throw new OrthIdError(
    'request.precondition_failed',
    `The ${what} was changed since you read it; GET it again, review the change, and retry with its new ETag.`,
    { details: { etag: current } },
  );
}

/** Sets the ETag header of a response to the resource's version. */
export function sendVersion(reply: FastifyReply, version: string): void {
  void reply.header('etag', version);
}
