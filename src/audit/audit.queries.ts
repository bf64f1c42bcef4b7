// SQL for the append-only audit_events table. The application role may only INSERT and SELECT.
import type { Queryable } from '../core/sql.js';

export interface AuditRow {
  tenant_id: string;
  seq: string;
  id: string;
  occurred_at: Date;
  actor: string;
  action: string;
  target: string | null;
  ip: string | null;
  user_agent: string | null;
  outcome: 'success' | 'failure';
  details: string | null;
  prev_hash: string;
  hash: string;
}

const COLUMNS =
  'tenant_id, seq, id, occurred_at, actor, action, target, ip, user_agent, outcome, details, prev_hash, hash';

export function createAuditQueries(tx: Queryable) {
  return {
    /** Serialises appends per tenant for the rest of the transaction, so the chain never forks. */
    async lockChain(tenantId: string): Promise<void> {
      await tx.query(`SELECT pg_advisory_xact_lock(hashtextextended('orthid-audit:' || $1, 0))`, [tenantId]);
    },
    async head(): Promise<Pick<AuditRow, 'seq' | 'hash'> | undefined> {
      const { rows } = await tx.query<Pick<AuditRow, 'seq' | 'hash'>>(
        'SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1',
      );
      return rows[0];
    },
    async insert(row: AuditRow): Promise<void> {
      await tx.query(
        `INSERT INTO audit_events (${COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)`,
        [
          row.tenant_id,
          row.seq,
          row.id,
          row.occurred_at,
          row.actor,
          row.action,
          row.target,
          row.ip,
          row.user_agent,
          row.outcome,
          row.details,
          row.prev_hash,
          row.hash,
        ],
      );
    },
    /** Events in chain order after `afterSeq`, a page at a time. */
    async pageAfter(afterSeq: string, limit: number): Promise<AuditRow[]> {
      const { rows } = await tx.query<AuditRow>(
        `SELECT ${COLUMNS} FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2`,
        [afterSeq, limit],
      );
      return rows;
    },
    /** Newest first, before `beforeSeq` when given. */
    async pageBefore(beforeSeq: string | undefined, limit: number): Promise<AuditRow[]> {
      const { rows } = await tx.query<AuditRow>(
        `SELECT ${COLUMNS} FROM audit_events WHERE ($1::bigint IS NULL OR seq < $1::bigint) ORDER BY seq DESC LIMIT $2`,
        [beforeSeq ?? null, limit],
      );
      return rows;
    },
  };
}
