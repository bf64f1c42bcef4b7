// Checks a list call's page size and cursor once for every backend, so both page the same way
// and a bad cursor or limit fails before any I/O.
import { OrthIdError } from '../../core/errors.js';
import { assertValidKey } from './object-key.js';
import type { ListOptions } from './object-store.js';

/** S3 returns at most 1000 keys per request; holding the file backend to it keeps pages alike. */
export const MAX_LIST_LIMIT = 1000;

export interface CheckedListOptions {
  cursor: string | undefined;
  limit: number;
}

export function toListOptions(options: ListOptions = {}): CheckedListOptions {
  const limit = options.limit ?? MAX_LIST_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
    throw new OrthIdError(
      'objects.invalid_argument',
      `Invalid list limit ${String(limit)}: use a whole number from 1 to ${MAX_LIST_LIMIT}.`,
    );
  }
  if (options.cursor !== undefined) assertValidKey(options.cursor, 'cursor');
  return { cursor: options.cursor, limit };
}
