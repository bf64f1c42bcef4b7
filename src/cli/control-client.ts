// Sends an operation to a running embedded server over its control socket and returns the
// result, re-raising the server's problem details (src/server/plugins/problem-details.ts) as the
// same OrthIdError.
import { request } from 'node:http';
import { ERROR_CODES, type ErrorCode, OrthIdError } from '../core/errors.js';

interface Answer {
  result?: unknown;
  /** Problem details (RFC 9457) with OrthID's stable code. */
  code?: string;
  detail?: string;
  errors?: Record<string, unknown>;
}

export function callControlSocket(socketPath: string, operation: string, input: unknown): Promise<unknown> {
  const body = JSON.stringify(input);
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
            const answer = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Answer;
            if ((res.statusCode ?? 500) >= 400) {
              const code = (
                answer.code && answer.code in ERROR_CODES ? answer.code : 'internal.unexpected'
              ) as ErrorCode;
              reject(
                new OrthIdError(code, answer.detail ?? 'The running OrthID refused the operation.', {
                  details: answer.errors,
                }),
              );
            } else {
              resolve(answer.result);
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
          `The embedded database is held, but no OrthID server answered on ${socketPath}: another OrthID command may be using it, or the server is still starting. Retry once it has finished.`,
          { cause },
        ),
      ),
    );
    req.end(body);
  });
}
