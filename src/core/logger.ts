// The one logger (pino). Secrets are redacted by field name wherever they appear, so a
// credential never reaches a log line by accident.
import { type Logger, pino } from 'pino';

export type { Logger };

/** Field names whose values are never logged, at any depth pino can address. */
export const REDACTED_FIELDS = [
  'password',
  'passwordHash',
  'secret',
  'clientSecret',
  'client_secret',
  'token',
  'accessToken',
  'refreshToken',
  'access_token',
  'refresh_token',
  'id_token',
  'id_token_hint',
  'login_hint',
  'client_assertion',
  'code_verifier',
  'email',
  'masterKey',
  'pin',
  'identity',
  'authorization',
  'cookie',
  'set-cookie',
];

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  const paths = REDACTED_FIELDS.flatMap((f) => [f, `*.${f}`, `*.*.${f}`, `req.headers.${f}`]);
  return pino(
    { level, redact: { paths, censor: '[redacted]' }, base: { service: 'orthid' } },
    destination as pino.DestinationStream | undefined,
  );
}
