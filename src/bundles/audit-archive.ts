// Audit archives: a tenant's audit events in a time range as gzip NDJSON, with the chain's head
// hash, verification result and a checkpoint of the head, written to object storage as a signed
// bundle for auditors.
import { gzipSync } from 'node:zlib';
import { verifyAnchored, writeCheckpoint } from '../audit/audit-checkpoints.js';
import { type AuditEvent, appendAudit, readAudit } from '../audit/audit-log.js';
import { OrthIdError } from '../core/errors.js';
import type { TenantKeyring } from '../crypto/tenant-keys.js';
import { type Queryable, withTenant } from '../storage/db/database.js';
import { issuerFor, type Tenant } from '../tenancy/tenants.js';
import { type BundleDeps, keyTime } from './bundle-deps.js';
import { activeBundleKey } from './tenant-bundle-keys.js';
import { writeBundle } from './write-bundle.js';

export interface AuditArchiveRange {
  /** Inclusive; the beginning of the log when absent. */
  from?: Date;
  /** Exclusive; the time of the export when absent. */
  to?: Date;
}

export interface AuditArchiveInfo {
  key: string;
  size: number;
  sha256: string;
  createdAt: string;
  from: string | null;
  to: string;
  events: number;
  chain: { ok: boolean; events: number; headHash: string };
}

export interface StoredAuditArchive {
  key: string;
  size: number;
  storedAt: string;
}

const PAGE = 1000;

/** Parses `--from`/`--to`: an ISO date or date-time; undefined stays undefined. */
export function archiveDate(value: string | undefined, name: 'from' | 'to'): Date | undefined {
  if (value === undefined) return undefined;
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) {
    throw new OrthIdError(
      'request.invalid',
      `--${name} must be a date such as 2025-01-31 or 2025-01-31T12:00:00Z.`,
    );
  }
  return date;
}

export function auditArchivePrefix(tenant: Pick<Tenant, 'slug'>): string {
  return `audit-archives/${tenant.slug}/`;
}

/** Every event with `from <= occurredAt < to`, in chain order (oldest first). */
export async function auditEventsInRange(
  tx: Queryable,
  keyring: TenantKeyring,
  from: Date | undefined,
  to: Date,
  keep: (event: AuditEvent) => boolean = () => true,
): Promise<AuditEvent[]> {
  const found: AuditEvent[] = [];
  let before: number | undefined;
  for (;;) {
    const page = await readAudit(tx, keyring, { limit: PAGE, ...(before === undefined ? {} : { before }) });
    for (const event of page) {
      const at = Date.parse(event.occurredAt);
      if (at < to.getTime() && (from === undefined || at >= from.getTime()) && keep(event)) found.push(event);
    }
    const oldest = page.at(-1);
    if (
      page.length < PAGE ||
      !oldest ||
      (from !== undefined && Date.parse(oldest.occurredAt) < from.getTime())
    )
      break;
    before = oldest.seq;
  }
  return found.reverse();
}

/**
 * Writes the tenant's events in `range` to `audit-archives/<slug>/<from>_<to>_<time>.bundle` and
 * records an `audit.exported` event (which the archive itself does not contain).
 */
export async function exportAuditArchive(
  deps: BundleDeps,
  tenant: Tenant,
  range: AuditArchiveRange,
  actor: string,
): Promise<AuditArchiveInfo> {
  const now = deps.clock.now();
  const to = range.to ?? now;
  if (range.from && range.from.getTime() >= to.getTime()) {
    throw new OrthIdError('request.invalid', '--from must be earlier than --to.');
  }
  return withTenant(deps.db, tenant.id, async (tx) => {
    const keyring = await deps.tenantKeys.forTenant(tx, tenant.id);
    const key = await activeBundleKey(tx, keyring, now);
    const events = await auditEventsInRange(tx, keyring, range.from, to);
    const { checkpoint: _matched, ...chain } = await verifyAnchored(tx, keyring, deps.objects);
    // The archive carries the head it was taken at, anchored in the object store as well.
    const checkpoint = chain.ok ? await writeCheckpoint(tx, keyring, deps.objects, deps.clock) : undefined;
    const ndjson = events.map((e) => `${JSON.stringify(e)}\n`).join('');
    const chainFile = {
      tenant: { id: tenant.id, slug: tenant.slug },
      from: range.from?.toISOString() ?? null,
      to: to.toISOString(),
      events: events.length,
      firstSeq: events[0]?.seq ?? null,
      lastSeq: events.at(-1)?.seq ?? null,
      lastEventHash: events.at(-1)?.hash ?? null,
      chain,
      checkpoint: checkpoint ?? null,
    };
    const checkpointFile = checkpoint
      ? [
          {
            path: 'checkpoint.jws',
            bytes: Buffer.from(await readAll(deps, checkpoint.key)),
            contentType: 'application/jose',
          },
        ]
      : [];
    const { bytes } = await writeBundle(
      {
        kind: 'audit-archive',
        tenant,
        issuer: issuerFor(deps.publicUrl, tenant.slug),
        createdAt: now,
        subject: { from: chainFile.from ?? 'start', to: chainFile.to },
        files: [
          { path: 'events.ndjson.gz', bytes: gzipSync(ndjson), contentType: 'application/x-ndjson+gzip' },
          {
            path: 'chain.json',
            bytes: Buffer.from(`${JSON.stringify(chainFile, null, 2)}\n`),
            contentType: 'application/json',
          },
          ...checkpointFile,
        ],
      },
      key,
    );
    const objectKey = `${auditArchivePrefix(tenant)}${range.from ? keyTime(range.from) : 'start'}_${keyTime(to)}_${keyTime(now)}.bundle`;
    const info = await deps.objects.put(objectKey, bytes, { contentType: 'application/x-tar' });
    await appendAudit(
      tx,
      keyring,
      {
        actor,
        action: 'audit.exported',
        target: `object:${objectKey}`,
        outcome: 'success',
        details: {
          events: events.length,
          from: chainFile.from,
          to: chainFile.to,
          chainOk: chain.ok,
          sha256: info.sha256,
        },
      },
      deps.clock,
    );
    return {
      key: objectKey,
      size: info.size,
      sha256: info.sha256,
      createdAt: now.toISOString(),
      from: chainFile.from,
      to: chainFile.to,
      events: events.length,
      chain: { ok: chain.ok, events: chain.events, headHash: chain.headHash },
    };
  });
}

async function readAll(deps: Pick<BundleDeps, 'objects'>, key: string): Promise<Buffer> {
  const { body } = await deps.objects.get(key);
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The tenant's stored audit archives, oldest key first. */
export async function listAuditArchives(
  deps: Pick<BundleDeps, 'objects'>,
  tenant: Pick<Tenant, 'slug'>,
): Promise<StoredAuditArchive[]> {
  const out: StoredAuditArchive[] = [];
  let cursor: string | undefined;
  do {
    const page = await deps.objects.list(auditArchivePrefix(tenant), cursor === undefined ? {} : { cursor });
    for (const item of page.items) {
      out.push({ key: item.key, size: item.size, storedAt: item.lastModified.toISOString() });
    }
    cursor = page.cursor;
  } while (cursor !== undefined);
  return out;
}
