// Starts a throwaway PostgreSQL cluster (initdb into a temporary directory, pg_ctl on a free
// loopback port, fsync off) and hands out fresh databases on it. Missing binaries fail loudly.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface Cluster {
  /** Superuser URL of the cluster's `postgres` database. */
  url: string;
  binDir: string;
  port: number;
  stop(): void;
}

/** The newest PostgreSQL server binaries installed (Debian keeps them under /usr/lib/postgresql). */
export function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0) {
    throw new Error(
      'PostgreSQL server binaries are not installed (looked in /usr/lib/postgresql/*/bin). Install them: apt-get install -y postgresql',
    );
  }
  return join(root, versions[0]!, 'bin');
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

const asRoot = process.getuid?.() === 0;

/** initdb refuses to run as root, so as root the cluster belongs to the `postgres` user. */
function run(binary: string, args: string[]): void {
  const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', binary, ...args]] : [binary, args];
  const result = spawnSync(cmd, argv, { encoding: 'utf8' });
  if (result.status !== 0) {
    throw new Error(`${binary} ${args.join(' ')} failed: ${result.stderr || result.stdout}`);
  }
}

/** Server settings given as `-c name=value` on the command line. */
export type ClusterSettings = Record<string, string | number | boolean>;

/** A directory the cluster's owner can use (as root, the `postgres` user). */
function clusterDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o700);
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
  }
  return dir;
}

/** pg_ctl start on a free loopback port with the test settings plus `settings`. */
async function startServer(
  binDir: string,
  dir: string,
  data: string,
  settings: ClusterSettings,
): Promise<Cluster> {
  const port = await freePort();
  const extra = Object.entries(settings)
    .map(([name, value]) => ` -c ${name}=${typeof value === 'boolean' ? (value ? 'on' : 'off') : value}`)
    .join('');
  // A standby needs max_connections at least the primary's, so both get the same.
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200${extra}`;
  run(join(binDir, 'pg_ctl'), ['-D', data, '-o', options, '-l', join(dir, 'log'), '-w', 'start']);
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    try {
      run(join(binDir, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, binDir, port, stop };
}

/**
 * A throwaway cluster, trusting every local connection. initdb's defaults already let it be a
 * replication primary (wal_level=replica, max_wal_senders=10, and pg_hba.conf's replication
 * lines use the same trust method), so startStandby works on any cluster started here.
 */
export async function startCluster(options: { settings?: ClusterSettings } = {}): Promise<Cluster> {
  const binDir = postgresBinDir();
  const dir = clusterDir('orthid-pg-');
  const data = join(dir, 'data');
  run(join(binDir, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync']);
  return startServer(binDir, dir, data, options.settings ?? {});
}

/**
 * A hot standby streaming from `primary`: `pg_basebackup -R` (which writes primary_conninfo and
 * standby.signal) into a new data directory, started on another loopback port. `settings` are
 * the standby's own, e.g. `{ hot_standby_feedback: true }` or `{ max_standby_streaming_delay: 0 }`.
 * Stop it before its primary.
 */
export async function startStandby(
  primary: Cluster,
  options: { settings?: ClusterSettings } = {},
): Promise<Cluster> {
  const dir = clusterDir('orthid-pg-standby-');
  const data = join(dir, 'data');
  run(join(primary.binDir, 'pg_basebackup'), [
    '-D',
    data,
    '-R',
    '-X',
    'stream',
    '-c',
    'fast',
    '--no-sync',
    '-h',
    '127.0.0.1',
    '-p',
    String(primary.port),
    '-U',
    'postgres',
  ]);
  const standby = await startServer(primary.binDir, dir, data, { hot_standby: true, ...options.settings });
  // pg_ctl -w returns once connections are accepted, which a hot standby does only when consistent.
  const [row] = await query<{ standby: boolean }>(standby.url, 'SELECT pg_is_in_recovery() AS standby');
  if (!row?.standby) {
    standby.stop();
    throw new Error(
      `The cluster on port ${standby.port} started, but not as a standby of port ${primary.port}.`,
    );
  }
  return standby;
}

/** The primary's current WAL write position (e.g. after a commit, to wait for a standby to replay it). */
export async function currentWalLsn(primaryUrl: string): Promise<string> {
  const [row] = await query<{ lsn: string }>(primaryUrl, 'SELECT pg_current_wal_lsn()::text AS lsn');
  return row!.lsn;
}

/**
 * Resolves once the standby at `standbyUrl` has replayed the primary's WAL up to `lsn`, i.e. every
 * transaction committed before it is visible there; throws after `timeoutMs`.
 */
export async function waitForReplay(standbyUrl: string, lsn: string, timeoutMs = 30_000): Promise<void> {
  const client = new pg.Client({ connectionString: standbyUrl });
  await client.connect();
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { rows } = await client.query<{ done: boolean; at: string | null }>(
        'SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS done, pg_last_wal_replay_lsn()::text AS at',
        [lsn],
      );
      if (rows[0]?.done) return;
      if (Date.now() > deadline) {
        throw new Error(
          `The standby (${standbyUrl}) replayed only up to ${rows[0]?.at} after ${timeoutMs} ms, not ${lsn}.`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    await client.end();
  }
}

let shared: Promise<Cluster> | undefined;

/**
 * The cluster for this test process: the one the test runner started (ORTHID_TEST_PG_URL), or
 * one started here and stopped when the process exits.
 */
export function testCluster(): Promise<Cluster> {
  shared ??= (async () => {
    const url = process.env.ORTHID_TEST_PG_URL;
    if (url) {
      return { url, binDir: postgresBinDir(), port: Number(new URL(url).port), stop() {} };
    }
    const cluster = await startCluster();
    process.once('exit', () => cluster.stop());
    return cluster;
  })();
  return shared;
}

/** Creates an empty database on the test cluster and returns its superuser URL. */
export async function createTestDatabase(prefix = 'orthid_test'): Promise<string> {
  const cluster = await testCluster();
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: cluster.url });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  const url = new URL(cluster.url);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Runs one statement on `url` as the superuser (which bypasses row-level security) and returns its rows. */
export async function query<T extends pg.QueryResultRow>(
  url: string,
  sql: string,
  params: unknown[] = [],
): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/** Row counts of every table in the public schema (an empty object for a database with no tables). */
export async function rowCounts(url: string): Promise<Record<string, number>> {
  const tables = await query<{ tablename: string }>(
    url,
    `SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`,
  );
  const counts: Record<string, number> = {};
  for (const { tablename } of tables) {
    // FORCE ROW LEVEL SECURITY applies to the owner too; the superuser test connection bypasses it.
    counts[tablename] = Number(
      (await query<{ n: string }>(url, `SELECT count(*) AS n FROM "${tablename}"`))[0]!.n,
    );
  }
  return counts;
}
