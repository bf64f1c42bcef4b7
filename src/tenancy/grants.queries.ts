// SQL behind resolveGrants: the roles a user (per organisation) or a client holds, each with the
// permissions it carries on one API resource (null when it carries none there).
import type { Queryable } from '../core/sql.js';

export interface GrantRow {
  role: string;
  permission: string | null;
  /** The organisation the role was granted in (users only). */
  organisation_id?: string;
}

/** Roles joined to their permissions on the resource named by indicator `$n`. */
const PERMISSIONS_ON_RESOURCE = (indicatorParam: string) => `
  LEFT JOIN (role_permissions rp
             JOIN permissions p ON p.tenant_id = rp.tenant_id AND p.id = rp.permission_id
             JOIN api_resources a ON a.tenant_id = p.tenant_id AND a.id = p.resource_id AND a.indicator = ${indicatorParam})
    ON rp.tenant_id = r.tenant_id AND rp.role_id = r.id`;

export function createGrantsQueries(tx: Queryable) {
  return {
    /** A user's grants within one organisation, or across all their memberships when it is null. */
    async ofUser(userId: string, organisationId: string | null, indicator: string): Promise<GrantRow[]> {
      const { rows } = await tx.query<GrantRow>(
        `SELECT r.name AS role, p.name AS permission, m.organisation_id
           FROM memberships m
           JOIN membership_roles mr ON mr.tenant_id = m.tenant_id AND mr.membership_id = m.id
           JOIN roles r ON r.tenant_id = mr.tenant_id AND r.id = mr.role_id
           ${PERMISSIONS_ON_RESOURCE('$3')}
          WHERE m.user_id = $1 AND ($2::uuid IS NULL OR m.organisation_id = $2::uuid)`,
        [userId, organisationId, indicator],
      );
      return rows;
    },
    async isMember(userId: string, organisationId: string): Promise<boolean> {
      const { rowCount } = await tx.query(
        'SELECT 1 FROM memberships WHERE user_id = $1 AND organisation_id = $2',
        [userId, organisationId],
      );
      return rowCount > 0;
    },
    async ofClient(clientId: string, indicator: string): Promise<GrantRow[]> {
      const { rows } = await tx.query<GrantRow>(
        `SELECT r.name AS role, p.name AS permission
           FROM client_roles cr
           JOIN roles r ON r.tenant_id = cr.tenant_id AND r.id = cr.role_id
           ${PERMISSIONS_ON_RESOURCE('$2')}
          WHERE cr.client_id = $1`,
        [clientId, indicator],
      );
      return rows;
    },
  };
}
