// Picks the object store backend from its URL: file:///abs/path for a local directory,
// s3://bucket/prefix?… for S3 or an S3-compatible server. The only place that knows both.
import { type Clock, systemClock } from '../../core/clock.js';
import { OrthIdError } from '../../core/errors.js';
import { openFileObjectStore } from './file-object-store.js';
import type { ObjectStore } from './object-store.js';

/**
 * Opens the store a URL names. Credentials never go in the URL: S3 takes them from the standard
 * AWS chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, instance or pod role).
 * `clock` dates what the store itself reports when the server does not say (S3 copies).
 *
 * @example
 * await openObjectStore('file:///var/lib/orthid/objects');
 * await openObjectStore('s3://backups/orthid?region=eu-west-1&sse=aws:kms&sseKmsKeyId=alias/orthid');
 */
export async function openObjectStore(url: string, clock: Clock = systemClock): Promise<ObjectStore> {
  // Only the scheme is quoted back: the rest of a URL we cannot use may hold a secret.
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'file') return openFileObjectStore(url);
  // The AWS SDK loads only for S3 URLs: it costs start-up time a local store does not need.
  if (scheme === 's3') return (await import('./s3-object-store.js')).openS3ObjectStore(url, clock);
  throw new OrthIdError(
    'objects.invalid_url',
    `Unsupported object store URL${scheme === undefined ? '' : ` scheme "${scheme}:"`}: use file:///absolute/path or s3://bucket/prefix?region=REGION.`,
  );
}
