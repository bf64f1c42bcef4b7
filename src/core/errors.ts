// The one error family of OrthID: every failure a user can see carries a stable code, a kind
// that maps once to an HTTP status and a CLI exit code, and a message that says what to do next.

/** How a failure is classified; the HTTP status and CLI exit code follow from it. */
export type ErrorKind =
  | 'invalid'
  | 'unauthenticated'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'unavailable'
  | 'rate_limited'
  | 'precondition_failed'
  | 'precondition_required'
  | 'internal';

/**
 * Every stable error code, with its kind. Callers and tests branch on `code`, never on messages.
 * Adding a code here is the only way to create a new one.
 */
export const ERROR_CODES = {
  'config.invalid': 'invalid',
  'request.invalid': 'invalid',
  'request.not_found': 'not_found',
  'server.shutting_down': 'unavailable',
  'auth.unauthenticated': 'unauthenticated',
  'auth.forbidden': 'forbidden',
  'db.unavailable': 'unavailable',
  'db.permission_denied': 'unavailable',
  'db.database_missing': 'unavailable',
  'db.authentication_failed': 'unavailable',
  'db.role_missing': 'unavailable',
  'db.app_role_unsafe': 'unavailable',
  'db.version_unsupported': 'unavailable',
  'db.migration_failed': 'internal',
  'db.migrations_pending': 'unavailable',
  'db.locked': 'conflict',
  'tenant.not_found': 'not_found',
  'tenant.slug_invalid': 'invalid',
  'tenant.slug_taken': 'conflict',
  'tenant.required': 'invalid',
  'tenant.protected': 'forbidden',
  'tenant.confirmation_required': 'invalid',
  'tenant.shred_incomplete': 'unavailable',
  'control.unavailable': 'unavailable',
  'control.unknown_operation': 'invalid',
  'user.not_found': 'not_found',
  'user.email_taken': 'conflict',
  'client.not_found': 'not_found',
  'keystore.not_initialised': 'unavailable',
  'keystore.exists': 'conflict',
  'keystore.wrong_master_key': 'unauthenticated',
  'keystore.master_key_missing': 'invalid',
  'keystore.corrupt': 'internal',
  'keystore.key_not_found': 'not_found',
  'keystore.custody_unavailable': 'unavailable',
  'keystore.destroy_refused': 'forbidden',
  'keystore.import_conflict': 'conflict',
  'keystore.deployment_mismatch': 'conflict',
  'keystore.read_only': 'unavailable',
  'keystore.rotation_superseded': 'conflict',
  'keystore.shares_invalid': 'invalid',
  'keystore.shares_insufficient': 'invalid',
  'keystore.shares_mismatch': 'conflict',
  'crypto.decrypt_failed': 'internal',
  'crypto.ciphertext_malformed': 'invalid',
  'crypto.shredded': 'not_found',
  'age.recipient_invalid': 'invalid',
  'age.identity_invalid': 'invalid',
  'age.decrypt_failed': 'invalid',
  'audit.chain_broken': 'internal',
  'audit.immutable': 'forbidden',
  'objects.invalid_url': 'invalid',
  'objects.invalid_key': 'invalid',
  'objects.invalid_argument': 'invalid',
  'objects.key_conflict': 'conflict',
  'objects.not_found': 'not_found',
  'objects.checksum_mismatch': 'internal',
  'objects.unavailable': 'unavailable',
  'internal.unexpected': 'internal',
  'password.too_short': 'invalid',
  'password.too_long': 'invalid',
  'password.common': 'invalid',
  'password.hashing_unavailable': 'unavailable',
  'auth.invalid_credentials': 'unauthenticated',
  'auth.throttled': 'rate_limited',
  'auth.account_locked': 'forbidden',
  'mfa.code_malformed': 'invalid',
  'mfa.code_invalid': 'unauthenticated',
  'mfa.code_replayed': 'unauthenticated',
  'mfa.recovery_code_used': 'unauthenticated',
  'mfa.enrolment_foreign': 'forbidden',
  'mfa.step_expired': 'invalid',
  'mfa.factor_not_found': 'not_found',
  'mfa.policy_invalid': 'invalid',
  'passkey.not_found': 'not_found',
  'passkey.name_invalid': 'invalid',
  'passkey.already_registered': 'conflict',
  'passkey.challenge_missing': 'invalid',
  'passkey.origin_mismatch': 'unauthenticated',
  'passkey.unknown_credential': 'unauthenticated',
  'passkey.verification_failed': 'unauthenticated',
  'passkey.counter_regressed': 'forbidden',
  'passkey.flags_inconsistent': 'forbidden',
  'organisation.not_found': 'not_found',
  'organisation.name_taken': 'conflict',
  'membership.not_found': 'not_found',
  'membership.exists': 'conflict',
  'api_resource.not_found': 'not_found',
  'api_resource.indicator_invalid': 'invalid',
  'api_resource.indicator_taken': 'conflict',
  'api_resource.protected': 'conflict',
  'permission.not_found': 'not_found',
  'permission.name_invalid': 'invalid',
  'permission.name_taken': 'conflict',
  'role.not_found': 'not_found',
  'role.name_taken': 'conflict',
  'session.not_found': 'not_found',
  'backup.no_recipients': 'invalid',
  'backup.plaintext_upload': 'invalid',
  'backup.destination_invalid': 'invalid',
  'backup.region_mismatch': 'invalid',
  'backup.pg_dump_missing': 'unavailable',
  'backup.pg_dump_too_old': 'unavailable',
  'backup.dump_forbidden': 'forbidden',
  'backup.dump_failed': 'unavailable',
  'backup.recovery_conflict': 'unavailable',
  'backup.locked': 'conflict',
  'backup.set_not_found': 'not_found',
  'backup.set_incomplete': 'conflict',
  'backup.manifest_invalid': 'invalid',
  'backup.identity_required': 'invalid',
  'backup.part_missing': 'not_found',
  'backup.checksum_mismatch': 'internal',
  'backup.dump_unreadable': 'internal',
  'backup.archive_invalid': 'internal',
  'backup.keystore_mismatch': 'conflict',
  'backup.format_unsupported': 'invalid',
  'backup.target_not_empty': 'conflict',
  'backup.target_live': 'conflict',
  'backup.target_invalid': 'invalid',
  'backup.target_forbidden': 'unavailable',
  'backup.tool_missing': 'unavailable',
  'backup.tool_too_old': 'unavailable',
  'backup.restore_failed': 'internal',
  'bundle.invalid': 'invalid',
  'bundle.signing_key_missing': 'unavailable',
  'bundle.jwks_invalid': 'invalid',
  'bundle.jwks_unavailable': 'unavailable',
  'media.unsupported_type': 'invalid',
  'media.too_large': 'invalid',
  'media.unreadable': 'invalid',
  'media.not_found': 'not_found',
  'media.rate_limited': 'rate_limited',
  'media.busy': 'unavailable',
  'mail.address_invalid': 'invalid',
  'mail.content_invalid': 'invalid',
  'account.link_invalid': 'invalid',
  'account.link_expired': 'invalid',
  'account.link_used': 'invalid',
  'account.code_invalid': 'invalid',
  'account.password_mismatch': 'invalid',
  'signup.closed': 'not_found',
  'signup.domain_not_allowed': 'forbidden',
  'signup.throttled': 'rate_limited',
  'signup.email_unverified': 'forbidden',
  'signup.name_invalid': 'invalid',
  'signup.passkey_step_expired': 'invalid',
  'brand.name_invalid': 'invalid',
  'brand.colour_invalid': 'invalid',
  'brand.contrast_insufficient': 'invalid',
  'brand.contact_invalid': 'invalid',
  // The account pages (src/server/routes/account-pages.ts).
  'account.csrf_invalid': 'forbidden',
  'account.sign_in_failed': 'unauthenticated',
  'account.password_incorrect': 'invalid',
  'account.confirmation_mismatch': 'invalid',
  'account.self_delete_disabled': 'forbidden',
  'account.factor_required': 'forbidden',
  'request.precondition_failed': 'precondition_failed',
  'request.precondition_required': 'precondition_required',
  'backup.job_not_found': 'not_found',
  'backup.drill_unavailable': 'unavailable',
  'backup.job_interrupted': 'unavailable',
  // The admin console.
  'console.not_built': 'unavailable',
  // Invitations and unverified accounts, as administrators manage them.
  'account.link_revoked': 'invalid',
  'invitation.not_found': 'not_found',
  'invitation.already_accepted': 'conflict',
  'user.not_awaiting_verification': 'conflict',
  // Client editing and list sorting.
  'client.public_no_secret': 'invalid',
  'client.built_in': 'forbidden',
  'request.invalid_cursor': 'invalid',
} as const satisfies Record<string, ErrorKind>;

