// oidc-provider's storage adapter for one tenant: exactly the contract the provider defines
// (upsert, find, findByUid, findByUserCode, consume, destroy, revokeByGrantId), behind RLS.
import type { Database } from '../storage/db/database.js';
import { withTenantStatements } from '../storage/db/database.js';
import { createOidcPayloadsQueries, type PayloadRow } from './oidc-payloads.queries.js';

type Payload = Record<string, unknown>;

function present(row: PayloadRow | undefined): Payload | undefined {
  if (!row) return undefined;
  return row.consumed_at
    ? { ...row.payload, consumed: Math.floor(new Date(row.consumed_at).getTime() / 1000) }
    : row.payload;
}

/**
 * Clients are not stored here but in oidc_clients, so a lookup on the Client model goes to
 * `findClient` instead.
 */
export function createPostgresAdapter(
  db: Database,
  tenantId: string,
  findClient: (clientId: string) => Promise<Payload | undefined>,
) {
  // Every adapter operation is one statement, so each runs as its own transaction: one round
  // trip to PostgreSQL instead of BEGIN / tenant / statement / COMMIT.
  const run = <T>(fn: (q: ReturnType<typeof createOidcPayloadsQueries>) => Promise<T>) =>
    withTenantStatements(db, tenantId, (q) => fn(createOidcPayloadsQueries(q)));

  return class PostgresAdapter {
    constructor(readonly model: string) {}

    async upsert(id: string, payload: Payload, expiresIn?: number): Promise<void> {
      const str = (key: string) => (typeof payload[key] === 'string' ? (payload[key] as string) : null);
      await run((q) =>
        q.upsert(tenantId, {
          model: this.model,
          id,
          payload,
          grantId: str('grantId'),
          uid: str('uid'),
          userCode: str('userCode'),
          accountId: str('accountId'),
          expiresAt: expiresIn ? new Date(Date.now() + expiresIn * 1000) : null,
        }),
      );
    }

    async find(id: string): Promise<Payload | undefined> {
      if (this.model === 'Client') return findClient(id);
      return present(await run((q) => q.find(this.model, id)));
    }

    async findByUid(uid: string): Promise<Payload | undefined> {
      return present(await run((q) => q.findBy(this.model, 'uid', uid)));
    }

    async findByUserCode(userCode: string): Promise<Payload | undefined> {
      return present(await run((q) => q.findBy(this.model, 'user_code', userCode)));
    }

    async consume(id: string): Promise<void> {
      await run((q) => q.consume(this.model, id));
    }

    async destroy(id: string): Promise<void> {
      await run((q) => q.destroy(this.model, id));
    }

    async revokeByGrantId(grantId: string): Promise<void> {
      await run((q) => q.revokeByGrantId(grantId));
    }
  };
}
