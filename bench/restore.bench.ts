// Rows 6 and 7 on one seeded data set: `orthid backup dump --encrypt` against
// `pg_dump -Fc | age -r`, then `orthid backup restore` against `age -d | pg_restore`, and the
// drill's restore time (RTO), all through the built CLI as an operator runs them.
//
// Run: npm run build && npm run bench -- restore [users=200000] [orgs=users/10] [audit-events=5×users] [runs=3]
//      (needs PostgreSQL server binaries, pg_dump/pg_restore and age: apt-get install -y postgresql age)
//
// Data: a throwaway cluster, migrated by OrthID, one tenant filled by the data generator
// (bench/seed.ts: COPY; users with sealed fields and blind index, organisations, one
// membership per user, audit events with a valid hash chain). The target set is 1 000 000 users,
// 100 000 organisations and 5 000 000 audit events; the seeding rate printed first says how long
// that takes here. Targets: dump ≤ 1.10× the baseline with peak RSS ≤ 200 MiB; restore ≤ 1.10×.
// Every restore goes to a new database; OrthID's restores also recreate the keystore (a new
// data directory and master key per run, as on a new host) and verify the result.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config/config.js';
import { createLogger } from '../src/core/logger.js';
import { openOrthId } from '../src/main.js';
import { ADMIN_CREDENTIALS_FILE, bootstrap } from '../src/ops/bootstrap.js';
import { cliEnv } from '../test/helpers/cli.js';
import { startCluster } from '../test/helpers/postgres.js';
import { exitOnVerdicts, formatSpread, median, printHeader, printRow } from './lib/report.js';
import { BENCH_MASTER_KEY, seedTenant } from './seed.js';

const USERS = Number(process.argv[2] ?? 200_000);
const ORGS = Number(process.argv[3] ?? Math.floor(USERS / 10));
const AUDIT = Number(process.argv[4] ?? USERS * 5);
const RUNS = Number(process.argv[5] ?? 3);
const BUILT_CLI =
  process.env.ORTHID_BENCH_CLI ?? fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));

if (!existsSync(BUILT_CLI)) {
  console.error('Build first (npm run build): this row measures the built CLI, as deployed.');
  process.exit(2);
}
for (const binary of ['pg_dump', 'pg_restore', 'age', 'age-keygen']) {
  try {
    execFileSync(binary, ['--version'], { stdio: 'pipe' });
  } catch {
    console.error(`${binary} is needed for this benchmark: apt-get install -y postgresql age`);
    process.exit(2);
  }
}

const MiB = 1024 * 1024;

/** What `backup restore --json` and `backup drill --json` say about their own time. */
interface Outcome {
  steps?: { step: number; title: string; seconds: number }[];
  checks?: { name: string; seconds?: number }[];
}

/** Per step and per check, every run's seconds, so the report says where the time goes. */
function collectSteps(into: Map<string, number[]>, stdout: string): void {
  let outcome: Outcome;
  try {
    outcome = JSON.parse(stdout) as Outcome;
  } catch {
    return; // a build that prints no JSON outcome: the row's totals still stand
  }
  for (const s of outcome.steps ?? []) {
    const key = `step ${s.step} ${s.title}`;
    into.set(key, [...(into.get(key) ?? []), s.seconds]);
  }
  for (const c of outcome.checks ?? []) {
    if (c.seconds === undefined) continue;
    const key = `  check ${c.name}`;
    into.set(key, [...(into.get(key) ?? []), c.seconds]);
  }
}

function printSteps(what: string, steps: Map<string, number[]>): void {
  if (steps.size === 0) return;
  console.log(`  ${what}, median per step (checks run at once, inside step 6):`);
  for (const [key, values] of steps) console.log(`    ${median(values).toFixed(2).padStart(7)} s  ${key}`);
}

function shell(command: string): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-o', 'pipefail', '-c', command], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.once('exit', (code) =>
      code === 0
        ? resolve((performance.now() - started) / 1000)
        : reject(new Error(`${command} exited ${code}: ${err}`)),
    );
  });
}

/** Wall time and peak RSS (VmHWM) of the built CLI. */
async function orthid(
  args: string[],
  env: Record<string, string>,
): Promise<{ seconds: number; peak: number; stdout: string }> {
  const started = performance.now();
  const child = spawn(process.execPath, [BUILT_CLI, ...args], {
    env: cliEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  let peak = 0;
  const poll = setInterval(() => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (m) peak = Math.max(peak, Number(m[1]) * 1024);
    } catch {
      // exited
    }
  }, 20);
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  clearInterval(poll);
  if (code !== 0) throw new Error(`orthid ${args.join(' ')} exited ${code}:\n${stdout}\n${stderr}`);
  return { seconds: (performance.now() - started) / 1000, peak, stdout };
}

const scratch = mkdtempSync(join(tmpdir(), 'orthid-bench-restore-'));
const cluster = await startCluster();
const dbUrl = (name: string) => {
  const url = new URL(cluster.url);
  url.pathname = `/${name}`;
  return url.toString();
};
const createdb = (name: string) =>
  execFileSync(join(cluster.binDir, 'createdb'), [
    '-h',
    '127.0.0.1',
    '-p',
    String(cluster.port),
    '-U',
    'postgres',
    name,
  ]);
