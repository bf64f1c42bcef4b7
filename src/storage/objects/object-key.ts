// The rules for object keys and list prefixes, shared by every backend so a key valid on one
// is valid on all; also the one ordering (UTF-8 bytes, as S3 sorts) that listings follow.
import { OrthIdError } from '../../core/errors.js';

/** Segments starting with this belong to the store itself (temp files, sidecars, staging). */
export const RESERVED_SEGMENT_PREFIX = '.orthid';

/** S3's limit; the file backend is further bound by its filesystem's name length. */
const MAX_KEY_BYTES = 1024;

function reject(what: 'key' | 'prefix' | 'cursor', value: string, why: string): never {
  throw new OrthIdError(
    'objects.invalid_key',
    `Invalid object ${what} ${JSON.stringify(value)}: ${why}. Use a relative "/"-separated path such as "backups/2025/dump.age".`,
  );
}

function checkSegments(what: 'key' | 'prefix' | 'cursor', value: string, segments: string[]): void {
  if (Buffer.byteLength(value) > MAX_KEY_BYTES)
    reject(what, value, `it is longer than ${MAX_KEY_BYTES} bytes`);
  if (value.startsWith('/')) reject(what, value, 'it is absolute');
  if (value.includes('\\')) reject(what, value, 'it contains a backslash');
  if (value.includes('\0')) reject(what, value, 'it contains a NUL character');
  for (const segment of segments) {
    if (segment === '') reject(what, value, 'it has an empty segment');
    if (segment === '.' || segment === '..') reject(what, value, `it has a "${segment}" segment`);
    if (segment.startsWith(RESERVED_SEGMENT_PREFIX)) {
      reject(what, value, `segments starting with "${RESERVED_SEGMENT_PREFIX}" are reserved for the store`);
    }
  }
}

/** Throws `objects.invalid_key` unless `key` is a usable object key. */
export function assertValidKey(key: string, what: 'key' | 'cursor' = 'key'): void {
  if (typeof key !== 'string' || key === '') reject(what, String(key), 'it is empty');
  checkSegments(what, key, key.split('/'));
}

/**
 * Throws `objects.invalid_key` unless `prefix` can select keys: `''`, a key, a key ending in
 * `/`, or a key whose last segment is cut short (`backups/2025-0`).
 */
export function assertValidPrefix(prefix: string): void {
  if (typeof prefix !== 'string') reject('prefix', String(prefix), 'it is not a string');
  if (prefix === '') return;
  const segments = prefix.split('/');
  if (segments.at(-1) === '') segments.pop();
  checkSegments('prefix', prefix, segments);
}

/** Whether a key, relative to the store, names the store's own bookkeeping rather than an object. */
export function isReservedKey(key: string): boolean {
  return key.split('/').some((segment) => segment.startsWith(RESERVED_SEGMENT_PREFIX));
}

/** Compares as S3 does: by UTF-8 bytes (JS `<` compares UTF-16 units, which differs above U+FFFF). */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
