// Benchmarks `orthid backup dump` against the page's manual procedure in the same run, and
// measures pg_dump's compression levels on OrthID's data to pick the one the dump uses.
//
// Run: npm run build && npm run bench -- backup-dump [users=300000] [runs=3]
//      (needs PostgreSQL server binaries, pg_dump and age: apt-get install -y postgresql age)
//
// Data: a throwaway cluster with one tenant whose users carry sealed (AES-256-GCM) fields, as
// in production: 1000 users are created through OrthID, then copied by SQL under new ids until
// `users` rows exist. Copied ciphertext does not open (it is bound to its row), but it is
// byte-for-byte as incompressible as real sealed fields, which is what the dump sees.
// Baseline: `pg_dump --format=custom --no-owner | age -r R > file` (pg_dump's default zlib level).
// Rows: pg_dump at -Z0/-Z1/-Z6 through age (time and size), then OrthID's whole dump in-process
// (database, objects and keystore parts plus manifest) with the ratio against the baseline, and
// the peak RSS of a real `orthid backup dump` process from the build (npm run build first),
// next to that of `orthid --help`, i.e. what the CLI costs before it does anything.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { runBackupDump } from '../src/backup/run-dump.js';
import { loadConfig } from '../src/config/config.js';
import { systemClock } from '../src/core/clock.js';
import { createLogger } from '../src/core/logger.js';
import { openOrthId } from '../src/main.js';
import { withTenant } from '../src/storage/db/database.js';
import { cliEnv } from '../test/helpers/cli.js';
import { startCluster } from '../test/helpers/postgres.js';
import { exitOnVerdicts, median, printHeader, printRow } from './lib/report.js';

const USERS = Number(process.argv[2] ?? 300_000);
const RUNS = Number(process.argv[3] ?? 3);
const MASTER = 'bench-master-secret-0123456789-abcdefghijklmnop';
// ORTHID_BENCH_CLI: another build of the CLI (e.g. one made beside dist/ while others use it).
const BUILT_CLI = process.env.ORTHID_BENCH_CLI
  ? pathToFileURL(process.env.ORTHID_BENCH_CLI)
  : new URL('../dist/cli/main.js', import.meta.url);

if (!existsSync(BUILT_CLI)) {
  console.error('Build first (npm run build): the memory row measures the built CLI, as deployed.');
  process.exit(2);
}

/** Peak RSS of `orthid ARGS`: VmHWM is the high-water mark, so the last sample is the peak. */
async function peakRss(
  args: string[],
  env: Record<string, string>,
): Promise<{ peak: number; code: number | null }> {
  const child = spawn(process.execPath, [BUILT_CLI.pathname, ...args], { env: cliEnv(env), stdio: 'ignore' });
  let peak = 0;
  const poll = setInterval(() => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (m) peak = Math.max(peak, Number(m[1]) * 1024);
    } catch {
      // exited
    }
  }, 10);
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  clearInterval(poll);
  return { peak, code };
}

for (const binary of ['pg_dump', 'age', 'age-keygen']) {
  try {
    execFileSync(binary, ['--version'], { stdio: 'pipe' });
  } catch {
    console.error(`${binary} is needed for this benchmark: apt-get install -y postgresql age`);
    process.exit(2);
  }
}

const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

function shell(command: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-o', 'pipefail', '-c', command], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`${command} exited ${code}`))));
  });
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await fn();
  return (performance.now() - start) / 1000;
}

