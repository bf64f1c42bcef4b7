// Keyset pagination shared by every RBAC list: a page of items and an opaque cursor for the next
// one. Queries fetch one row more than asked, which is how a page knows whether another follows.

import { OrthIdError } from '../core/errors.js';

/** A page of a list; `next` is the cursor for `?after=`, null on the last page. */
export interface Page<T> {
  items: T[];
  next: string | null;
}

export interface PageRequest {
  /** 1-200; the edge validates it. */
  limit: number;
  /** The `next` of the previous page. */
  after?: string;
}

/** Cuts `rows` (fetched with limit + 1) to a page; the cursor is the key of its last item. */
export function pageOf<Row, Item>(
  rows: Row[],
  limit: number,
  key: (row: Row) => string,
  present: (row: Row) => Item,
): Page<Item> {
  const hasMore = rows.length > limit;
  const kept = hasMore ? rows.slice(0, limit) : rows;
  return { items: kept.map(present), next: hasMore && kept.length > 0 ? key(kept.at(-1)!) : null };
}

/**
 * The cursor of a list read in a chosen order: the order's name and the sort key of the page's
 * last row, so the next page starts exactly after it even while rows are added, and a cursor
 * from one order is refused in another instead of silently skipping rows.
 */
export function encodeCursor(sort: string, key: string[]): string {
  return Buffer.from(JSON.stringify([sort, ...key])).toString('base64url');
}

/**
 * The sort key `encodeCursor` wrapped, checked to be one of `sort` with `size` parts (and
 * `valid`, e.g. a timestamp's shape: a forged part must never reach the database as a bad value).
 */
export function decodeCursor(
  cursor: string,
  sort: string,
  size: number,
  valid: (key: string[]) => boolean = () => true,
): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  if (
    !Array.isArray(parsed) ||
    parsed.length !== size + 1 ||
    parsed[0] !== sort ||
    !parsed.every((part) => typeof part === 'string') ||
    !valid(parsed.slice(1))
  ) {
    throw invalidCursor(sort);
  }
  return parsed.slice(1) as string[];
}

/** 400 request.invalid_cursor: `after` is not a cursor this list, read in `sort` order, gave. */
export function invalidCursor(sort: string): OrthIdError {
  return new OrthIdError(
    'request.invalid_cursor',
    `"after" is not a cursor of this list sorted by ${sort}; pass the "next" of the previous page with the same sort, or start again without "after".`,
    { details: { fields: [{ path: '/after', message: `is not a cursor for sort=${sort}` }] } },
  );
}

/** A UUID's text form: a cursor part checked against it never reaches PostgreSQL as a bad uuid. */
export const UUID_TEXT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
