// Sends an operation to a running embedded server over its control socket and returns the
// result, re-raising the server's typed error as the same OrthIdError.
import { request } from 'node:http';
import { ERROR_CODES, type ErrorCode, OrthIdError } from '../core/errors.js';

export function callControlSocket(
  socketPath: string,
  operation: string,
  args: Record<string, unknown>,
): Promise<unknown> {
  const body = JSON.stringify(args);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath,
        method: 'POST',
        path: `/ops/${encodeURIComponent(operation)}`,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          try {
            const payload = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
              result?: unknown;
              error?: { code: string; message: string; details?: Record<string, unknown> };
            };
            if (payload.error) {
              const code = (
                payload.error.code in ERROR_CODES ? payload.error.code : 'internal.unexpected'
              ) as ErrorCode;
              reject(new OrthIdError(code, payload.error.message, { details: payload.error.details }));
            } else {
              resolve(payload.result);
            }
          } catch (cause) {
            reject(
              new OrthIdError('control.unavailable', 'The running OrthID answered unreadably.', { cause }),
            );
          }
        });
      },
    );
    req.on('error', (cause) =>
      reject(
        new OrthIdError(
          'control.unavailable',
          `The running OrthID did not answer on ${socketPath}. If no OrthID is running, remove the stale lock file and retry.`,
          { cause },
        ),
      ),
    );
    req.end(body);
  });
}
