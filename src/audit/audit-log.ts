// Appends security events to a tenant's keyed, chained log inside the caller's transaction, walks
// the chain to verify it, and reads it back with personal details opened.
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { newId } from '../core/ids.js';
import type { Queryable } from '../core/sql.js';
import type { TenantKeyring } from '../crypto/tenant-keys.js';
import { type AuditFilter, type AuditRow, createAuditQueries } from './audit.queries.js';
import {
  type AuditMac,
  type BrokenLink,
  checkLink,
  GENESIS_HASH,
  KEYED_PREFIX,
  macEvent,
  microsOf,
} from './audit-chain.js';

export type { AuditFilter };

export interface AuditInput {
  /** Who acted: `user:<id>`, `client:<id>`, `cli`, `cli:control` (through a running server's control socket), `system`. */
  actor: string;
  /** What happened, dotted: `tenant.created`, `user.signed_in`, `backup.drill`. */
  action: string;
  target?: string;
  outcome: 'success' | 'failure';
  /** Personal data (IP, user agent, details) is sealed before it is stored. */
  ip?: string;
  userAgent?: string;
  details?: Record<string, unknown>;
}

export interface AuditEvent {
  seq: number;
  id: string;
  occurredAt: string;
  actor: string;
  action: string;
  target: string | null;
  outcome: 'success' | 'failure';
  ip: string | null;
  userAgent: string | null;
  details: Record<string, unknown> | null;
  hash: string;
}

export interface ChainReport {
  ok: boolean;
  events: number;
  headHash: string;
  broken?: BrokenLink;
}

const TABLE = 'audit_events';

/** Appends one event; `tx` must be scoped to the keyring's tenant. */
export async function appendAudit(
  tx: Queryable,
  keyring: TenantKeyring,
  input: AuditInput,
  clock: Clock = systemClock,
): Promise<AuditEvent> {
  const queries = createAuditQueries(tx);
  await queries.lockChain(keyring.tenantId);
  const head = await queries.head();
  const id = newId();
  const sealed = (column: string, value: string | undefined) =>
    value === undefined ? null : keyring.seal(value, { table: TABLE, column, rowId: id });
  const row: Omit<AuditRow, 'hash'> = {
    tenant_id: keyring.tenantId,
    seq: String(head ? BigInt(head.seq) + 1n : 1n),
    id,
    occurred_at: clock.now(),
    actor: input.actor,
    action: input.action,
    target: input.target ?? null,
    ip: sealed('ip', input.ip),
    user_agent: sealed('user_agent', input.userAgent),
    outcome: input.outcome,
    details: sealed('details', input.details === undefined ? undefined : JSON.stringify(input.details)),
    prev_hash: head?.hash ?? GENESIS_HASH,
  };
  // Keyed (v2): the link needs the audit key, which a shredded tenant no longer has.
  const full = { ...row, hash: macEvent(row, microsOf(row.occurred_at), keyring.auditMac) };
  await queries.insert(full);
  return present(full, input);
}

function present(row: AuditRow, opened: Pick<AuditInput, 'ip' | 'userAgent' | 'details'>): AuditEvent {
  return {
    seq: Number(row.seq),
    id: row.id,
    occurredAt: new Date(row.occurred_at).toISOString(),
    actor: row.actor,
    action: row.action,
    target: row.target,
    outcome: row.outcome,
    ip: opened.ip ?? null,
    userAgent: opened.userAgent ?? null,
    details: opened.details ?? null,
    hash: row.hash,
  };
}

function openRow(keyring: TenantKeyring, row: AuditRow): AuditEvent {
  const open = (column: string, value: string | null) =>
    value === null ? undefined : keyring.open(value, { table: TABLE, column, rowId: row.id });
  const details = open('details', row.details);
  return present(row, {
    ip: open('ip', row.ip),
    userAgent: open('user_agent', row.user_agent),
    // A shredded tenant's details read as the marker, not as JSON.
    details:
      details === undefined
        ? undefined
        : keyring.shredded
          ? { shredded: details }
          : (JSON.parse(details) as Record<string, unknown>),
  });
}

/**
 * Newest events first; pass the last seq seen as `before` for the next page. With `oldestFirst`,
 * in the order they happened, the last seq seen passed as `after`. `filter` narrows by the
 * columns stored in clear (actor, action, time); sealed details are never searched.
 */
