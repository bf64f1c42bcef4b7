// SQL for users. Personal columns hold sealed ciphertext; email look-ups go through email_index.
import type { Queryable } from '../core/sql.js';

export interface UserRow {
  tenant_id: string;
  id: string;
  email_index: string;
  email: string;
  email_verified: boolean;
  name: string | null;
  phone: string | null;
  profile: string | null;
  password_hash: string | null;
  status: 'active' | 'disabled';
  created_at: Date;
  updated_at: Date;
}

const COLUMNS =
  'tenant_id, id, email_index, email, email_verified, name, phone, profile, password_hash, status, created_at, updated_at';

export function createUsersQueries(tx: Queryable) {
  return {
    async insert(row: Omit<UserRow, 'created_at' | 'updated_at'>): Promise<UserRow | undefined> {
      const { rows } = await tx.query<UserRow>(
        `INSERT INTO users (tenant_id, id, email_index, email, email_verified, name, phone, profile, password_hash, status)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (tenant_id, email_index) DO NOTHING RETURNING ${COLUMNS}`,
        [
          row.tenant_id,
          row.id,
          row.email_index,
          row.email,
          row.email_verified,
          row.name,
          row.phone,
          row.profile,
          row.password_hash,
          row.status,
        ],
      );
      return rows[0];
    },
    async byId(id: string): Promise<UserRow | undefined> {
      const { rows } = await tx.query<UserRow>(`SELECT ${COLUMNS} FROM users WHERE id = $1`, [id]);
      return rows[0];
    },
    async byEmailIndex(emailIndex: string): Promise<UserRow | undefined> {
      const { rows } = await tx.query<UserRow>(`SELECT ${COLUMNS} FROM users WHERE email_index = $1`, [emailIndex]);
      return rows[0];
    },
    async page(after: string | undefined, limit: number): Promise<UserRow[]> {
      const { rows } = await tx.query<UserRow>(
        `SELECT ${COLUMNS} FROM users WHERE ($1::uuid IS NULL OR id > $1::uuid) ORDER BY id LIMIT $2`,
        [after ?? null, limit],
      );
      return rows;
    },
    async count(): Promise<number> {
      const { rows } = await tx.query<{ n: string }>('SELECT count(*) AS n FROM users');
      return Number(rows[0]!.n);
    },
  };
}
