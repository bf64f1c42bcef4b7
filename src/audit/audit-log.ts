// Appends security events to a tenant's hash-chained log inside the caller's transaction, walks
// the chain to verify it, and reads it back with personal details opened.
import type { Clock } from '../core/clock.js';
import { systemClock } from '../core/clock.js';
import { newId } from '../core/ids.js';
import type { Queryable } from '../core/sql.js';
import type { TenantKeyring } from '../crypto/tenant-keys.js';
import { type AuditRow, createAuditQueries } from './audit.queries.js';
import { type BrokenLink, checkLink, GENESIS_HASH, hashEvent } from './audit-chain.js';

export interface AuditInput {
  /** Who acted: `user:<id>`, `client:<id>`, `cli`, `system`. */
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
  const full = { ...row, hash: hashEvent(row) };
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

/** Newest events first; pass the last seq seen as `before` for the next page. */
export async function readAudit(
  tx: Queryable,
  keyring: TenantKeyring,
  options: { limit?: number; before?: number } = {},
): Promise<AuditEvent[]> {
  const rows = await createAuditQueries(tx).pageBefore(
    options.before === undefined ? undefined : String(options.before),
    Math.min(options.limit ?? 50, 1000),
  );
  return rows.map((row) => openRow(keyring, row));
}

/**
 * Walks the whole chain in seq order, a page at a time (constant memory), and names the first
 * broken link. Needs no keys: the chain covers the stored ciphertext.
 */
export async function verifyAuditChain(tx: Queryable, pageSize = 1000): Promise<ChainReport> {
  const queries = createAuditQueries(tx);
  let prevHash = GENESIS_HASH;
  let expected = 1n;
  let events = 0;
  for (;;) {
    const page = await queries.pageAfter(String(expected - 1n), pageSize);
    for (const row of page) {
      const broken = checkLink(row, expected, prevHash);
      if (broken) return { ok: false, events, headHash: prevHash, broken };
      prevHash = row.hash;
      expected += 1n;
      events += 1;
    }
    if (page.length < pageSize) return { ok: true, events, headHash: prevHash };
  }
}
