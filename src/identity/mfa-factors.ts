// The kinds of second factor and what each adds to a sign-in: the RFC 8176 `amr` values and the
// `acr` a completed sign-in earns. Another kind (a passkey) is added here, in the user_factors_kind
// constraint, and as a step of the hosted sign-in (src/server/routes/mfa-steps.ts).

/** A kind of factor stored in user_factors. */
export type FactorKind = 'totp' | 'passkey';

export const FACTOR_KINDS: readonly FactorKind[] = ['totp', 'passkey'];

/** How a second factor was proved at sign-in; a recovery code stands in for a lost factor. */
export type SecondFactorMethod = FactorKind | 'recovery_code';

/** RFC 8176 values each method contributes besides `mfa`. */
const METHOD_AMR: Record<SecondFactorMethod, string[]> = {
  totp: ['otp'],
  // A device-bound key and its presence test; a synced passkey says swk instead (methodAmr).
  passkey: ['hwk', 'user'],
  // A look-up secret (NIST SP 800-63B §5.1.2) has no RFC 8176 value of its own.
  recovery_code: [],
};

/** The authentication context class of a password alone (NIST SP 800-63B AAL1). */
export const ACR_PASSWORD = 'urn:orthid:acr:aal1';
/** Of a password and a second factor (AAL2). A client demands it with acr_values. */
export const ACR_MFA = 'urn:orthid:acr:aal2';
export const ACR_VALUES = [ACR_PASSWORD, ACR_MFA] as const;

export interface AuthenticationContext {
  amr: string[];
  acr: string;
}

/** What a sign-in with a password and, optionally, one second factor carries into tokens. */
export function authenticationContext(
  secondFactor?: SecondFactorMethod,
  methodAmr?: string[],
): AuthenticationContext {
  if (!secondFactor) return { amr: ['pwd'], acr: ACR_PASSWORD };
  return { amr: ['pwd', ...(methodAmr ?? METHOD_AMR[secondFactor]), 'mfa'], acr: ACR_MFA };
}

/** Whether an authorization request's acr_values can only be met by a second factor. */
export function demandsMfa(acrValues: string | undefined): boolean {
  const values = (acrValues ?? '').split(' ').filter(Boolean);
  return values.length > 0 && values.every((v) => v === ACR_MFA);
}
