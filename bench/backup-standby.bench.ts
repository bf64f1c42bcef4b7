// Benchmarks `orthid backup dump` from a hot standby against the same dump from its primary,
// on the same data in the same run: what reading a replica (as the page advises) costs.
//
// Run: npm run bench -- backup-standby [users=5000] [runs=5]
//      (needs PostgreSQL server binaries, pg_basebackup, pg_dump and age-keygen)
//
// Data: a throwaway primary with one tenant; up to 1000 users are created through OrthID (sealed
// fields, audit events), the rest copied by SQL under new ids, as bench/backup-dump.bench.ts
// does. A standby is made with pg_basebackup -R and has replayed everything before the runs.
// Baseline: runBackupDump reading the primary. OrthID row: the same reading the standby through
// ORTHID_BACKUP_DATABASE_URL (which adds the exported snapshot and its replay positions).
// Runs alternate between the two so background load hits both alike.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { runBackupDump } from '../src/backup/run-dump.js';
import { loadConfig } from '../src/config/config.js';
import { systemClock } from '../src/core/clock.js';
import { createLogger } from '../src/core/logger.js';
import { openOrthId } from '../src/main.js';
import { withTenant } from '../src/storage/db/database.js';
import { currentWalLsn, query, startCluster, startStandby, waitForReplay } from '../test/helpers/postgres.js';
import { exitOnVerdicts, printHeader, printRow } from './lib/report.js';

const USERS = Number(process.argv[2] ?? 5000);
const RUNS = Number(process.argv[3] ?? 5);
const MASTER = 'bench-master-secret-0123456789-abcdefghijklmnop';

for (const binary of ['pg_dump', 'age-keygen']) {
  try {
    execFileSync(binary, ['--version'], { stdio: 'pipe' });
  } catch {
    console.error(`${binary} is needed for this benchmark: apt-get install -y postgresql age`);
    process.exit(2);
  }
}

const scratch = mkdtempSync(join(tmpdir(), 'orthid-bench-standby-'));
const primary = await startCluster();
let standby: Awaited<ReturnType<typeof startStandby>> | undefined;
try {
  await query(primary.url, 'CREATE DATABASE bench');
  const url = primary.url.replace(/\/postgres$/, '/bench');
  const env = {
    ORTHID_DATA_DIR: join(scratch, 'data'),
    ORTHID_DATABASE_URL: url,
    ORTHID_MASTER_KEY: MASTER,
    ORTHID_LOG_LEVEL: 'silent',
  };
  const config = loadConfig(env);
  const app = await openOrthId(config, { initKeystore: true, migrate: true, log: createLogger('silent') });
  const { db, keystore, objects } = app;
  const real = Math.min(USERS, 1000);
  console.log(`Seeding ${USERS} users (${real} through OrthID)…`);
  const tenant = await app.tenants.create({ slug: 'bench', actor: 'bench' });
  await withTenant(db, tenant.id, async (tx) => {
    for (let i = 0; i < real; i++) {
      await app.users.create(
        tx,
        tenant.id,
        { email: `user${i}@bench.example`, name: `Bench User Number ${i}`, phone: '+61 400 000 000' },
        'bench',
      );
    }
  });
  if (USERS > real) {
    await db.ownerTransaction(async (tx) => {
      await tx.query('SET LOCAL row_security = off');
      await tx.query(
        `INSERT INTO users (tenant_id, id, email_index, email, email_verified, name, phone, created_at, updated_at)
         SELECT u.tenant_id, gen_random_uuid(), md5(random()::text) || g, u.email, u.email_verified, u.name, u.phone, u.created_at, u.updated_at
           FROM users u CROSS JOIN generate_series(1, $1::int) g LIMIT $2`,
        [Math.ceil(USERS / real) - 1, USERS - real],
      );
    });
  }
  const [size] = await query<{ size: string; users: number }>(
    url,
    `SELECT pg_size_pretty(pg_database_size(current_database())) AS size, (SELECT count(*)::int FROM users) AS users`,
  );
  standby = await startStandby(primary, { settings: { hot_standby_feedback: true } });
  await waitForReplay(standby.url, await currentWalLsn(primary.url));
  console.log(`Database: ${size!.size}, ${size!.users} users; standby on port ${standby.port}`);

  execFileSync('age-keygen', ['-o', join(scratch, 'key.txt')], { stdio: 'pipe' });
  const recipient = execFileSync('age-keygen', ['-y', join(scratch, 'key.txt')], { encoding: 'utf8' }).trim();
  const standbyConfig = { ...config, backupDatabaseUrl: standby.url.replace(/\/postgres$/, '/bench') };

  const dumpOnce = async (cfg: typeof config, run: number, name: string) => {
    const dest = join(scratch, `${name}-${run}`);
    const start = performance.now();
    const manifest = await runBackupDump(
      { config: cfg, objects, keystore, clock: systemClock },
      {
        encrypt: true,
        upload: false,
        recipients: [recipient],
        dest: pathToFileURL(dest).href,
        destConfigured: true,
      },
    );
    const seconds = (performance.now() - start) / 1000;
    rmSync(dest, { recursive: true, force: true });
    return { seconds, bytes: manifest.parts.find((p) => p.kind === 'database')!.size, manifest };
  };

  const fromPrimary: number[] = [];
  const fromStandby: number[] = [];
  let bytes = 0;
  let source: unknown;
  for (let run = -1; run < RUNS; run++) {
    const p = await dumpOnce(config, run, 'primary');
    const s = await dumpOnce(standbyConfig, run, 'standby');
    if (run < 0) continue; // warm-up: caches on both servers
    fromPrimary.push(p.seconds);
    fromStandby.push(s.seconds);
    bytes = s.bytes;
    source = s.manifest.database.source;
  }
  console.log(
    `db.dump.age: ${(bytes / 1024 / 1024).toFixed(1)} MiB; standby manifest source: ${JSON.stringify(source)}`,
  );
  printHeader(
    `Backup dump, ${USERS} users (${size!.size}); from the primary (baseline) vs from a hot standby`,
    RUNS,
  );
  exitOnVerdicts([
    printRow({
      name: 'backup dump from a standby',
      baseline: fromPrimary,
      orthid: fromStandby,
      unit: 's',
      digits: 2,
      target: { kind: 'ratio-at-most', value: 1.2 },
    }),
  ]);
  await app.close();
} finally {
  standby?.stop();
  primary.stop();
  rmSync(scratch, { recursive: true, force: true });
}
