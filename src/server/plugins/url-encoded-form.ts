// The hosted pages' plain HTML forms (application/x-www-form-urlencoded): one parser for every
// page that takes them, and the constant-time check of a form's CSRF token.
import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';

/** Parses url-encoded bodies of up to 16 KiB into an object, in the plugin that calls it. */
export function registerUrlEncodedForm(app: FastifyInstance): void {
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string', bodyLimit: 16 * 1024 },
    (_request, body, done) => done(null, Object.fromEntries(new URLSearchParams(body as string))),
  );
}

/** Whether a submitted token equals the expected one, in time that does not depend on where they differ. */
export function sameToken(submitted: string | undefined, expected: string): boolean {
  if (!submitted) return false;
  const x = Buffer.from(submitted);
  const y = Buffer.from(expected);
  return x.length === y.length && timingSafeEqual(x, y);
}
