// SQL for memberships (a user in an organisation) and the roles granted within them.
import type { Queryable } from '../core/sql.js';
import type { RoleRow } from './roles.queries.js';

export interface MembershipRow {
  id: string;
  organisation_id: string;
  user_id: string;
  created_at: Date;
}

const COLUMNS = 'id, organisation_id, user_id, created_at';

export function createMembershipsQueries(tx: Queryable) {
  return {
    /** Undefined when the user is already a member. */
    async insert(
      tenantId: string,
      row: Pick<MembershipRow, 'id' | 'organisation_id' | 'user_id'>,
    ): Promise<MembershipRow | undefined> {
      const { rows } = await tx.query<MembershipRow>(
        `INSERT INTO memberships (tenant_id, id, organisation_id, user_id) VALUES ($1, $2, $3, $4)
         ON CONFLICT (tenant_id, organisation_id, user_id) DO NOTHING RETURNING ${COLUMNS}`,
        [tenantId, row.id, row.organisation_id, row.user_id],
      );
      return rows[0];
    },
    async byId(id: string): Promise<MembershipRow | undefined> {
      const { rows } = await tx.query<MembershipRow>(`SELECT ${COLUMNS} FROM memberships WHERE id = $1`, [
        id,
      ]);
      return rows[0];
    },
    async delete(id: string): Promise<boolean> {
      const { rowCount } = await tx.query('DELETE FROM memberships WHERE id = $1', [id]);
      return rowCount > 0;
    },
    async pageInOrganisation(
      organisationId: string,
      after: string | undefined,
      limit: number,
    ): Promise<MembershipRow[]> {
      const { rows } = await tx.query<MembershipRow>(
        `SELECT ${COLUMNS} FROM memberships
          WHERE organisation_id = $1 AND ($2::uuid IS NULL OR id > $2::uuid) ORDER BY id LIMIT $3`,
        [organisationId, after ?? null, limit],
      );
      return rows;
    },
    async pageOfUser(userId: string, after: string | undefined, limit: number): Promise<MembershipRow[]> {
      const { rows } = await tx.query<MembershipRow>(
        `SELECT ${COLUMNS} FROM memberships
          WHERE user_id = $1 AND ($2::uuid IS NULL OR id > $2::uuid) ORDER BY id LIMIT $3`,
        [userId, after ?? null, limit],
      );
      return rows;
    },
    /** Whether the tenant has this user (memberships reference users by id only). */
    async userExists(userId: string): Promise<boolean> {
      const { rowCount } = await tx.query('SELECT 1 FROM users WHERE id = $1', [userId]);
      return rowCount > 0;
    },
    /** True when the role was newly granted. */
    async grantRole(tenantId: string, membershipId: string, roleId: string): Promise<boolean> {
      const { rowCount } = await tx.query(
        `INSERT INTO membership_roles (tenant_id, membership_id, role_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
        [tenantId, membershipId, roleId],
      );
      return rowCount > 0;
    },
    /** True when the member had the role. */
    async revokeRole(membershipId: string, roleId: string): Promise<boolean> {
      const { rowCount } = await tx.query(
        'DELETE FROM membership_roles WHERE membership_id = $1 AND role_id = $2',
        [membershipId, roleId],
      );
      return rowCount > 0;
    },
    async rolesPage(membershipId: string, after: string | undefined, limit: number): Promise<RoleRow[]> {
      const { rows } = await tx.query<RoleRow>(
        `SELECT r.id, r.name, r.description
           FROM membership_roles mr JOIN roles r ON r.tenant_id = mr.tenant_id AND r.id = mr.role_id
          WHERE mr.membership_id = $1 AND ($2::uuid IS NULL OR r.id > $2::uuid) ORDER BY r.id LIMIT $3`,
        [membershipId, after ?? null, limit],
      );
      return rows;
    },
  };
}
