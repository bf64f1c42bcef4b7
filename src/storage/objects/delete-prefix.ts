// Deletes every object under a prefix, page by page, for clean-ups that run after a database
// change has committed (an object store cannot join the transaction). Safe to repeat.
import type { ObjectStore } from './object-store.js';

/**
 * Deletes every object whose key starts with `prefix` and returns how many went. Each page is
 * deleted before the next is read; a run that stops part-way leaves the rest for the next run.
 * `onDeleted` is told of each deletion, so a caller knows how far a failed run got.
 */
export async function deleteByPrefix(
  store: ObjectStore,
  prefix: string,
  onDeleted?: (key: string) => void,
): Promise<number> {
  let deleted = 0;
  let cursor: string | undefined;
  do {
    const page = await store.list(prefix, cursor === undefined ? {} : { cursor });
    for (const item of page.items) {
      await store.delete(item.key);
      deleted += 1;
      onDeleted?.(item.key);
    }
    cursor = page.cursor;
  } while (cursor !== undefined);
  return deleted;
}
