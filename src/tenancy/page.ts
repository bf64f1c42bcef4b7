// Keyset pagination shared by every RBAC list: a page of items and an opaque cursor for the next
// one. Queries fetch one row more than asked, which is how a page knows whether another follows.

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
