// Admin API: the tenant's audit log, newest first, with details opened and filtered by actor,
// action and time on the server; and the verification status of its hash chain.
import { Type } from '@sinclair/typebox';
import { verifyAnchored } from '../../../audit/audit-checkpoints.js';
import { type AuditFilter, readAudit } from '../../../audit/audit-log.js';
import { OrthIdError } from '../../../core/errors.js';
import type { TenantKeys } from '../../../crypto/tenant-keys.js';
import type { ObjectStore } from '../../../storage/objects/object-store.js';
import { type AdminApi, inTenant, type TenantScope } from './context.js';
import { AuditEvent, PageOf, PageQuery, Params, PROBLEMS, Text, Timestamp } from './schemas.js';

// At most 15 digits: every such number is exact as a JavaScript number and fits PostgreSQL's bigint.
const Seq = Type.String({
  pattern: '^[1-9][0-9]{0,14}$',
  description: 'The `next` of the previous page (an event seq).',
});

const AuditQuery = Type.Object({
  ...PageQuery(Seq).properties,
  actor: Type.Optional(
    Text({ minLength: 1, maxLength: 400, description: 'Only events by this actor, e.g. user:<id>.' }),
  ),
  action: Type.Optional(
    Type.String({
      pattern: '^[a-z0-9_]+(?:\\.[a-z0-9_]+)*(?:\\.\\*)?$',
      maxLength: 200,
      description: 'Only events with this action (user.disabled), or under a prefix (user.*).',
    }),
  ),
  from: Type.Optional(Type.String({ format: 'date-time', description: 'Events at or after this time.' })),
  to: Type.Optional(Type.String({ format: 'date-time', description: 'Events before this time.' })),
  sort: Type.Optional(
    Type.Union([Type.Literal('-occurred'), Type.Literal('occurred')], {
      default: '-occurred',
      description:
        "Newest first (-occurred, the default) or oldest first (occurred); the cursor is the last event's seq, read with the same sort.",
    }),
  ),
});

const Checkpoint = Type.Object({
  key: Type.String(),
  seq: Type.String(),
  head: Type.String(),
  at: Timestamp,
});
const ChainStatus = Type.Object({
  ok: Type.Boolean({ description: 'True when every link holds and matches every checkpoint.' }),
  events: Type.Integer({ description: 'Events verified before the first broken link (all, when intact).' }),
  headSeq: Type.String({ description: 'The newest event in the log ("0" when empty).' }),
  headHash: Type.String(),
  checkpoints: Type.Integer({ description: 'How many stored checkpoints were held against the chain.' }),
  checkpoint: Type.Optional(Checkpoint),
  broken: Type.Optional(
    Type.Object(
      { seq: Type.String(), reason: Type.String() },
      { description: 'The first broken link: the event and why it does not hold.' },
    ),
  ),
  code: Type.Optional(Type.Literal('audit.chain_broken')),
  message: Type.Optional(Type.String()),
});

/** What the routes use: the database for the tenant's transaction, and their services. */
export interface AuditEventRoutesDeps extends TenantScope {
  tenantKeys: TenantKeys;
  /** Where the chain's checkpoints are kept. */
  objects: ObjectStore;
}

function filterOf(query: {
  actor?: string;
  action?: string;
  from?: string;
  to?: string;
}): AuditFilter | undefined {
  const filter: AuditFilter = {
    ...(query.actor === undefined ? {} : { actor: query.actor }),
    ...(query.action === undefined ? {} : { action: query.action }),
    ...(query.from === undefined ? {} : { from: new Date(query.from) }),
    ...(query.to === undefined ? {} : { to: new Date(query.to) }),
  };
  if (filter.from && filter.to && filter.from >= filter.to) {
    throw new OrthIdError('request.invalid', '"from" must be before "to".', {
      details: { fields: [{ path: '/from', message: 'must be before to' }] },
    });
  }
  return Object.keys(filter).length === 0 ? undefined : filter;
}

export function registerAuditEventRoutes(api: AdminApi, deps: AuditEventRoutesDeps): void {
  api.get(
    '/audit-events',
    {
      schema: {
        tags: ['audit'],
        summary:
          'List audit events, newest (or with sort=occurred oldest) first, optionally by actor, action and time range',
        params: Params({}),
        querystring: AuditQuery,
        response: { 200: PageOf(AuditEvent), ...PROBLEMS },
      },
    },
    (request) => {
      const { limit, after, sort } = request.query;
      const filter = filterOf(request.query);
      const oldestFirst = sort === 'occurred';
      return inTenant(deps, request, async (tx, { tenant }) => {
        const keyring = await deps.tenantKeys.forTenant(tx, tenant.id);
        // The seq orders events as they were appended: the cursor is the last one's, either way.
        const events = await readAudit(tx, keyring, {
          limit: limit + 1,
          ...(after ? (oldestFirst ? { after: Number(after) } : { before: Number(after) }) : {}),
          ...(oldestFirst ? { oldestFirst } : {}),
          ...(filter ? { filter } : {}),
        });
        const items = events.slice(0, limit);
        return { items, next: events.length > limit ? String(items.at(-1)!.seq) : null };
      });
    },
  );

  api.get(
    '/audit/chain',
    {
      schema: {
        tags: ['audit'],
        summary:
          "Verify the audit log's hash chain and its checkpoints: intact, or the first broken link named",
        params: Params({}),
        response: { 200: ChainStatus, ...PROBLEMS },
      },
    },
    // Read-only: unlike `orthid audit verify`, it writes no new checkpoint.
    (request) =>
      inTenant(deps, request, async (tx, { tenant }) =>
        verifyAnchored(tx, await deps.tenantKeys.forTenant(tx, tenant.id), deps.objects),
      ),
  );
}
