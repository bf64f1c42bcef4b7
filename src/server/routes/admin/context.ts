// What every admin route shares: its Fastify type (TypeBox-typed), and running its work in one
// tenant-scoped transaction as the verified caller.
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type {
  FastifyBaseLogger,
  FastifyInstance,
  FastifyRequest,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from 'fastify';
import type { Queryable } from '../../../core/sql.js';
import type { Database } from '../../../storage/db/database.js';
import { withTenant } from '../../../storage/db/database.js';
import { type AdminRequestContext, adminContextOf } from '../../plugins/admin-auth.js';

export type AdminApi = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

/** What running a route's work in the request's tenant needs: the database. */
export interface TenantScope {
  db: Database;
}

/**
 * Runs `fn` in one transaction scoped to the request's tenant (row-level security applies), so a
 * change and its audit event commit together and a rejected request writes nothing.
 */
export function inTenant<T>(
  scope: TenantScope,
  request: FastifyRequest,
  fn: (tx: Queryable, context: AdminRequestContext) => Promise<T>,
): Promise<T> {
  const context = adminContextOf(request);
  return withTenant(scope.db, context.tenant.id, (tx) => fn(tx, context));
}
