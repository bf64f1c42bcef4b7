// Liveness (/healthz: the process answers, until it exits) and readiness (/readyz: not shutting
// down, the database is reachable, the schema is current and the keystore is unsealed).
// Orchestrators route traffic on /readyz.
import type { FastifyInstance } from 'fastify';
import { OrthIdError } from '../../core/errors.js';
import type { KeyCustody } from '../../crypto/key-custody.js';
import type { ManagedKeystore } from '../../crypto/managed-keystore.js';
import type { Database } from '../../storage/db/database.js';
import { classifyDatabaseError } from '../../storage/db/database-errors.js';
import { migrationStatus } from '../../storage/db/migrate.js';
import { problemFrom } from '../plugins/problem-details.js';

type Check = { ok: boolean; detail?: string };

async function check(fn: () => Promise<string | undefined>): Promise<Check> {
  try {
    const detail = await fn();
    return detail === undefined ? { ok: true } : { ok: false, detail };
  } catch (error) {
    // A missing grant or role says so, with its fix; anything else unknown stays unnamed.
    const known = error instanceof OrthIdError ? error : classifyDatabaseError(error);
    return { ok: false, detail: known ? known.message : 'unreachable' };
  }
}

/** What readiness checks: the database, the keystore and the custody of the root keys. */
export interface HealthDeps {
  db: Database;
  keystore: ManagedKeystore;
  custody: KeyCustody;
}

export function registerHealthRoutes(
  app: FastifyInstance,
  orthid: HealthDeps,
  shutdown: { readonly draining: boolean },
): void {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (request, reply) => {
    // First thing a shutdown changes, so load balancers stop sending before the listener closes.
    if (shutdown.draining) {
      const problem = problemFrom(
        new OrthIdError('server.shutting_down', 'OrthID is shutting down; send requests to another replica.'),
        request.url,
      );
      return reply
        .status(503)
        .type('application/problem+json')
        .send({ ...problem, checks: { shutdown: { ok: false, detail: 'shutting down' } } });
    }
    const checks = {
      database: await check(async () => {
        await orthid.db.ownerQuery('SELECT 1');
        return undefined;
      }),
      migrations: await check(async () => {
        const status = await migrationStatus(orthid.db);
        return status.pending.length === 0 ? undefined : `schema ${status.current} of ${status.latest}`;
      }),
      keystore: await check(async () => {
        await orthid.keystore.check();
        // Under BYOK: the token is present and logged in, or the KMS key answers.
        if (orthid.custody !== orthid.keystore) await orthid.custody.check();
        return undefined;
      }),
    };
    const ok = Object.values(checks).every((c) => c.ok);
    if (ok) return { status: 'ready', checks };
    const code =
      checks.database.ok && !checks.keystore.ok ? 'keystore.custody_unavailable' : 'db.unavailable';
    const problem = problemFrom(new OrthIdError(code, 'OrthID is not ready.'), request.url);
    return reply
      .status(503)
      .type('application/problem+json')
      .send({ ...problem, checks });
  });
}
