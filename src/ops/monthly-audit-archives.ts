// The monthly audit archive (ORTHID_AUDIT_EXPORT_SCHEDULE): the previous calendar month (UTC) of
// every tenant's audit events, one signed bundle each, skipped where that month is already archived.
import { auditArchivePrefix, exportAuditArchive } from '../bundles/audit-archive.js';
import { keyTime } from '../bundles/bundle-deps.js';
import type { OrthId } from './orthid.js';

/** What the monthly archives use of a deployment. */
export type MonthlyArchivesDeps = Pick<
  OrthId,
  'config' | 'clock' | 'log' | 'objects' | 'tenants' | 'db' | 'tenantKeys'
>;

export interface MonthlyArchiveOutcome {
  tenant: string;
  outcome: 'exported' | 'already_archived' | 'skipped' | 'failed';
  key?: string;
  events?: number;
  /** For `failed`: the error code (never a message that could carry data). */
  code?: string;
}

/** The calendar month (UTC) before the one `now` falls in: [from, to). */
export function previousMonth(now: Date): { from: Date; to: Date } {
  const to = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  const from = new Date(Date.UTC(to.getUTCFullYear(), to.getUTCMonth() - 1, 1));
  return { from, to };
}

/**
 * Archives the previous month for every tenant. A tenant created after the month ended, or whose
 * keys were destroyed, has nothing to archive; one whose archive of exactly that range exists
 * (from an earlier run or `orthid audit export --from --to`) is left alone, so a rerun is harmless.
 * One tenant's failure is logged and reported, and the others still run.
 */
export async function archivePreviousMonth(
  app: MonthlyArchivesDeps,
  actor = 'schedule',
): Promise<MonthlyArchiveOutcome[]> {
  const range = previousMonth(app.clock.now());
  const outcomes: MonthlyArchiveOutcome[] = [];
  for (const tenant of await app.tenants.list()) {
    // Only active and disabled tenants still hold readable logs (a shredded one has lost its keys).
    const readable = tenant.status === 'active' || tenant.status === 'disabled';
    if (!readable || Date.parse(tenant.createdAt) >= range.to.getTime()) {
      outcomes.push({ tenant: tenant.slug, outcome: 'skipped' });
      continue;
    }
    try {
      const prefix = `${auditArchivePrefix(tenant)}${keyTime(range.from)}_${keyTime(range.to)}_`;
      const existing = await app.objects.list(prefix, { limit: 1 });
      if (existing.items.length > 0) {
        outcomes.push({ tenant: tenant.slug, outcome: 'already_archived', key: existing.items[0]!.key });
        continue;
      }
      const archive = await exportAuditArchive(
        { ...app, publicUrl: app.config.publicUrl },
        tenant,
        range,
        actor,
      );
      outcomes.push({ tenant: tenant.slug, outcome: 'exported', key: archive.key, events: archive.events });
    } catch (err) {
      app.log.error({ err, tenant: tenant.slug }, 'monthly audit archive failed');
      const code = (err as { code?: unknown }).code;
      outcomes.push({
        tenant: tenant.slug,
        outcome: 'failed',
        code: typeof code === 'string' ? code : 'internal.unexpected',
      });
    }
  }
  return outcomes;
}