export type ErrorCode = keyof typeof ERROR_CODES;

const HTTP_STATUS: Record<ErrorKind, number> = {
  invalid: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  unavailable: 503,
  rate_limited: 429,
  precondition_failed: 412,
  precondition_required: 428,
  internal: 500,
};

/**
 * CLI exit codes, documented in the README. 1 is reserved for "the check ran and found a
 * problem" (e.g. a broken audit chain), 2 for invalid usage or configuration.
 */
const EXIT_CODE: Record<ErrorKind, number> = {
  invalid: 2,
  unauthenticated: 3,
  forbidden: 3,
  not_found: 4,
  conflict: 5,
  unavailable: 6,
  rate_limited: 7,
  precondition_failed: 5,
  precondition_required: 2,
  internal: 70,
};

export interface OrthIdErrorOptions {
  cause?: unknown;
  /** Machine-readable detail safe to show to the caller (never secrets). */
  details?: Record<string, unknown>;
}

/**
 * The error every OrthID module throws on purpose.
 *
 * @example
 * throw new OrthIdError('tenant.not_found', `No tenant "${slug}". List tenants with: orthid tenant list`);
 */
export class OrthIdError extends Error {
  readonly code: ErrorCode;
  readonly kind: ErrorKind;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: OrthIdErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'OrthIdError';
    this.code = code;
    this.kind = ERROR_CODES[code];
    this.details = options.details;
  }

  get httpStatus(): number {
    return HTTP_STATUS[this.kind];
  }

  get exitCode(): number {
    return EXIT_CODE[this.kind];
  }
}

export function isOrthIdError(value: unknown, code?: ErrorCode): value is OrthIdError {
  return value instanceof OrthIdError && (code === undefined || value.code === code);
}

/**
 * Wraps anything thrown into an OrthIdError without leaking its message to users. `whereToLook`
 * says where the cause was recorded: the server's log by default; a CLI command that ran alone
 * says how to print it instead, since there is no server whose log could hold it.
 */
export function toOrthIdError(value: unknown, whereToLook = 'see the server log'): OrthIdError {
  if (value instanceof OrthIdError) return value;
  return new OrthIdError('internal.unexpected', `An unexpected error occurred; ${whereToLook}.`, {
    cause: value,
  });
}

export const exitCodes = { ok: 0, checkFailed: 1, ...EXIT_CODE } as const;
