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
  /** The stored time in microseconds since the epoch, as read back (a JS Date drops them). */
  occurred_us?: string;
}

const COLUMNS =
  'tenant_id, seq, id, occurred_at, actor, action, target, ip, user_agent, outcome, details, prev_hash, hash';
// extract() is exact (numeric) since PostgreSQL 14, so this is the stored value to the microsecond.
const READ_COLUMNS = `${COLUMNS}, (extract(epoch FROM occurred_at) * 1000000)::bigint::text AS occurred_us`;

/** What a reader of the log narrows it to; every field is optional and they combine. */
export interface AuditFilter {
  actor?: string;
  /** Exact, or a prefix when it ends with `.*` (`user.*`). */
  action?: string;
  /** Events at or after this time. */
  from?: Date;
  /** Events before this time. */
  to?: Date;
}

/** The LIKE pattern of an action filter: `user.*` matches every `user.` action, the rest exactly. */
function actionPattern(action: string): string {
  const escaped = action.replace(/[\\%_]/g, (c) => `\\${c}`);
  return escaped.endsWith('.*') ? `${escaped.slice(0, -1)}%` : escaped;
}

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
        `SELECT ${READ_COLUMNS} FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2`,
        [afterSeq, limit],
      );
      return rows;
    },
    /**
     * Keyed (v2) events after `afterSeq` up to `throughSeq`, in chain order, a page at a time:
     * each one's seq, stored link and its v2 encoding built in SQL (the same array audit-chain.ts
     * stringifies, see `scanChain`), so Node only computes the MAC of each.
     */
    async keyedAfter(
      afterSeq: string,
      throughSeq: string | undefined,
      limit: number,
    ): Promise<{ seq: string; hash: string; canonical: string }[]> {
      const { rows } = await tx.query<{ seq: string; hash: string; canonical: string }>(
        `SELECT seq, hash, array_to_json(ARRAY[
                  'orthid-audit/v2', tenant_id::text, seq::text, id::text,
                  (extract(epoch FROM occurred_at) * 1000000)::bigint::text,
                  actor, action, target, ip, user_agent, outcome, details, prev_hash
                ])::text AS canonical
           FROM audit_events
          WHERE seq > $1::bigint AND ($2::bigint IS NULL OR seq <= $2::bigint) AND hash LIKE 'v2:%'
          ORDER BY seq LIMIT $3`,
        [afterSeq, throughSeq ?? null, limit],
      );
      return rows;
    },
    /**
     * One pass over the chain after `afterSeq` (through `throughSeq` when given), in the database:
     * each event's seq and previous-hash against the event before it (`afterSeq` / `afterHash` for
     * the first) and, for unkeyed (v1) events, its hash against audit-chain.ts's v1 encoding,
     * rebuilt in SQL — array_to_json writes an array of strings and nulls exactly as
     * JSON.stringify does, and to_char the ISO form toISOString writes for years 1–9999 — with no
     * time below a millisecond and no keyed event before it. Keyed (v2) links need the audit key,
     * which the database does not hold: Node checks them. Rows stay in the database; only the
     * count and the first event that does not hold come back.
     */
    async scanChain(
      afterSeq: string,
      afterHash: string,
      throughSeq?: string,
    ): Promise<{ events: string; first_fault: string | null; last_seq: string | null }> {
      const { rows } = await tx.query<{
        events: string;
        first_fault: string | null;
        last_seq: string | null;
      }>(
        `SELECT count(*) AS events, min(seq) FILTER (WHERE ok IS NOT TRUE) AS first_fault, max(seq) AS last_seq
           FROM (
             SELECT seq,
                    seq = lag(seq, 1, $1::bigint) OVER w + 1
                    AND prev_hash = lag(hash, 1, $2::text) OVER w
                    AND (hash LIKE 'v2:%' OR (
                      lag(hash, 1, $2::text) OVER w NOT LIKE 'v2:%'
                      AND extract(microseconds FROM occurred_at)::bigint % 1000 = 0
                      AND hash = encode(sha256(convert_to(array_to_json(ARRAY[
                        'orthid-audit/v1', tenant_id::text, seq::text, id::text,
                        to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                        actor, action, target, ip, user_agent, outcome, details, prev_hash
                      ])::text, 'UTF8')), 'hex'))) AS ok
               FROM audit_events
              WHERE seq > $1::bigint AND ($3::bigint IS NULL OR seq <= $3::bigint)
             WINDOW w AS (ORDER BY seq)
           ) AS chain`,
        [afterSeq, afterHash, throughSeq ?? null],
      );
      return rows[0]!;
    },
    /** The stored hash of one event. */
    async hashAt(seq: string): Promise<string | undefined> {
      const { rows } = await tx.query<Pick<AuditRow, 'hash'>>(
        'SELECT hash FROM audit_events WHERE seq = $1',
        [seq],
      );
      return rows[0]?.hash;
    },
    /** Newest first, before `beforeSeq` when given, narrowed by `filter`. */
    async searchBefore(
      beforeSeq: string | undefined,
      filter: AuditFilter,
      limit: number,
    ): Promise<AuditRow[]> {
      const { rows } = await tx.query<AuditRow>(
        `SELECT ${READ_COLUMNS} FROM audit_events
          WHERE ($1::bigint IS NULL OR seq < $1::bigint)
            AND ($2::text IS NULL OR actor = $2::text)
            AND ($3::text IS NULL OR action LIKE $3::text)
            AND ($4::timestamptz IS NULL OR occurred_at >= $4::timestamptz)
            AND ($5::timestamptz IS NULL OR occurred_at < $5::timestamptz)
          ORDER BY seq DESC LIMIT $6`,
        [
          beforeSeq ?? null,
          filter.actor ?? null,
          filter.action === undefined ? null : actionPattern(filter.action),
          filter.from ?? null,
          filter.to ?? null,
          limit,
        ],
      );
      return rows;
    },
    /** Oldest first, after `afterSeq` when given, narrowed by `filter` when given. */
    async searchAfter(
      afterSeq: string | undefined,
      filter: AuditFilter | undefined,
      limit: number,
    ): Promise<AuditRow[]> {
      const { rows } = await tx.query<AuditRow>(
        `SELECT ${READ_COLUMNS} FROM audit_events
          WHERE ($1::bigint IS NULL OR seq > $1::bigint)
            AND ($2::text IS NULL OR actor = $2::text)
            AND ($3::text IS NULL OR action LIKE $3::text)
            AND ($4::timestamptz IS NULL OR occurred_at >= $4::timestamptz)
            AND ($5::timestamptz IS NULL OR occurred_at < $5::timestamptz)
          ORDER BY seq LIMIT $6`,
        [
          afterSeq ?? null,
          filter?.actor ?? null,
          filter?.action === undefined ? null : actionPattern(filter.action),
          filter?.from ?? null,
          filter?.to ?? null,
          limit,
        ],
      );
      return rows;
    },
    /** Newest first, before `beforeSeq` when given. */
    async pageBefore(beforeSeq: string | undefined, limit: number): Promise<AuditRow[]> {
      const { rows } = await tx.query<AuditRow>(
        `SELECT ${READ_COLUMNS} FROM audit_events WHERE ($1::bigint IS NULL OR seq < $1::bigint) ORDER BY seq DESC LIMIT $2`,
        [beforeSeq ?? null, limit],
      );
      return rows;
    },
  };
}
