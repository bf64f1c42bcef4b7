// Reads an `s3://bucket/prefix?region=…&endpoint=…&forcePathStyle=true&sse=…&sseKmsKeyId=…` URL
// into settings for the S3 backend, refusing anything it would otherwise silently ignore.
import { OrthIdError } from '../../core/errors.js';
import { assertValidKey } from './object-key.js';

/** The S3 server-side encryption types OrthID passes on (the URL's `sse=` and `--sse`). */
export const SSE_TYPES = ['AES256', 'aws:kms', 'aws:kms:dsse'] as const;
export type ServerSideEncryption = (typeof SSE_TYPES)[number];

/** Whether `text` names one of SSE_TYPES. */
export function isServerSideEncryption(text: string): text is ServerSideEncryption {
  return (SSE_TYPES as readonly string[]).includes(text);
}

export interface S3Location {
  bucket: string;
  /** Key prefix inside the bucket, `''` or ending in `/`. */
  prefix: string;
  region: string | undefined;
  /** An S3-compatible endpoint (MinIO, Ceph, R2…); undefined means AWS itself. */
  endpoint: string | undefined;
  forcePathStyle: boolean;
  sse: { type: ServerSideEncryption; kmsKeyId: string | undefined } | undefined;
}

const PARAMETERS = new Set(['region', 'endpoint', 'forcePathStyle', 'sse', 'sseKmsKeyId']);
// AWS's naming rules; S3-compatible stores accept at least these names.
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const REGION = /^[a-z0-9-]{1,64}$/;

const EXAMPLE =
  's3://bucket/prefix?region=eu-west-1 (optionally &endpoint=https://host&forcePathStyle=true&sse=aws:kms&sseKmsKeyId=ID)';

function invalid(why: string, cause?: unknown): never {
  throw new OrthIdError('objects.invalid_url', `Invalid S3 object store URL: ${why}. Use ${EXAMPLE}.`, {
    cause,
  });
}

export function parseS3Location(url: string): S3Location {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (err) {
    // Never echo the text: a malformed URL may still carry a secret.
    return invalid('it cannot be parsed as a URL', err);
  }
  if (parsed.protocol !== 's3:') invalid(`the scheme is "${parsed.protocol}", not "s3:"`);
  if (parsed.username !== '' || parsed.password !== '') {
    invalid(
      'it contains credentials; remove them and provide AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or an instance role instead',
    );
  }
  if (parsed.port !== '') invalid('a bucket has no port; put the server in the endpoint parameter');
  if (parsed.hash !== '') invalid('it has a fragment');
  const bucket = parsed.hostname;
  if (!BUCKET.test(bucket))
    invalid(`"${bucket}" is not a valid bucket name (3-63 lowercase letters, digits, "." and "-")`);

  // The raw path, not parsed.pathname: URL parsing resolves "a/../b" to "b", hiding the mistake.
  const rawPath = /^s3:\/\/[^/?#]*([^?#]*)/i.exec(url)?.[1] ?? '';
  let prefix = '';
  try {
    prefix = decodeURIComponent(rawPath).replace(/^\//, '').replace(/\/$/, '');
  } catch (err) {
    invalid('the prefix is not valid percent-encoding', err);
  }
  if (prefix !== '') {
    try {
      assertValidKey(prefix);
    } catch (err) {
      invalid(`the prefix "${prefix}" is not a valid key path`, err);
    }
    prefix += '/';
  }

  const params = parsed.searchParams;
  const seen = new Set<string>();
  for (const name of params.keys()) {
    if (!PARAMETERS.has(name)) invalid(`unknown parameter "${name}" (known: ${[...PARAMETERS].join(', ')})`);
    if (seen.has(name)) invalid(`parameter "${name}" is given twice`);
    seen.add(name);
  }

  const region = params.get('region') ?? undefined;
  if (region !== undefined && !REGION.test(region))
    invalid(`"${region}" is not a region name such as eu-west-1`);

  let endpoint: string | undefined;
  const endpointText = params.get('endpoint');
  if (endpointText !== null) {
    let endpointUrl: URL;
    try {
      endpointUrl = new URL(endpointText);
    } catch (err) {
      return invalid('the endpoint is not a URL', err);
    }
    if (endpointUrl.protocol !== 'http:' && endpointUrl.protocol !== 'https:')
      invalid('the endpoint must be http:// or https://');
    if (endpointUrl.username !== '' || endpointUrl.password !== '')
      invalid('the endpoint contains credentials; remove them');
    if (endpointUrl.search !== '' || endpointUrl.hash !== '')
      invalid('the endpoint must not have a query or fragment');
    endpoint = endpointUrl.href.replace(/\/$/, '');
  }

  const forcePathStyleText = params.get('forcePathStyle') ?? 'false';
  if (forcePathStyleText !== 'true' && forcePathStyleText !== 'false')
    invalid('forcePathStyle must be true or false');

  let sse: S3Location['sse'];
  const sseText = params.get('sse');
  const kmsKeyId = params.get('sseKmsKeyId') ?? undefined;
  if (sseText !== null) {
    const type = isServerSideEncryption(sseText) ? sseText : undefined;
    if (type === undefined) invalid(`sse must be one of ${SSE_TYPES.join(', ')}`);
    if (kmsKeyId !== undefined && type === 'AES256')
      invalid('sseKmsKeyId needs sse=aws:kms or sse=aws:kms:dsse');
    sse = { type, kmsKeyId };
  } else if (kmsKeyId !== undefined) {
    invalid('sseKmsKeyId needs sse=aws:kms or sse=aws:kms:dsse');
  }

  return { bucket, prefix, region, endpoint, forcePathStyle: forcePathStyleText === 'true', sse };
}
