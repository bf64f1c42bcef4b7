// SQL for sign_in_throttle: failure counters per account and per client address, shared by
// every replica. Updates are single atomic upserts so concurrent failures are all counted.
import type { Queryable } from '../core/sql.js';

export interface ThrottleRow {
  key: string;
  failures: number;
  last_failure_at: Date;
  blocked_until: Date | null;
}

export interface FailurePolicy {
  /** Failures that set no block. */
  freeFailures: number;
  /** The longest block, in seconds. */
  maxDelaySeconds: number;
  /** A counter whose last failure is older than this starts again at 1 (null: never). */
  resetBefore: Date | null;
}

const COLUMNS = 'key, failures, last_failure_at, blocked_until';

// The block after `n` failures: none up to the free ones, then 2^(n - free) seconds, capped
// (the exponent is capped too, so a huge count cannot overflow).
const blockAfter = (n: string) =>
  `CASE WHEN ${n} > $5 THEN $3::timestamptz + make_interval(secs => least(power(2, least(${n} - $5, 30)), $6)) END`;

export function createSignInThrottleQueries(tx: Queryable) {
  return {
    /** The counters for `keys`, in key order; `lock` holds them until the transaction ends. */
    async get(keys: readonly string[], lock = false): Promise<ThrottleRow[]> {
      const { rows } = await tx.query<ThrottleRow>(
        `SELECT ${COLUMNS} FROM sign_in_throttle WHERE key = ANY($1::text[]) ORDER BY key${lock ? ' FOR UPDATE' : ''}`,
        [keys],
      );
      return rows;
    },

    /** Counts one failure for `key` and sets its block, atomically; returns the new counter. */
    async recordFailure(
      tenantId: string,
      key: string,
      now: Date,
      policy: FailurePolicy,
    ): Promise<ThrottleRow> {
      const { rows } = await tx.query<ThrottleRow>(
        `INSERT INTO sign_in_throttle AS t (tenant_id, key, failures, last_failure_at, blocked_until)
         VALUES ($1, $2, 1, $3, ${blockAfter('1')})
         ON CONFLICT (tenant_id, key) DO UPDATE SET
           (failures, last_failure_at, blocked_until) = (
             SELECT n, $3::timestamptz, ${blockAfter('n')}
               FROM (SELECT CASE WHEN t.last_failure_at < $4::timestamptz THEN 1 ELSE t.failures + 1 END AS n) AS next
           )
         RETURNING ${COLUMNS}`,
        [tenantId, key, now, policy.resetBefore, policy.freeFailures, policy.maxDelaySeconds],
      );
      return rows[0]!;
    },

    async delete(key: string): Promise<void> {
      await tx.query('DELETE FROM sign_in_throttle WHERE key = $1', [key]);
    },

    /**
     * Deletes up to `limit` counters whose key starts with `prefix`, whose last failure is
     * before `before` and whose block is over; returns how many.
     */
    async deleteStale(prefix: string, before: Date, now: Date, limit: number): Promise<number> {
      const { rowCount } = await tx.query(
        `DELETE FROM sign_in_throttle WHERE ctid = ANY(ARRAY(
           SELECT ctid FROM sign_in_throttle
            WHERE starts_with(key, $1) AND last_failure_at < $2
              AND (blocked_until IS NULL OR blocked_until <= $3)
            LIMIT $4))`,
        [prefix, before, now, limit],
      );
      return rowCount;
    },
  };
}
