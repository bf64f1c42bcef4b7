// The chain over audit events: each event's link covers its canonical encoding and the previous
// event's link, so editing, removing or reordering any stored event breaks the chain.
//
// Two formats. v1 (events written before the chain was keyed): `hash` is SHA-256 of the v1
// encoding, which anyone can recompute. v2: `hash` is `v2:` + an HMAC under the tenant's audit
// key (held by the key custody, never by the database), over an encoding that names the tenant,
// the seq and the time to the microsecond, so a recomputed, renumbered, replayed or re-timed
// event does not verify. A chain is v1 events, then v2 events; a v1 event after a v2 one is a
// rewrite by someone without the key.
import { createHash } from 'node:crypto';
import type { AuditRow } from './audit.queries.js';

export const GENESIS_HASH = '0'.repeat(64);
export const KEYED_PREFIX = 'v2:';

type Unlinked = Omit<AuditRow, 'hash'>;

/** Computes a v2 link: the keyring's `auditMac`, or undefined when the keys are gone (shredded). */
export type AuditMac = ((message: string) => string) | undefined;

export function isKeyed(hash: string): boolean {
  return hash.startsWith(KEYED_PREFIX);
}

/** Microseconds since the epoch, as PostgreSQL stores a timestamptz (JS Dates have milliseconds). */
export function microsOf(at: Date): string {
  return String(BigInt(at.getTime()) * 1000n);
}

/**
 * A fixed-order array, so the encoding never depends on object key order or driver types. The
 * versions differ only in their tag and in how the time is written (v1: milliseconds, v2: the
 * microseconds PostgreSQL stores).
 */
function canonical(tag: 'orthid-audit/v1' | 'orthid-audit/v2', row: Unlinked, time: string): string {
  return JSON.stringify([
    tag,
    row.tenant_id,
    String(row.seq),
    row.id,
    time,
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

const canonicalV1 = (row: Unlinked) =>
  canonical('orthid-audit/v1', row, new Date(row.occurred_at).toISOString());
const canonicalV2 = (row: Unlinked, micros: string) => canonical('orthid-audit/v2', row, micros);

/** The v1 link: unkeyed, for the events written before the chain was keyed. */
export function hashEvent(row: Unlinked): string {
  return createHash('sha256').update(canonicalV1(row)).digest('hex');
}

/** The v2 link; `micros` is the stored time in microseconds (see `microsOf`). */
export function macEvent(row: Unlinked, micros: string, mac: (message: string) => string): string {
  return `${KEYED_PREFIX}${mac(canonicalV2(row, micros))}`;
}

export interface BrokenLink {
  seq: string;
  reason: string;
}

/**
 * Checks one event against its predecessor in the chain; returns why the link is broken, or
 * undefined when it holds. Without `mac` (a shredded tenant) a v2 event's contents cannot be
 * checked, only its place in the chain.
 */
export function checkLink(
  row: AuditRow,
  expectedSeq: bigint,
  prevHash: string,
  mac: AuditMac,
): BrokenLink | undefined {
  if (BigInt(row.seq) !== expectedSeq) {
    return {
      seq: row.seq,
      reason: `expected event #${expectedSeq} but found #${row.seq}: events are missing`,
    };
  }
  if (row.prev_hash !== prevHash) {
    return { seq: row.seq, reason: "its previous-hash does not match the previous event's hash" };
  }
  const micros = row.occurred_us ?? microsOf(new Date(row.occurred_at));
  if (isKeyed(row.hash)) {
    if (mac && macEvent(row, micros, mac) !== row.hash) {
      return {
        seq: row.seq,
        reason:
          "its contents, seq, tenant or time do not match its MAC under the tenant's audit key: the event was altered, renumbered, copied from another tenant or forged",
      };
    }
    return undefined;
  }
  if (isKeyed(prevHash)) {
    return {
      seq: row.seq,
      reason: 'an unkeyed (v1) event follows keyed ones: the chain was rewritten without the audit key',
    };
  }
  // v1 events were written from JS Dates, so a stored time below a millisecond is an edit the
  // millisecond encoding cannot see.
  if (BigInt(micros) % 1000n !== 0n) {
    return { seq: row.seq, reason: 'its time was altered below a millisecond' };
  }
  if (hashEvent(row) !== row.hash) {
    return { seq: row.seq, reason: 'its contents do not match its hash: the event was altered' };
  }
  return undefined;
}
