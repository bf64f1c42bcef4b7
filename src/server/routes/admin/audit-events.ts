// Admin API: the tenant's audit log, newest first, with details opened.
import { Type } from '@sinclair/typebox';
import { readAudit } from '../../../audit/audit-log.js';
import type { TenantKeys } from '../../../crypto/tenant-keys.js';
import { type AdminApi, inTenant, type TenantScope } from './context.js';
import { AuditEvent, PageOf, PageQuery, Params, PROBLEMS } from './schemas.js';

// At most 15 digits: every such number is exact as a JavaScript number and fits PostgreSQL's bigint.
const Seq = Type.String({
  pattern: '^[1-9][0-9]{0,14}$',
  description: 'The `next` of the previous page (an event seq).',
});

/** What the routes use: the database for the tenant's transaction, and their services. */
export interface AuditEventRoutesDeps extends TenantScope {
  tenantKeys: TenantKeys;
}

export function registerAuditEventRoutes(api: AdminApi, deps: AuditEventRoutesDeps): void {
  api.get(
    '/audit-events',
    {
      schema: {
        tags: ['audit'],
        summary: 'List audit events, newest first',
        params: Params({}),
        querystring: PageQuery(Seq),
        response: { 200: PageOf(AuditEvent), ...PROBLEMS },
      },
    },
    (request) =>
      inTenant(deps, request, async (tx, { tenant }) => {
        const { limit, after } = request.query;
        const keyring = await deps.tenantKeys.forTenant(tx, tenant.id);
        const events = await readAudit(tx, keyring, {
          limit: limit + 1,
          ...(after ? { before: Number(after) } : {}),
        });
        const items = events.slice(0, limit);
        return { items, next: events.length > limit ? String(items.at(-1)!.seq) : null };
      }),
  );
}
