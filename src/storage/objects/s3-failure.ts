// Turns what the AWS SDK throws into OrthID's object errors: a missing key is `objects.not_found`,
// anything else `objects.unavailable` with the bucket, the endpoint and a next step — never credentials.
import { isOrthIdError, OrthIdError } from '../../core/errors.js';

export interface S3Context {
  bucket: string;
  endpoint: string | undefined;
}

interface SdkError {
  name?: unknown;
  code?: unknown;
  $metadata?: { httpStatusCode?: number };
}

const CREDENTIAL_ERRORS = new Set([
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'InvalidToken',
  'TokenRefreshRequired',
]);

/** Whether the SDK says the key (not the bucket) does not exist. */
export function isS3NotFound(err: unknown): boolean {
  const { name, $metadata } = (err ?? {}) as SdkError;
  if (name === 'NoSuchKey' || name === 'NotFound') return true;
  return $metadata?.httpStatusCode === 404 && name !== 'NoSuchBucket' && name !== 'NoSuchUpload';
}

function nextStep(name: string, status: number | undefined): string {
  if (name === 'NoSuchBucket') return 'Create the bucket or correct its name in the URL.';
  if (name === 'CredentialsProviderError') {
    return 'No AWS credentials were found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with an instance or pod role.';
  }
  if (CREDENTIAL_ERRORS.has(name) || status === 401 || status === 403) {
    return 'Check that the AWS credentials are valid and allowed to use this bucket (and its KMS key, if any).';
  }
  return 'Check the endpoint, the network and the AWS credentials, then retry.';
}

/**
 * Maps an SDK failure during `doing` (e.g. `read "a/b"`). Only the error's name, code and HTTP
 * status are quoted: SDK messages and responses can echo request details we do not vet.
 */
export function s3Failure(err: unknown, context: S3Context, doing: string, key?: string): OrthIdError {
  if (isOrthIdError(err)) return err;
  const where = `bucket "${context.bucket}" at ${context.endpoint ?? 'AWS S3'}`;
  if (key !== undefined && isS3NotFound(err)) {
    return new OrthIdError('objects.not_found', `No object "${key}" in ${where}.`, { cause: err });
  }
  const { name, code, $metadata } = (err ?? {}) as SdkError;
  const status = $metadata?.httpStatusCode;
  const nameText = typeof name === 'string' ? name : 'Error';
  const reason = [
    nameText === 'Error' ? undefined : nameText,
    typeof code === 'string' && code !== nameText ? code : undefined,
    status === undefined ? undefined : `HTTP ${status}`,
  ]
    .filter((part) => part !== undefined)
    .join(', ');
  return new OrthIdError(
    'objects.unavailable',
    `Could not ${doing} in ${where}${reason === '' ? '' : ` (${reason})`}. ${nextStep(nameText, status)}`,
    { cause: err, details: { bucket: context.bucket, endpoint: context.endpoint ?? null } },
  );
}
