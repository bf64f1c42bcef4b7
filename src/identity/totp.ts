// Time-based one-time passwords (RFC 6238) over the `otpauth` library: a new secret, the
// otpauth:// URI an authenticator app scans, and which time step a code belongs to. Replay state
// and throttling are the caller's (mfa.ts); nothing here stores anything.
import { Secret, TOTP } from 'otpauth';
import { OrthIdError } from '../core/errors.js';

/** RFC 6238's defaults, which every authenticator app understands. */
export const TOTP_PERIOD_SECONDS = 30;
export const TOTP_DIGITS = 6;
const ALGORITHM = 'SHA1';
/** Steps of clock drift accepted either side of now. */
export const TOTP_DRIFT_STEPS = 1;

/** A new TOTP secret: 160 random bits (RFC 4226 §4 recommends that length), as base32. */
export function newTotpSecret(): string {
  return new Secret({ size: 20 }).base32;
}

/** The URI an authenticator app scans: issuer and account name label the entry it creates. */
export function totpUri(secretBase32: string, issuer: string, account: string): string {
  return new TOTP({
    issuer,
    label: account,
    secret: Secret.fromBase32(secretBase32),
    algorithm: ALGORITHM,
    digits: TOTP_DIGITS,
    period: TOTP_PERIOD_SECONDS,
  }).toString();
}

/** The time step `at` falls in. */
export function totpStep(at: Date): number {
  return TOTP.counter({ period: TOTP_PERIOD_SECONDS, timestamp: at.getTime() });
}

/** The code for the step `at` falls in (tests, the canary check, the benchmark). */
export function totpCode(secretBase32: string, at: Date): string {
  return TOTP.generate({
    secret: Secret.fromBase32(secretBase32),
    algorithm: ALGORITHM,
    digits: TOTP_DIGITS,
    period: TOTP_PERIOD_SECONDS,
    timestamp: at.getTime(),
  });
}

/** A code as typed: digits, spaces and dashes allowed (apps show "123 456"). */
export function normaliseTotpCode(input: string): string {
  const code = input.replace(/[\s-]/g, '');
  if (!new RegExp(`^\\d{${TOTP_DIGITS}}$`).test(code)) {
    throw new OrthIdError(
      'mfa.code_malformed',
      `Enter the ${TOTP_DIGITS}-digit code your authenticator app shows now.`,
      { details: { field: 'code' } },
    );
  }
  return code;
}

/**
 * The time step a well-formed code matches within the drift window around `at`, or null when it
 * matches none (wrong, or expired beyond the drift).
 */
export function matchTotpStep(secretBase32: string, code: string, at: Date): number | null {
  const delta = TOTP.validate({
    token: code,
    secret: Secret.fromBase32(secretBase32),
    algorithm: ALGORITHM,
    digits: TOTP_DIGITS,
    period: TOTP_PERIOD_SECONDS,
    timestamp: at.getTime(),
    window: TOTP_DRIFT_STEPS,
  });
  return delta === null ? null : totpStep(at) + delta;
}
