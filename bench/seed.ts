// The benchmark data generator: fills one tenant of a real PostgreSQL with users (sealed email
// and name plus the email's blind index, made by the tenant's real keyring in this process),
// organisations, one membership per user, and audit events whose hash chain verifies.
//
// Run: npm run bench:seed -- --users N --orgs M --audit-events K
//        [--database-url URL (default ORTHID_DATABASE_URL)] [--tenant SLUG (default bench)]
//        [--master-key SECRET (default ORTHID_MASTER_KEY, else the benches' fixed key)]
//        [--password-hash HASH (one argon2id hash every seeded user gets; default none)]
//
// Rows go in with COPY … FROM STDIN (bench/lib/copy-from.ts), generated while PostgreSQL loads
// the previous chunk; memberships are one INSERT … SELECT. The URL's role must bypass row-level
// security (a superuser, as in the benches' throwaway clusters): COPY FROM refuses RLS tables
// otherwise. The database is migrated and the tenant created when missing, so repeated runs add
// more rows to the same tenant, each run under its own email prefix.
import { parseArgs } from 'node:util';
import pg from 'pg';
import type { AuditRow } from '../src/audit/audit.queries.js';
import { macEvent, microsOf } from '../src/audit/audit-chain.js';
import { loadConfig } from '../src/config/config.js';
import { newId } from '../src/core/ids.js';
import { createLogger } from '../src/core/logger.js';
import type { TenantKeyring } from '../src/crypto/tenant-keys.js';
import { emailIndex } from '../src/identity/users.js';
import { openOrthId } from '../src/main.js';
import type { OrthId } from '../src/ops/orthid.js';
import { withTenant } from '../src/storage/db/database.js';
import { copyFrom, copyLine } from './lib/copy-from.js';

export const BENCH_MASTER_KEY = 'bench-master-secret-0123456789-abcdefghijklmnop';

export interface SeedCounts {
  users: number;
  orgs: number;
  auditEvents: number;
  /** One argon2id hash for every seeded user, so they can sign in (hashing 1M passwords would take hours). */
  passwordHash?: string;
}

export interface SeedReport {
  tenantId: string;
  /** Email of seeded user i is `${emailPrefix}${i}@bench.example`. */
  emailPrefix: string;
  seconds: { users: number; orgs: number; memberships: number; auditEvents: number };
}

const CHUNK_ROWS = 5_000;

async function* chunks(count: number, line: (i: number) => string): AsyncGenerator<string> {
  for (let start = 0; start < count; start += CHUNK_ROWS) {
    let text = '';
    for (let i = start; i < Math.min(count, start + CHUNK_ROWS); i++) text += line(i);
    yield text;
    // Let the socket drain and PostgreSQL work while the next chunk is generated.
    await new Promise((resolve) => setImmediate(resolve));
  }
}

const USER_AGENTS = [
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15',
  'openid-client/6 (bench)',
];
const ACTIONS = ['user.signed_in', 'user.sign_in_failed', 'session.ended', 'user.updated'] as const;

/**
 * Seeds `counts` into the tenant `tenantId` of `app`'s database; `copyUrl` is a connection
 * (bypassing RLS) to the same database for COPY.
 */