const scratch = mkdtempSync(join(tmpdir(), 'orthid-bench-dump-'));
const cluster = await startCluster();
try {
  const url = new URL(cluster.url);
  url.pathname = '/bench';
  execFileSync(join(cluster.binDir, 'createdb'), [
    '-h',
    '127.0.0.1',
    '-p',
    String(cluster.port),
    '-U',
    'postgres',
    'bench',
  ]);
  const env = {
    ORTHID_DATA_DIR: join(scratch, 'data'),
    ORTHID_DATABASE_URL: url.toString(),
    ORTHID_MASTER_KEY: MASTER,
    ORTHID_LOG_LEVEL: 'silent',
  };
  const config = loadConfig(env);
  const app = await openOrthId(config, { initKeystore: true, migrate: true, log: createLogger('silent') });
  const { db, keystore, objects } = app;

  console.log(`Seeding ${USERS} users with sealed fields…`);
  const tenant = await app.tenants.create({ slug: 'bench', actor: 'bench' });
  await withTenant(db, tenant.id, async (tx) => {
    for (let i = 0; i < 1000; i++) {
      await app.users.create(
        tx,
        tenant.id,
        { email: `user${i}@bench.example`, name: `Bench User Number ${i}`, phone: '+61 400 000 000' },
        'bench',
      );
    }
  });
  await db.ownerTransaction(async (tx) => {
    await tx.query('SET LOCAL row_security = off');
    await tx.query(
      `INSERT INTO users (tenant_id, id, email_index, email, email_verified, name, phone, created_at, updated_at)
       SELECT u.tenant_id, gen_random_uuid(), md5(random()::text) || g, u.email, u.email_verified, u.name, u.phone, u.created_at, u.updated_at
         FROM users u CROSS JOIN generate_series(1, $1::int) g`,
      [Math.ceil(USERS / 1000) - 1],
    );
  });
  const size = await db.ownerQuery<{ size: string }>(
    `SELECT pg_size_pretty(pg_database_size(current_database())) AS size`,
  );
  console.log(`Database: ${size.rows[0]!.size}`);

  execFileSync('age-keygen', ['-o', join(scratch, 'key.txt')], { stdio: 'pipe' });
  const recipient = execFileSync('age-keygen', ['-y', join(scratch, 'key.txt')], { encoding: 'utf8' }).trim();
  const out = join(scratch, 'out.age');
  const dbname = url.toString();

  const rows: { name: string; seconds: number; bytes: number }[] = [];
  const levels = [
    { name: 'pg_dump -Fc (default zlib) | age  [baseline]', flag: '' },
    { name: 'pg_dump -Fc -Z0 | age', flag: '-Z0' },
    { name: 'pg_dump -Fc -Z1 | age', flag: '-Z1' },
    { name: 'pg_dump -Fc -Z6 | age', flag: '-Z6' },
  ];
  const times = new Map<string, number[]>();
  const sizes = new Map<string, number>();
  const oursName = 'orthid backup dump --encrypt (all parts + manifest)';
  for (let run = 0; run < RUNS; run++) {
    for (const level of levels) {
      const seconds = await timed(() =>
        shell(
          `pg_dump --format=custom --no-owner ${level.flag} --dbname='${dbname}' | age -r ${recipient} > ${out}`,
        ),
      );
      times.set(level.name, [...(times.get(level.name) ?? []), seconds]);
      sizes.set(level.name, statSync(out).size);
    }
    const dest = pathToFileURL(join(scratch, `sets-${run}`)).href;
    let dbBytes = 0;
    const seconds = await timed(async () => {
      const manifest = await runBackupDump(
        { config, objects, keystore, clock: systemClock },
        { encrypt: true, upload: false, recipients: [recipient], dest, destConfigured: true },
      );
      dbBytes = manifest.parts.find((p) => p.kind === 'database')!.size;
    });
    times.set(oursName, [...(times.get(oursName) ?? []), seconds]);
    sizes.set(oursName, dbBytes);
    rmSync(join(scratch, `sets-${run}`), { recursive: true, force: true });
  }
  for (const [name, ts] of times) rows.push({ name, seconds: median(ts), bytes: sizes.get(name)! });
  const baseline = rows[0]!;
  console.log(`\nMedian of ${RUNS} runs, ${USERS} users:`);
  for (const row of rows) {
    console.log(
      `  ${row.name.padEnd(52)} ${row.seconds.toFixed(2).padStart(7)} s  ${mib(row.bytes).padStart(10)}  time ×${(row.seconds / baseline.seconds).toFixed(2)} of baseline, size ×${(row.bytes / baseline.bytes).toFixed(3)}`,
    );
  }

  const idle = await peakRss(['--help'], env);
  const dump = await peakRss(
    ['backup', 'dump', '--encrypt', '-r', recipient, '--dest', join(scratch, 'rss')],
    env,
  );
  console.log(
    `\nPeak RSS of \`orthid backup dump --encrypt\` (exit ${dump.code}): ${mib(dump.peak)} (target < 200 MiB); \`orthid --help\`: ${mib(idle.peak)}`,
  );
  printHeader(
    `Backup dump, ${USERS} users; pg_dump -Fc | age -r (baseline) vs orthid backup dump --encrypt`,
    RUNS,
  );
  exitOnVerdicts([
    printRow({
      name: 'backup dump',
      baseline: times.get(levels[0]!.name)!,
      orthid: times.get(oursName)!,
      unit: 's',
      digits: 2,
      target: { kind: 'ratio-at-most', value: 1.1 },
      extraPass: dump.code === 0 && dump.peak <= 200 * 1024 * 1024,
      notes: `and peak RSS of the CLI ≤ 200 MiB: ${mib(dump.peak)}`,
    }),
  ]);
  await app.close();
} finally {
  cluster.stop();
  rmSync(scratch, { recursive: true, force: true });
}