try {
  createdb('bench');
  execFileSync('age-keygen', ['-o', join(scratch, 'key.txt')], { stdio: 'pipe' });
  const recipient = execFileSync('age-keygen', ['-y', join(scratch, 'key.txt')], { encoding: 'utf8' }).trim();
  const env = {
    ORTHID_DATA_DIR: join(scratch, 'data'),
    ORTHID_DATABASE_URL: dbUrl('bench'),
    ORTHID_MASTER_KEY: BENCH_MASTER_KEY,
    ORTHID_BACKUP_DEST: `file://${join(scratch, 'sets')}`,
    ORTHID_BACKUP_KEYSTORE_DEST: `file://${join(scratch, 'keys')}`,
    ORTHID_BACKUP_AGE_RECIPIENTS: recipient,
    ORTHID_BACKUP_AGE_IDENTITY_FILE: join(scratch, 'key.txt'),
    ORTHID_LOG_LEVEL: 'warn',
  };
  const app = await openOrthId(loadConfig(env), {
    initKeystore: true,
    migrate: true,
    log: createLogger('silent'),
  });
  try {
    // As a first `orthid start` does: system tenant, admin client and the canary restores verify with.
    await bootstrap(app, join(env.ORTHID_DATA_DIR, ADMIN_CREDENTIALS_FILE));
    const tenant = await app.tenants.create({ slug: 'bench', actor: 'bench' });
    const started = performance.now();
    const report = await seedTenant(app, dbUrl('bench'), tenant.id, {
      users: USERS,
      orgs: ORGS,
      auditEvents: AUDIT,
    });
    const s = report.seconds;
    console.log(
      `Seeded ${USERS} users (${Math.round(USERS / s.users)}/s), ${ORGS} organisations, ${USERS} memberships (${s.memberships.toFixed(1)} s), ${AUDIT} audit events (${Math.round(AUDIT / s.auditEvents)}/s) in ${((performance.now() - started) / 1000).toFixed(0)} s`,
    );
  } finally {
    await app.close();
  }
  const size = execFileSync(
    'psql',
    ['-At', '-d', dbUrl('bench'), '-c', 'SELECT pg_size_pretty(pg_database_size(current_database()))'],
    { encoding: 'utf8' },
  ).trim();
  console.log(`Database: ${size}`);

  const baseline = join(scratch, 'baseline.age');
  const dump = { base: [] as number[], ours: [] as number[], peak: 0 };
  const restore = { base: [] as number[], ours: [] as number[] };
  const drills: number[] = [];
  const restoreSteps = new Map<string, number[]>();
  const drillSteps = new Map<string, number[]>();
  for (let run = 0; run < RUNS; run++) {
    dump.base.push(
      await shell(
        `pg_dump --format=custom --no-owner --dbname='${dbUrl('bench')}' | age -r ${recipient} > ${baseline}`,
      ),
    );
    const ours = await orthid(['backup', 'dump', '--encrypt', '--json'], env);
    dump.ours.push(ours.seconds);
    dump.peak = Math.max(dump.peak, ours.peak);

    createdb(`base_${run}`);
    restore.base.push(
      await shell(
        `age -d -i ${join(scratch, 'key.txt')} ${baseline} | pg_restore --no-owner --dbname='${dbUrl(`base_${run}`)}'`,
      ),
    );
    const restored = await orthid(['backup', 'restore', 'latest', '--json'], {
      ...env,
      ORTHID_DATA_DIR: join(scratch, `restored-${run}`),
      ORTHID_DATABASE_URL: dbUrl(`ours_${run}`),
      ORTHID_MASTER_KEY: `${BENCH_MASTER_KEY}-restored-${run}`,
    });
    restore.ours.push(restored.seconds);
    collectSteps(restoreSteps, restored.stdout);
    const drilled = await orthid(['backup', 'drill', '--json'], env);
    drills.push(drilled.seconds);
    collectSteps(drillSteps, drilled.stdout);
    // Keep the cluster small: the restored copies are not needed after their run.
    for (const name of [`base_${run}`, `ours_${run}`]) {
      execFileSync('psql', ['-d', dbUrl('postgres'), '-c', `DROP DATABASE ${name} WITH (FORCE)`], {
        stdio: 'pipe',
      });
    }
  }

  printHeader(
    `Backup dump and restore, ${USERS} users, ${ORGS} organisations, ${AUDIT} audit events (${size})`,
    RUNS,
  );
  const verdicts = [
    printRow({
      name: 'backup dump --encrypt vs pg_dump -Fc | age -r',
      baseline: dump.base,
      orthid: dump.ours,
      unit: 's',
      digits: 2,
      target: { kind: 'ratio-at-most', value: 1.1 },
      extraPass: dump.peak <= 200 * MiB,
      notes: `and peak RSS ≤ 200 MiB: ${(dump.peak / MiB).toFixed(0)} MiB`,
    }),
    printRow({
      name: 'backup restore vs age -d | pg_restore',
      baseline: restore.base,
      orthid: restore.ours,
      unit: 's',
      digits: 2,
      target: { kind: 'ratio-at-most', value: 1.1 },
    }),
  ];
  console.log(
    `  drill (restore into a throwaway database, checks, clean-up; RTO): ${formatSpread(drills, 's', 2)}`,
  );
  printSteps('backup restore', restoreSteps);
  printSteps('backup drill', drillSteps);
  exitOnVerdicts(verdicts);
} finally {
  cluster.stop();
  rmSync(scratch, { recursive: true, force: true });
}
