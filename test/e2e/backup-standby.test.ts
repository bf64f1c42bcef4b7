import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import type { Manifest } from '../../src/backup/manifest.js';
import { loadConfig } from '../../src/config/config.js';
import { exitCodes } from '../../src/core/errors.js';
import { createLogger } from '../../src/core/logger.js';
import { openOrthId } from '../../src/main.js';
import { withTenant } from '../../src/storage/db/database.js';
import { age, ageKeygen, requireAgeCli } from '../helpers/age-cli.js';
import { type CliResult, cliArgs, cliEnv, runCli } from '../helpers/cli.js';
import {
  type Cluster,
  currentWalLsn,
  query,
  startCluster,
  startStandby,
  waitForReplay,
} from '../helpers/postgres.js';

const MASTER = 'backup-standby-test-master-secret-0123456789-abc';
const USERS = 2000;

function requirePgTools(): void {
  for (const tool of ['pg_dump', 'pg_restore']) {
    const probe = spawnSync(tool, ['--version']);
    if (probe.error || probe.status !== 0) {
      throw new Error(
        `\`${tool}\` is required but does not run. Install it: apt-get install -y postgresql-client`,
      );
    }
  }
}

/** "16/B374D848" → a number that orders like the WAL position. */
function lsn(text: string): bigint {
  const [hi, lo] = text.split('/');
  return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
}

const dbUrl = (cluster: Cluster) => cluster.url.replace(/\/postgres$/, '/orthid');

/** One committed transaction of the writer, with WAL positions around its commit record. */
interface Write {
  i: number;
  /** Insert position read inside the transaction, before COMMIT: the commit record starts after it. */
  before: bigint;
  /** Insert position read after COMMIT returned: the commit record ends at or before it. */
  after: bigint;
  /** Wall clock just before COMMIT was sent: the commit's timestamp is no earlier. */
  committingAt: number;
}

/** Writes one row per transaction into `replay_probe` on the primary until stopped. */
async function startWriter(url: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const writes: Write[] = [];
  let running = true;
  const insertLsn = async () =>
    lsn((await client.query<{ l: string }>('SELECT pg_current_wal_insert_lsn()::text AS l')).rows[0]!.l);
  const loop = (async () => {
    for (let i = 1; running; i++) {
      await client.query('BEGIN');
      await client.query('INSERT INTO replay_probe (i) VALUES ($1)', [i]);
      const beforeCommit = await insertLsn();
      const committingAt = Date.now();
      await client.query('COMMIT');
      writes.push({ i, before: beforeCommit, after: await insertLsn(), committingAt });
    }
  })();
  return {
    writes,
    async count(n: number) {
      while (writes.length < n) await new Promise((resolve) => setTimeout(resolve, 10));
    },
    async stop() {
      running = false;
      await loop;
      await client.end();
    },
  };
}

/** `orthid ARGS` as a child whose stderr can be watched while it runs. */
function startCli(args: string[], env: Record<string, string>) {
  const child: ChildProcess = spawn(process.execPath, cliArgs(args), {
    env: cliEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const waiters: { pattern: RegExp; resolve: () => void }[] = [];
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => {
    stderr += d;
    for (const w of waiters.splice(0)) {
      if (w.pattern.test(stderr)) w.resolve();
      else waiters.push(w);
    }
  });
  const done = new Promise<CliResult>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
  return {
    child,
    done,
    /** Resolves once stderr matches (the step lines are JSON, one per line). */
    seen(pattern: RegExp): Promise<void> {
      if (pattern.test(stderr)) return Promise.resolve();
      return Promise.race([
        new Promise<void>((resolve) => waiters.push({ pattern, resolve })),
        done.then((r) => {
          throw new Error(`orthid exited (${r.code}) before printing ${pattern}: ${r.stderr}`);
        }),
      ]);
    },
  };
}

/** Every manifest.json under `dir` (complete sets). */
function manifestsIn(dir: string): string[] {
  try {
    return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('manifest.json'));
  } catch {
    return [];
  }
}

