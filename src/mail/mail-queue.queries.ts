// SQL of the mail queue. Every statement runs in a tenant-scoped transaction (row-level security
// shows one tenant's mail), except the tenant list, which the worker reads to visit each tenant.
import type { Queryable } from '../core/sql.js';

export interface MailRow {
  tenant_id: string;
  id: string;
  template: string;
  recipient: string;
  content: string;
  attempts: number;
  created_at: Date;
}

export interface MailCounts {
  queued: number;
  retrying: number;
  sent: number;
  failed: number;
  oldest_queued_at: Date | null;
}

export function createMailQueueQueries(tx: Queryable) {
  return {
    async insert(row: Omit<MailRow, 'attempts'> & { next_attempt_at: Date }): Promise<void> {
      await tx.query(
        `INSERT INTO mail_queue (tenant_id, id, template, recipient, content, next_attempt_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [
          row.tenant_id,
          row.id,
          row.template,
          row.recipient,
          row.content,
          row.next_attempt_at,
          row.created_at,
        ],
      );
    },
    /** The tenant's configured sender ("Name <address>"), if any. */
    async tenantSender(tenantId: string): Promise<string | undefined> {
      const { rows } = await tx.query<{ mail_from: string | null }>(
        `SELECT settings ->> 'mailFrom' AS mail_from FROM tenants WHERE id = $1`,
        [tenantId],
      );
      return rows[0]?.mail_from ?? undefined;
    },
    /**
     * Leases up to `limit` due mails to the caller until `leaseUntil`. SKIP LOCKED lets another
     * replica claim other rows at the same moment instead of waiting; the lease keeps them from
     * claiming these once this transaction commits.
     */
    async claimDue(now: Date, leaseUntil: Date, limit: number): Promise<MailRow[]> {
      const { rows } = await tx.query<MailRow>(
        `UPDATE mail_queue m SET locked_until = $2, attempts = m.attempts + 1
          WHERE (m.tenant_id, m.id) IN (
            SELECT tenant_id, id FROM mail_queue
             WHERE status = 'queued' AND next_attempt_at <= $1
               AND (locked_until IS NULL OR locked_until <= $1)
             ORDER BY next_attempt_at
             LIMIT $3
             FOR UPDATE SKIP LOCKED)
          RETURNING m.tenant_id, m.id, m.template, m.recipient, m.content, m.attempts, m.created_at`,
        [now, leaseUntil, limit],
      );
      return rows;
    },
    async markSent(id: string, now: Date): Promise<void> {
      await tx.query(
        `UPDATE mail_queue SET status = 'sent', finished_at = $2, locked_until = NULL, last_error = NULL
          WHERE id = $1`,
        [id, now],
      );
    },
    async markRetry(id: string, nextAttemptAt: Date, reason: string): Promise<void> {
      await tx.query(
        `UPDATE mail_queue SET next_attempt_at = $2, locked_until = NULL, last_error = $3 WHERE id = $1`,
        [id, nextAttemptAt, reason],
      );
    },
    async markFailed(id: string, now: Date, reason: string): Promise<void> {
      await tx.query(
        `UPDATE mail_queue SET status = 'failed', finished_at = $2, locked_until = NULL, last_error = $3
          WHERE id = $1`,
        [id, now, reason],
      );
    },
    /** Sent and failed mail finished before `before`; returns how many rows were deleted. */
    async deleteFinished(before: Date, limit: number): Promise<number> {
      const { rowCount } = await tx.query(
        `DELETE FROM mail_queue WHERE (tenant_id, id) IN (
           SELECT tenant_id, id FROM mail_queue WHERE status <> 'queued' AND finished_at < $1 LIMIT $2)`,
        [before, limit],
      );
      return rowCount ?? 0;
    },
    /** Queued mail never tried is "queued"; queued mail tried at least once is "retrying". */
    async counts(): Promise<MailCounts> {
      const { rows } = await tx.query<MailCounts>(
        `SELECT count(*) FILTER (WHERE status = 'queued' AND attempts = 0)::int AS queued,
                count(*) FILTER (WHERE status = 'queued' AND attempts > 0)::int AS retrying,
                count(*) FILTER (WHERE status = 'sent')::int AS sent,
                count(*) FILTER (WHERE status = 'failed')::int AS failed,
                min(created_at) FILTER (WHERE status = 'queued') AS oldest_queued_at
           FROM mail_queue`,
      );
      return rows[0]!;
    },
    /** Status, attempts and last error of one mail (operators and tests; no personal data). */
    async state(
      id: string,
    ): Promise<
      { status: string; attempts: number; last_error: string | null; next_attempt_at: Date } | undefined
    > {
      const { rows } = await tx.query<{
        status: string;
        attempts: number;
        last_error: string | null;
        next_attempt_at: Date;
      }>('SELECT status, attempts, last_error, next_attempt_at FROM mail_queue WHERE id = $1', [id]);
      return rows[0];
    },
  };
}

/** Every tenant id (read as the application role with no tenant set). */
export async function allTenantIds(tx: Queryable): Promise<string[]> {
  const { rows } = await tx.query<{ id: string }>('SELECT id FROM tenants ORDER BY created_at');
  return rows.map((r) => r.id);
}
