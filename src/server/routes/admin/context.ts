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
import { OrthIdError } from '../../../core/errors.js';
import type { Queryable } from '../../../core/sql.js';
import type { Database } from '../../../storage/db/database.js';
import { withTenant } from '../../../storage/db/database.js';
import { ADMIN_PERMISSION, SYSTEM_TENANT_SLUG } from '../../../tenancy/admin-resource.js';
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

/**
 * Refuses (403 `auth.forbidden`, naming the permission) a caller that is not an administrator of
 * the system tenant: what concerns the deployment (tenants, backups) is theirs alone.
 */
export function requireSystemAdmin(request: FastifyRequest, what: string): void {
  const { principal } = adminContextOf(request);
  if (principal.issuer.slug === SYSTEM_TENANT_SLUG) return;
  throw new OrthIdError(
    'auth.forbidden',
    `${what} needs ${ADMIN_PERMISSION} on the "${SYSTEM_TENANT_SLUG}" tenant; a token from "${principal.issuer.slug}" manages that tenant only.`,
    { details: { permission: ADMIN_PERMISSION, tenant: SYSTEM_TENANT_SLUG } },
  );
}
