// A tenant's MFA policy, kept in its settings under "mfa": off, optional (offered at sign-in,
// skippable) or required, for every user or only for members of given organisations or holders
// of given roles. Reading it never fails: a tenant without the key has MFA off.
import { OrthIdError } from '../core/errors.js';

export type MfaMode = 'off' | 'optional' | 'required';

export interface MfaPolicy {
  mode: MfaMode;
  /** With `required`: organisation ids whose members must use a second factor (empty: everyone). */
  organisations: string[];
  /** With `required`: role ids whose holders must use a second factor (empty: everyone). */
  roles: string[];
}

export const MFA_MODES: readonly MfaMode[] = ['off', 'optional', 'required'];

/** What a user's sign-in must do: `required` walks them through enrolment if they have no factor. */
export type MfaRequirement = 'off' | 'optional' | 'required';

const strings = (value: unknown): string[] =>
  Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];

/** The policy stored in a tenant's settings. */
export function mfaPolicyOf(tenant: { settings?: Record<string, unknown> }): MfaPolicy {
  const raw = (tenant.settings?.mfa ?? {}) as Record<string, unknown>;
  const mode = MFA_MODES.includes(raw.mode as MfaMode) ? (raw.mode as MfaMode) : 'off';
  return { mode, organisations: strings(raw.organisations), roles: strings(raw.roles) };
}

/** Whether the policy requires every user of the tenant to use a second factor. */
export function requiredForEveryone(policy: MfaPolicy): boolean {
  return policy.mode === 'required' && policy.organisations.length === 0 && policy.roles.length === 0;
}

export function checkedMode(mode: string): MfaMode {
  if (!MFA_MODES.includes(mode as MfaMode)) {
    throw new OrthIdError(
      'mfa.policy_invalid',
      `--mfa must be one of ${MFA_MODES.join(', ')} (not "${mode}").`,
      {
        details: { field: 'mfa' },
      },
    );
  }
  return mode as MfaMode;
}