describe('orthid backup dump from a streaming replica', { timeout: 600_000 }, () => {
  let primary: Cluster;
  /** A replica as the README advises: hot_standby_feedback on. */
  let replica: Cluster;
  /** A replica that cancels any query in replay's way at once, and tells the primary nothing. */
  let strict: Cluster;
  let dir: string;
  let key: ReturnType<typeof ageKeygen>;
  let env: Record<string, string>;
  const fromReplica = (cluster: Cluster, name: string) => ({
    ...env,
    ORTHID_BACKUP_DATABASE_URL: dbUrl(cluster),
    ORTHID_BACKUP_DEST: join(dir, name, 'sets'),
    ORTHID_BACKUP_KEYSTORE_DEST: join(dir, name, 'keys'),
  });

  before(async () => {
    requireAgeCli();
    requirePgTools();
    dir = mkdtempSync(join(tmpdir(), 'orthid-backup-standby-'));
    key = ageKeygen(dir);
    primary = await startCluster();
    await query(primary.url, 'CREATE DATABASE orthid');
    env = {
      ORTHID_DATA_DIR: join(dir, 'data'),
      ORTHID_DATABASE_URL: dbUrl(primary),
      ORTHID_MASTER_KEY: MASTER,
      ORTHID_BACKUP_AGE_RECIPIENTS: key.recipient,
    };
    const app = await openOrthId(loadConfig(env), {
      initKeystore: true,
      migrate: true,
      log: createLogger('silent'),
    });
    const tenant = await app.tenants.create({ slug: 'acme', actor: 'test' });
    for (let n = 0; n < USERS; n += 100) {
      await withTenant(app.db, tenant.id, async (tx) => {
        for (let k = n; k < n + 100; k++) {
          await app.users.create(
            tx,
            tenant.id,
            { email: `user${k}@acme.example`, name: `User ${k}` },
            'test',
          );
        }
      });
    }
    await app.close();
    // What the test writes while dumps run, and a table a "migration" drops under a dump.
    await query(dbUrl(primary), 'CREATE TABLE replay_probe (i integer PRIMARY KEY)');
    await query(dbUrl(primary), 'CREATE TABLE conflict_probe (x integer)');
    // 4 MiB of random text in the table pg_dump copies first (its data goes in name order): a
    // dump whose output nobody reads cannot get past it, so pg_dump is still inside its
    // transaction, with queries left to send, whatever the socket buffers hold.
    await query(
      dbUrl(primary),
      `CREATE TABLE aaa_bulk_probe AS
         SELECT g AS i, (SELECT string_agg(md5(random()::text || g || k), '') FROM generate_series(1, 32) k) AS filler
           FROM generate_series(1, 4096) g`,
    );
    replica = await startStandby(primary, {
      // Feedback every second rather than every ten, so a test can wait for it.
      settings: { hot_standby_feedback: true, wal_receiver_status_interval: 1 },
    });
    strict = await startStandby(primary, {
      settings: { hot_standby_feedback: false, max_standby_streaming_delay: 0 },
    });
    const seeded = await currentWalLsn(primary.url);
    await waitForReplay(replica.url, seeded);
    await waitForReplay(strict.url, seeded);
  });
  after(() => {
    strict?.stop();
    replica?.stop();
    primary?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('reads the replica while the primary takes writes, and holds exactly what its recorded recovery point promises', async () => {
    const writer = await startWriter(dbUrl(primary));
    let result: CliResult;
    let replayedBefore: bigint;
    let startedAt: number;
    try {
      await writer.count(50);
      // The write position passes an asynchronous commit only once the WAL writer has written
      // it: wait for it to pass the fiftieth, so those writes are replayed before the dump begins.
      const fiftieth = writer.writes[49]!.after;
      const deadline = Date.now() + 30_000;
      let seen = await currentWalLsn(primary.url);
      while (lsn(seen) < fiftieth) {
        if (Date.now() > deadline)
          throw new Error(`the primary's WAL was not written past ${fiftieth} in 30 s`);
        await new Promise((resolve) => setTimeout(resolve, 20));
        seen = await currentWalLsn(primary.url);
      }
      await waitForReplay(replica.url, seen);
      replayedBefore = lsn(seen);
      startedAt = Date.now();
      result = await runCli(['backup', 'dump', '--encrypt', '--json'], fromReplica(replica, 'writes'));
      const dumped = writer.writes.length;
      await writer.count(dumped + 50); // writes go on after the dump's snapshot too
    } finally {
      await writer.stop();
    }
    assert.equal(result.code, 0, result.stderr);
    const manifest = JSON.parse(result.stdout) as Manifest;
    const source = manifest.database.source!;
    assert.equal(source.standby, true);
    const replay = source.replay!;
    assert.ok(lsn(replay.lsn) >= replayedBefore, `${replay.lsn} is before what the replica had replayed`);
    assert.ok(lsn(replay.lsnAfter) >= lsn(replay.lsn));
    const snapshotAt = Date.parse(source.snapshotAt);
    assert.ok(snapshotAt >= startedAt - 1000 && snapshotAt <= Date.parse(manifest.finishedAt) + 1000);

    // The rows the dump holds, read back from the encrypted part with the stock tools.
    const part = manifest.parts.find((p) => p.name === 'db.dump.age')!;
    const archive = join(dir, 'writes.dump');
    writeFileSync(archive, age(['-d', '-i', key.file, join(dir, 'writes', 'sets', ...part.key.split('/'))]));
    const restored = spawnSync('pg_restore', ['--data-only', '--table=replay_probe', '-f', '-', archive], {
      encoding: 'utf8',
    });
    assert.equal(restored.status, 0, restored.stderr);
    const body = restored.stdout.split('FROM stdin;\n')[1]!.split('\n\\.')[0]!;
    const held = new Set(body.split('\n').filter(Boolean).map(Number));

    const promised = writer.writes.filter((w) => w.after <= lsn(replay.lsn));
    const excluded = writer.writes.filter((w) => w.before >= lsn(replay.lsnAfter));
    assert.ok(promised.length >= 50 && excluded.length >= 1, 'writes on both sides of the snapshot');
    assert.deepEqual(
      promised.filter((w) => !held.has(w.i)).map((w) => w.i),
      [],
      'every write committed up to the recorded LSN is in the dump',
    );
    assert.deepEqual(
      excluded.filter((w) => held.has(w.i)).map((w) => w.i),
      [],
      'no write committed after the recorded upper LSN is in the dump',
    );
    // The last commit it names is at least as late as the last write the replica had replayed
    // before the dump began (the timestamp is read before the LSN, so replay may pass later
    // writes in between: the LSN can promise more than the timestamp names, never less).
    assert.ok(replay.lastCommitAt !== null);
    const replayedFirst = writer.writes.filter((w) => w.after <= replayedBefore);
    assert.ok(Date.parse(replay.lastCommitAt) >= replayedFirst.at(-1)!.committingAt);

    const listed = await runCli(['backup', 'list', '--json'], fromReplica(replica, 'writes'));
    assert.equal(listed.code, 0, listed.stderr);
    const [set] = (JSON.parse(listed.stdout) as { sets: { status: string; source: typeof source }[] }).sets;
    assert.equal(set!.status, 'complete');
    assert.deepEqual(set!.source, source);
    const text = await runCli(['backup', 'list'], fromReplica(replica, 'writes'));
    assert.match(text.stdout, new RegExp(`standby@${replay.lsn.replace('/', '\\/')}`));
  });

  test('a dump of the primary records that it read the primary', async () => {
    const result = await runCli(['backup', 'dump', '--encrypt', '--json'], {
      ...env,
      ORTHID_BACKUP_DEST: join(dir, 'primary', 'sets'),
      ORTHID_BACKUP_KEYSTORE_DEST: join(dir, 'primary', 'keys'),
    });
    assert.equal(result.code, 0, result.stderr);
    const { source } = (JSON.parse(result.stdout) as Manifest).database;
    assert.equal(source?.standby, false);
    assert.equal(source?.replay, undefined);
  });

  /** Polls `sql` (a count) on the strict replica until it is positive; fails once `run` exits. */
  async function untilOnStrict(run: ReturnType<typeof startCli>, sql: string, what: string): Promise<void> {
    let exited: CliResult | undefined;
    void run.done.then((r) => (exited = r));
    const deadline = Date.now() + 30_000;
    for (;;) {
      const [row] = await query<{ n: number }>(dbUrl(strict), sql);
      if (row!.n > 0) return;
      if (exited) throw new Error(`orthid exited (${exited.code}) before ${what}: ${exited.stderr}`);
      if (Date.now() > deadline) {
        run.child.kill('SIGKILL');
        throw new Error(`${what} did not happen within 30 s`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** pg_dump's locks on `table` on the strict replica, `granted` or waited for. */
  const dumpLocks = (table: string, granted: boolean) =>
    `SELECT count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity a USING (pid)
      WHERE l.relation = '${table}'::regclass AND l.granted = ${granted} AND a.application_name = 'orthid-backup'`;

  /**
   * Starts a dump from the strict replica and freezes the orthid process before pg_dump has
   * written a byte, so that pg_dump stays inside its transaction (the dump is larger than a pipe
   * holds) while the test changes the primary under it.
   *
   * Freezing orthid once it reports the part started is not enough: on a loaded machine it can
   * read all but the last pipe-full of pg_dump's output before the signal lands, and pg_dump then
   * ends its transaction and exits by itself (while the replica may still list its backend's
   * locks), so nothing is left for VACUUM to conflict with. So the primary holds an ACCESS
   * EXCLUSIVE lock on the table pg_dump copies first; replayed, it makes pg_dump wait on the
   * replica after importing the snapshot and before it writes anything (the custom format writes
   * once every catalog is read). orthid is frozen while pg_dump waits, then the lock is released.
   */
  async function frozenDump(name: string) {
    const holder = new pg.Client({ connectionString: dbUrl(primary) });
    await holder.connect();
    let run: ReturnType<typeof startCli> | undefined;
    try {
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE aaa_bulk_probe IN ACCESS EXCLUSIVE MODE');
      // The lock's WAL record is flushed (and so sent to the replicas) by the next commit.
      await query(primary.url, 'SELECT txid_current()');
      await waitForReplay(strict.url, await currentWalLsn(primary.url));
      run = startCli(['backup', 'dump', '--encrypt'], fromReplica(strict, name));
      await untilOnStrict(run, dumpLocks('aaa_bulk_probe', false), 'pg_dump waited for the replayed lock');
      run.child.kill('SIGSTOP');
    } finally {
      await holder.query('COMMIT').catch(() => {});
      await holder.end();
    }
    // Once replay releases the lock, pg_dump takes it, reads the catalogs and writes to a pipe
    // nobody reads: from holding this lock on, it is in its transaction until orthid reads again.
    await untilOnStrict(run, dumpLocks('aaa_bulk_probe', true), 'pg_dump locked the tables');
    await untilOnStrict(run, dumpLocks('conflict_probe', true), 'pg_dump locked the tables');
    return run;
  }

  test('a dump cancelled because VACUUM on the primary removed rows its snapshot needs is backup.recovery_conflict, names hot_standby_feedback, and leaves no complete set', async () => {
    // Whether the VACUUM's cleanup cancels pg_dump itself is not fully in the test's hands (the
    // standby may cancel another session, or pg_dump may already hold all it reads): a dump that
    // completed read its whole snapshot, so its set is sound, and the attempt is made again with
    // other rows. A dump that failed must fail with exactly the code and the setting below; a
    // dump that stored a set after pg_dump failed would complete every attempt and fail here.
    let result: CliResult | undefined;
    let name = '';
    for (let attempt = 1; attempt <= 3 && !result; attempt++) {
      name = `vacuumed-${attempt}`;
      const run = await frozenDump(name);
      try {
        // Rows the dump's snapshot sees (the first test wrote them), deleted after it was taken.
        const deleted = await query<{ i: number }>(
          dbUrl(primary),
          'DELETE FROM replay_probe WHERE i > $1 AND i <= $2 RETURNING i',
          [(attempt - 1) * 10, attempt * 10],
        );
        assert.equal(deleted.length, 10, 'the rows to vacuum away exist');
        // VACUUM removes the rows only once nothing on the primary may still need them: not the
        // other replica's hot_standby_feedback, not an autovacuum's ANALYZE; and it skips a page
        // another backend has pinned. Repeat until it kept none and missed none. (Rows a read
        // pruned meanwhile are gone too: that pruning is a conflict record just the same.)
        const vacuum = new pg.Client({ connectionString: dbUrl(primary) });
        await vacuum.connect();
        try {
          // "tuples: 10 removed, 1990 remain, 0 are dead but not yet removable, …" and, only when
          // some were, "tuples missed: 3 dead from 1 pages not removed due to cleanup lock contention".
          let kept = Number.POSITIVE_INFINITY;
          let missed = 0;
          vacuum.on('notice', (notice) => {
            const text = notice.message ?? '';
            const k = /(\d+) are dead but not yet removable/.exec(text);
            if (k) kept = Number(k[1]);
            const m = /tuples missed: (\d+) dead/.exec(text);
            if (m) missed = Number(m[1]);
          });
          const deadline = Date.now() + 30_000;
          for (;;) {
            kept = Number.POSITIVE_INFINITY;
            missed = 0;
            await vacuum.query('VACUUM (VERBOSE) replay_probe');
            if (kept === 0 && missed === 0) break;
            if (Date.now() > deadline) {
              throw new Error(`VACUUM kept ${kept} and missed ${missed} deleted rows for 30 s`);
            }
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
        } finally {
          await vacuum.end();
        }
        // VACUUM assigns no transaction id, so the primary writes and sends its WAL only in the
        // background, and the write position may not include it yet: waiting for that alone can let
        // the dump go on and finish before the conflict reaches it. A commit flushes all before it.
        await query(dbUrl(primary), 'SELECT txid_current()');
        // Replay passes the VACUUM only once the replica has cancelled what stood in its way.
        await waitForReplay(strict.url, await currentWalLsn(primary.url));
      } finally {
        run.child.kill('SIGCONT');
      }
      const done = await run.done;
      if (done.code === 0) continue;
      result = done;
    }
    assert.ok(result, 'three dumps in a row completed: the standby never cancelled pg_dump');
    assert.equal(result.code, exitCodes.unavailable, result.stderr);
    assert.match(result.stderr, /error\[backup\.recovery_conflict\]/);
    assert.match(result.stderr, /hot_standby_feedback = on/);
    assert.deepEqual(manifestsIn(join(dir, name, 'sets')), []);
    const listed = await runCli(['backup', 'list', '--json'], fromReplica(strict, name));
    assert.deepEqual(
      (JSON.parse(listed.stdout) as { sets: { status: string }[] }).sets.filter(
        (s) => s.status === 'complete',
      ),
      [],
    );
  });

  test('a dump cancelled by a lock a migration takes on the primary is backup.recovery_conflict and names max_standby_streaming_delay', async () => {
    const run = await frozenDump('dropped');
    try {
      await query(dbUrl(primary), 'DROP TABLE conflict_probe');
      await waitForReplay(strict.url, await currentWalLsn(primary.url));
    } finally {
      run.child.kill('SIGCONT');
    }
    const result = await run.done;
    assert.equal(result.code, exitCodes.unavailable, result.stderr);
    assert.match(result.stderr, /error\[backup\.recovery_conflict\]/);
    assert.match(result.stderr, /max_standby_streaming_delay/);
    assert.deepEqual(manifestsIn(join(dir, 'dropped', 'sets')), []);
  });

  test('two dumps from two different replicas of one primary: the second exits 5 with backup.locked', async () => {
    const first = startCli(['backup', 'dump', '--encrypt', '--json'], fromReplica(replica, 'first'));
    // The lock is taken before the set starts; freeze the first dump while it holds it.
    await first.seen(/"step":"backup\.started"/);
    first.child.kill('SIGSTOP');
    let second: CliResult;
    try {
      second = await runCli(['backup', 'dump', '--encrypt'], fromReplica(strict, 'second'));
    } finally {
      first.child.kill('SIGCONT');
    }
    assert.equal(second.code, exitCodes.conflict, second.stderr);
    assert.match(second.stderr, /error\[backup\.locked\]/);
    assert.deepEqual(manifestsIn(join(dir, 'second', 'sets')), []);
    const done = await first.done;
    assert.equal(done.code, 0, done.stderr);
    assert.equal((JSON.parse(done.stdout) as Manifest).database.source?.standby, true);
    assert.equal(manifestsIn(join(dir, 'first', 'sets')).length, 1);
  });

  test('ORTHID_DATABASE_URL naming a replica is refused: a lock there would not exclude the other replicas', async () => {
    const result = await runCli(['backup', 'dump', '--encrypt'], {
      ...fromReplica(replica, 'lock-on-replica'),
      ORTHID_DATABASE_URL: dbUrl(replica),
    });
    assert.equal(result.code, exitCodes.invalid, result.stderr);
    assert.match(result.stderr, /error\[config\.invalid\].*standby/);
    assert.deepEqual(manifestsIn(join(dir, 'lock-on-replica', 'sets')), []);
  });
});