export async function seedTenant(
  app: OrthId,
  copyUrl: string,
  tenantId: string,
  counts: SeedCounts,
  progress: (message: string) => void = () => {},
): Promise<SeedReport> {
  const keyring: TenantKeyring = await withTenant(app.db, tenantId, (tx) =>
    app.tenantKeys.forTenant(tx, tenantId),
  );
  const emailPrefix = `u${Date.now().toString(36)}.`;
  const client = new pg.Client({ connectionString: copyUrl, application_name: 'orthid-bench-seed' });
  await client.connect();
  const seconds = { users: 0, orgs: 0, memberships: 0, auditEvents: 0 };
  const timed = async (key: keyof typeof seconds, fn: () => Promise<unknown>) => {
    const started = performance.now();
    await fn();
    seconds[key] = (performance.now() - started) / 1000;
  };
  try {
    const firstUser = newId();
    await timed('users', () =>
      copyFrom(
        client,
        'COPY users (tenant_id, id, email_index, email, email_verified, name, phone, profile, password_hash, status) FROM STDIN',
        chunks(counts.users, (i) => {
          const id = i === 0 ? firstUser : newId();
          const email = `${emailPrefix}${i}@bench.example`;
          const seal = (column: string, value: string) =>
            keyring.seal(value, { table: 'users', column, rowId: id });
          return copyLine([
            tenantId,
            id,
            emailIndex(keyring, email),
            seal('email', email),
            true,
            seal('name', `Bench User ${i}`),
            null,
            null,
            counts.passwordHash ?? null,
            'active',
          ]);
        }),
      ),
    );
    progress(`users: ${counts.users} in ${seconds.users.toFixed(1)} s`);

    await timed('orgs', () =>
      copyFrom(
        client,
        'COPY organisations (tenant_id, id, name) FROM STDIN',
        chunks(counts.orgs, (i) => copyLine([tenantId, newId(), `${emailPrefix}org ${i}`])),
      ),
    );
    progress(`organisations: ${counts.orgs} in ${seconds.orgs.toFixed(1)} s`);

    if (counts.orgs > 0 && counts.users > 0) {
      // User n joins organisation n mod orgs, counting only this run's rows (UUIDv7 ids sort by time).
      await timed('memberships', () =>
        client.query(
          `INSERT INTO memberships (tenant_id, id, organisation_id, user_id)
           SELECT u.tenant_id, gen_random_uuid(), o.id, u.id
             FROM (SELECT tenant_id, id, row_number() OVER (ORDER BY id) - 1 AS n
                     FROM users WHERE tenant_id = $1 AND id >= $2) u
             JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n
                     FROM organisations WHERE tenant_id = $1 AND name LIKE $3) o
               ON o.n = u.n % $4`,
          [tenantId, firstUser, `${emailPrefix}org %`, counts.orgs],
        ),
      );
      progress(`memberships: ${counts.users} in ${seconds.memberships.toFixed(1)} s`);
    }

    await timed('auditEvents', async () => {
      // The chain continues from the tenant's head, under the lock appendAudit takes, in one transaction.
      await client.query('BEGIN');
      try {
        await client.query(`SELECT pg_advisory_xact_lock(hashtextextended('orthid-audit:' || $1, 0))`, [
          tenantId,
        ]);
        const { rows } = await client.query<{ seq: string; hash: string }>(
          'SELECT seq, hash FROM audit_events WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1',
          [tenantId],
        );
        let seq = BigInt(rows[0]?.seq ?? 0);
        let prev = rows[0]?.hash ?? '0'.repeat(64);
        const start = Date.now() - counts.auditEvents;
        await copyFrom(
          client,
          'COPY audit_events (tenant_id, seq, id, occurred_at, actor, action, target, ip, user_agent, outcome, details, prev_hash, hash) FROM STDIN',
          chunks(counts.auditEvents, (i) => {
            const id = newId();
            const seal = (column: string, value: string) =>
              keyring.seal(value, { table: 'audit_events', column, rowId: id });
            const action = ACTIONS[i % ACTIONS.length]!;
            seq += 1n;
            const row: Omit<AuditRow, 'hash'> = {
              tenant_id: tenantId,
              seq: String(seq),
              id,
              occurred_at: new Date(start + i),
              actor: `user:${newId()}`,
              action,
              target: null,
              ip: seal('ip', `203.0.113.${i % 250}`),
              user_agent: seal('user_agent', USER_AGENTS[i % USER_AGENTS.length]!),
              outcome: action === 'user.sign_in_failed' ? 'failure' : 'success',
              details: i % 10 === 0 ? seal('details', JSON.stringify({ method: 'password' })) : null,
              prev_hash: prev,
            };
            prev = macEvent(row, microsOf(row.occurred_at), keyring.auditMac);
            return copyLine([
              row.tenant_id,
              row.seq,
              row.id,
              row.occurred_at.toISOString(),
              row.actor,
              row.action,
              row.target,
              row.ip,
              row.user_agent,
              row.outcome,
              row.details,
              row.prev_hash,
              prev,
            ]);
          }),
        );
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      }
    });
    progress(`audit events: ${counts.auditEvents} in ${seconds.auditEvents.toFixed(1)} s`);
    // Settled before anything is measured: VACUUM, or autovacuum visits the new rows during the
    // first runs; CHECKPOINT, or the checkpointer writes them out during the first runs.
    await client.query('VACUUM (ANALYZE) users, organisations, memberships, audit_events');
    await client.query('CHECKPOINT');
  } finally {
    await client.end();
  }
  return { tenantId, emailPrefix, seconds };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      users: { type: 'string', default: '1000' },
      orgs: { type: 'string', default: '0' },
      'audit-events': { type: 'string', default: '0' },
      'database-url': { type: 'string' },
      tenant: { type: 'string', default: 'bench' },
      'master-key': { type: 'string' },
      'password-hash': { type: 'string' },
    },
  });
  const url = values['database-url'] ?? process.env.ORTHID_DATABASE_URL;
  if (!url) {
    console.error('Give --database-url (or ORTHID_DATABASE_URL): a PostgreSQL role that bypasses RLS.');
    process.exit(2);
  }
  const counts: SeedCounts = {
    users: Number(values.users),
    orgs: Number(values.orgs),
    auditEvents: Number(values['audit-events']),
    ...(values['password-hash'] ? { passwordHash: values['password-hash'] } : {}),
  };
  const config = loadConfig({
    ORTHID_DATABASE_URL: url,
    ORTHID_MASTER_KEY: values['master-key'] ?? process.env.ORTHID_MASTER_KEY ?? BENCH_MASTER_KEY,
    ORTHID_DATA_DIR: process.env.ORTHID_DATA_DIR ?? '.bench/seed-data',
    ORTHID_PUBLIC_URL: process.env.ORTHID_PUBLIC_URL ?? 'http://127.0.0.1:8080',
  });
  const app = await openOrthId(config, { initKeystore: true, migrate: true, log: createLogger('warn') });
  try {
    const slug = values.tenant!;
    const tenant = await app.tenants.get(slug).catch(() => app.tenants.create({ slug, actor: 'bench-seed' }));
    const started = performance.now();
    const report = await seedTenant(app, url, tenant.id, counts, (m) => console.log(m));
    const total = (performance.now() - started) / 1000;
    const rate = (n: number, s: number) => (s > 0 ? `${Math.round(n / s)}/s` : '—');
    console.log(
      JSON.stringify({
        tenant: slug,
        emailPrefix: report.emailPrefix,
        seconds: Number(total.toFixed(1)),
        rates: {
          users: rate(counts.users, report.seconds.users),
          orgs: rate(counts.orgs, report.seconds.orgs),
          memberships: rate(counts.users, report.seconds.memberships),
          auditEvents: rate(counts.auditEvents, report.seconds.auditEvents),
        },
      }),
    );
  } finally {
    await app.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