export async function readAudit(
  tx: Queryable,
  keyring: TenantKeyring,
  options: {
    limit?: number;
    before?: number;
    after?: number;
    oldestFirst?: boolean;
    filter?: AuditFilter;
  } = {},
): Promise<AuditEvent[]> {
  const before = options.before === undefined ? undefined : String(options.before);
  const limit = Math.min(options.limit ?? 50, 1000);
  const queries = createAuditQueries(tx);
  const rows = options.oldestFirst
    ? await queries.searchAfter(
        options.after === undefined ? undefined : String(options.after),
        options.filter,
        limit,
      )
    : options.filter
      ? await queries.searchBefore(before, options.filter, limit)
      : await queries.pageBefore(before, limit);
  return rows.map((row) => openRow(keyring, row));
}

/** The keyring's audit MAC, or undefined when its keys were destroyed (links then go unchecked). */
function macOf(keyring: TenantKeyring): AuditMac {
  return keyring.shredded ? undefined : keyring.auditMac;
}

/**
 * The first keyed (v2) event after `afterSeq` through `throughSeq` whose MAC does not hold, over
 * the encoding the database builds; the walk in `verifyAuditChain` re-checks any it names with
 * audit-chain.ts's own.
 */
async function firstBadMac(
  tx: Queryable,
  mac: AuditMac,
  afterSeq: string,
  throughSeq: string | undefined,
  pageSize: number,
): Promise<string | undefined> {
  if (!mac) return undefined;
  const queries = createAuditQueries(tx);
  let after = afterSeq;
  for (;;) {
    const page = await queries.keyedAfter(after, throughSeq, pageSize);
    for (const row of page) {
      if (`${KEYED_PREFIX}${mac(row.canonical)}` !== row.hash) return row.seq;
    }
    if (page.length < pageSize) return undefined;
    after = page.at(-1)!.seq;
  }
}

/**
 * Checks the chain in seq order — the whole chain, or the events after `afterSeq` through
 * `throughSeq`, so a long chain can be checked as parts on several connections — and names the
 * first broken link. A part starts from the stored hash of event `afterSeq`, which the part before
 * it checks. The keyring's audit key checks the keyed (v2) links; the chain covers the stored
 * ciphertext, so nothing is decrypted.
 *
 * The database checks every seq, previous-hash and unkeyed (v1) hash in one pass; Node checks the
 * keyed links' MACs, which need the audit key. Where either finds an event that does not hold,
 * Node walks on from the event before it with audit-chain.ts's own encodings, a page at a time
 * (constant memory): it names the broken link, and stays the authority should the two encodings
 * ever disagree (a timestamp past year 9999).
 */
export async function verifyAuditChain(
  tx: Queryable,
  keyring: TenantKeyring,
  range: { afterSeq?: string; throughSeq?: string } = {},
  pageSize = 1000,
): Promise<ChainReport> {
  const queries = createAuditQueries(tx);
  const mac = macOf(keyring);
  const start = range.afterSeq ?? '0';
  const startHash = range.afterSeq === undefined ? GENESIS_HASH : await queries.hashAt(range.afterSeq);
  if (startHash === undefined) {
    const reason = `event #${start} is missing: events are missing`;
    return { ok: false, events: 0, headHash: GENESIS_HASH, broken: { seq: start, reason } };
  }
  const scan = await queries.scanChain(start, startHash, range.throughSeq);
  const badMac = await firstBadMac(tx, mac, start, scan.first_fault ?? range.throughSeq, pageSize);
  const fault =
    badMac === undefined
      ? scan.first_fault
      : scan.first_fault === null || BigInt(badMac) < BigInt(scan.first_fault)
        ? badMac
        : scan.first_fault;
  if (fault === null) {
    const headHash = scan.last_seq === null ? undefined : await queries.hashAt(scan.last_seq);
    return { ok: true, events: Number(scan.events), headHash: headHash ?? startHash };
  }
  // Every event before the fault holds, so they follow the start without a gap.
  const [before] = await queries.pageBefore(fault, 1);
  const resume = before && BigInt(before.seq) > BigInt(start) ? before : { seq: start, hash: startHash };
  let prevHash = resume.hash;
  let expected = BigInt(resume.seq) + 1n;
  let events = Number(expected - 1n - BigInt(start));
  const through = range.throughSeq === undefined ? undefined : BigInt(range.throughSeq);
  for (;;) {
    const page = await queries.pageAfter(String(expected - 1n), pageSize);
    for (const row of page) {
      if (through !== undefined && BigInt(row.seq) > through) return { ok: true, events, headHash: prevHash };
      const broken = checkLink(row, expected, prevHash, mac);
      if (broken) return { ok: false, events, headHash: prevHash, broken };
      prevHash = row.hash;
      expected += 1n;
      events += 1;
    }
    if (page.length < pageSize) return { ok: true, events, headHash: prevHash };
  }
}
