// SQL for per-user upload counting. It reuses sign_in_throttle, the one table of counters every
// replica shares: an upload counter is a row keyed `upload:<actor>` whose failures column counts
// the uploads of the window that began at last_failure_at.
import type { Queryable } from '../core/sql.js';

export interface UploadWindow {
  count: number;
  started_at: Date;
}

export function createUploadLimitQueries(tx: Queryable) {
  return {
    /**
     * Counts one upload for `key`, atomically: a window that began before `windowStartsAfter`
     * starts again at 1 from `now`. Returns the count and the start of the current window.
     */
    async count(tenantId: string, key: string, now: Date, windowStartsAfter: Date): Promise<UploadWindow> {
      const { rows } = await tx.query<UploadWindow>(
        `INSERT INTO sign_in_throttle AS t (tenant_id, key, failures, last_failure_at)
         VALUES ($1, $2, 1, $3)
         ON CONFLICT (tenant_id, key) DO UPDATE SET
           (failures, last_failure_at) = (
             SELECT CASE WHEN t.last_failure_at <= $4::timestamptz THEN 1 ELSE t.failures + 1 END,
                    CASE WHEN t.last_failure_at <= $4::timestamptz THEN $3::timestamptz ELSE t.last_failure_at END
           )
         RETURNING failures AS count, last_failure_at AS started_at`,
        [tenantId, key, now, windowStartsAfter],
      );
      return rows[0]!;
    },
  };
}
