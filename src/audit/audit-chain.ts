// The hash chain over audit events: each event's hash covers its canonical encoding and the
// previous event's hash, so editing, removing or reordering any stored event breaks the chain.
import { createHash } from 'node:crypto';
import type { AuditRow } from './audit.queries.js';

export const GENESIS_HASH = '0'.repeat(64);

/** A fixed-order array, so the encoding never depends on object key order or driver types. */
function canonical(row: Omit<AuditRow, 'hash'>): string {
  return JSON.stringify([
    'orthid-audit/v1',
    row.tenant_id,
    String(row.seq),
    row.id,
    new Date(row.occurred_at).toISOString(),
    row.actor,
    row.action,
    row.target,
    row.ip,
    row.user_agent,
    row.outcome,
    row.details,
    row.prev_hash,
  ]);
}

export function hashEvent(row: Omit<AuditRow, 'hash'>): string {
  return createHash('sha256').update(canonical(row)).digest('hex');
}

export interface BrokenLink {
  seq: string;
  reason: string;
}

/**
 * Checks one event against its predecessor in the chain; returns why the link is broken, or
 * undefined when it holds.
 */
export function checkLink(row: AuditRow, expectedSeq: bigint, prevHash: string): BrokenLink | undefined {
  if (BigInt(row.seq) !== expectedSeq) {
    return {
      seq: row.seq,
      reason: `expected event #${expectedSeq} but found #${row.seq}: events are missing`,
    };
  }
  if (row.prev_hash !== prevHash) {
    return { seq: row.seq, reason: "its previous-hash does not match the previous event's hash" };
  }
  if (hashEvent(row) !== row.hash) {
    return { seq: row.seq, reason: 'its contents do not match its hash: the event was altered' };
  }
  return undefined;
}
