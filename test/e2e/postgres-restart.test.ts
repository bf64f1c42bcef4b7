// PostgreSQL going away under load (a restart, a crash, a connection killed mid-request) is an
// outage OrthID answers with 503 and Retry-After, not a crash, not a 500, and not a signed-out
// user: two real `orthid start` processes on a throwaway cluster that the test stops and starts.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { runCli } from '../helpers/cli.js';
import { consentToCallback, submitHostedSignIn } from '../helpers/hosted-sign-in.js';
import { type Cluster, freePort, query, startCluster } from '../helpers/postgres.js';
import { type ServerProcess, startServer } from '../helpers/server-process.js';

const PASSWORD = 'the database restarts, the users stay signed in';
const REDIRECT_URI = 'http://127.0.0.1:9/callback';

/** Every HTTP answer the test process received, with whether a 503 said when to retry. */
interface Seen {
  status: number;
  path: string;
  retryAfter: string | null;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('OrthID across a PostgreSQL restart, under load, on two replicas', { timeout: 110_000 }, () => {
  let cluster: Cluster;
  let dataDir: string;
  let databaseUrl: string;
  let dir: string;
  let replicas: ServerProcess[];
  let issuer: string;
  let client: { client_id: string; client_secret: string };
  const seen: Seen[] = [];
  const realFetch = globalThis.fetch;

  /** pg_ctl on the test's own cluster, as its owner. */
  function pgCtl(args: string[]): void {
    const binary = join(cluster.binDir, 'pg_ctl');
    const asRoot = process.getuid?.() === 0;
    const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', binary, ...args]] : [binary, args];
    const result = spawnSync(cmd, argv, { encoding: 'utf8', timeout: 30_000 });
    assert.equal(result.status, 0, `pg_ctl ${args.join(' ')}: ${result.stderr}${result.stdout}`);
  }

  /** The options the cluster was started with (port, socket directory, settings), to start it again alike. */
  function startOptions(): string {
    const tokens = [...readFileSync(join(dataDir, 'postmaster.opts'), 'utf8').matchAll(/"([^"]*)"/g)].map(
      (m) => m[1]!,
    );
    const at = tokens.indexOf('-D');
    if (at >= 0) tokens.splice(at, 2);
    return tokens.join(' ');
  }

  const stopPostgres = (mode: 'fast' | 'immediate') => pgCtl(['-D', dataDir, '-m', mode, '-w', 'stop']);
  const startPostgres = (options: string) =>
    pgCtl(['-D', dataDir, '-o', options, '-l', join(dirname(dataDir), 'log'), '-w', 'start']);

  before(async () => {
    cluster = await startCluster();
    dataDir = (await query<{ data_directory: string }>(cluster.url, 'SHOW data_directory'))[0]!
      .data_directory;
    await query(cluster.url, 'CREATE DATABASE orthid_restart');
    // The throwaway cluster runs with synchronous_commit off, which loses the last commits in a
    // crash (-m immediate): tokens answered, then gone. Production keeps it on, and so does this.
    await query(cluster.url, 'ALTER DATABASE orthid_restart SET synchronous_commit = on');
    databaseUrl = cluster.url.replace(/\/postgres$/, '/orthid_restart');
    dir = await mkdtemp(join(tmpdir(), 'orthid-pg-restart-'));
    const portA = await freePort();
    const publicUrl = `http://127.0.0.1:${portA}`;
    const env = {
      ORTHID_DATA_DIR: dir,
      ORTHID_DATABASE_URL: databaseUrl,
      ORTHID_MASTER_KEY: 'restart-test-master-secret-0123456789abcdef',
      ORTHID_PUBLIC_URL: publicUrl,
    };
    assert.equal((await runCli(['keystore', 'init'], env)).code, 0);
    assert.equal((await runCli(['migrate'], env)).code, 0);
    replicas = await Promise.all([
      startServer({ ...env, ORTHID_PORT: String(portA) }, 60_000, portA),
      startServer({
        ...env,
        ORTHID_DATA_DIR: join(dir, 'b'),
        ORTHID_KEYSTORE: `file://${join(dir, 'keystore')}`,
      }),
    ]);
    issuer = `${publicUrl}/t/acme`;
    assert.equal((await runCli(['tenant', 'create', 'acme'], env)).code, 0);
    const users = await Promise.all(
      [0, 1, 2, 3].map((i) =>
        runCli(
          ['user', 'create', '--tenant', 'acme', '--email', `u${i}@acme.test`, '--password-stdin'],
          env,
          `${PASSWORD}\n`,
        ),
      ),
    );
    for (const user of users) assert.equal(user.code, 0, user.stderr);
    const created = await runCli(
      [
        'client',
        'create',
        '--tenant',
        'acme',
        '--name',
        'Restart',
        '--grant',
        'authorization_code',
        '--grant',
        'refresh_token',
        '--redirect-uri',
        REDIRECT_URI,
        '--json',
      ],
      env,
    );
    assert.equal(created.code, 0, created.stderr);
    client = JSON.parse(created.stdout);
    // Records every answer, whoever asked (the sign-in helpers included).
    globalThis.fetch = async (input, init) => {
      const response = await realFetch(input, init);
      const url = new URL(input instanceof Request ? input.url : String(input));
      seen.push({
        status: response.status,
        path: url.pathname,
        retryAfter: response.headers.get('retry-after'),
      });
      return response;
    };
  });

  after(async () => {
    globalThis.fetch = realFetch;
    await Promise.all((replicas ?? []).map((r) => r.stop()));
    cluster?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const basic = () =>
    `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`;

  async function post(to: ServerProcess, path: string, body: Record<string, string>) {
    const response = await fetch(`${to.url}/t/acme${path}`, {
      method: 'POST',
      headers: { authorization: basic(), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(body),
    });
    const text = await response.text();
    return {
      status: response.status,
      retryAfter: response.headers.get('retry-after'),
      body: (text.startsWith('{') ? JSON.parse(text) : {}) as Record<string, string | boolean>,
    };
  }

  /** Sign-in through the hosted page and code exchange; undefined when the outage got in the way. */
  async function signIn(user: number, on: ServerProcess) {
    try {
      const signedIn = await submitHostedSignIn({
        issuer,
        client,
        redirectUri: REDIRECT_URI,
        email: `u${user}@acme.test`,
        password: PASSWORD,
        origin: on.url,
      });
      if (signedIn.posted.status !== 303) return undefined;
      const code = (await consentToCallback(signedIn, REDIRECT_URI)).searchParams.get('code');
      if (!code) return undefined;
      const exchanged = await post(on, '/token', {
        grant_type: 'authorization_code',
        code,
        redirect_uri: REDIRECT_URI,
        code_verifier: signedIn.verifier,
      });
      if (exchanged.status !== 200) return undefined;
      return {
        refresh: exchanged.body.refresh_token as string,
        access: exchanged.body.access_token as string,
      };
    } catch {
      // A page that is a 503 has no form to read: the user tries again later.
      return undefined;
    }
  }

  interface Chain {
    refresh: string;
    access: string;
    /** Refreshes that had to be retried (answered 503 first) and then succeeded. */
    retried: number;
  }

  /**
   * A client refreshing as a well-behaved one does: on 503 it waits as told and presents the
   * same refresh token again. invalid_grant means its grant was revoked: what must not happen.
   */
  async function refresh(chain: Chain, pick: () => ServerProcess, deadline: number): Promise<'ok' | string> {
    for (let attempt = 0; ; attempt++) {
      const answer = await post(pick(), '/token', {
        grant_type: 'refresh_token',
        refresh_token: chain.refresh,
      });
      if (answer.status === 200) {
        chain.refresh = answer.body.refresh_token as string;
        chain.access = answer.body.access_token as string;
        if (attempt > 0) chain.retried++;
        return 'ok';
      }
      if (answer.status === 400 && answer.body.error === 'invalid_grant') {
        return `invalid_grant (${answer.body.error_description}) after ${attempt} retries`;
      }
      assert.equal(
        answer.status,
        503,
        `a refresh was answered ${answer.status} ${JSON.stringify(answer.body)}`,
      );
      if (Date.now() > deadline) assert.fail('PostgreSQL was back, but a refresh kept being answered 503');
      await sleep(Number(answer.retryAfter ?? 1) * 1000);
    }
  }

  /**
   * Mixed load for the duration of `during` (which stops and starts PostgreSQL): each of four
   * users signs in through the hosted page, then refreshes and introspects in a loop, signing in
   * again now and then. About 30 to 60 requests a second, bounded by time and by count.
   */
  async function underLoad(during: () => Promise<void>) {
    let stop = false;
    const revoked: string[] = [];
    const chains: Chain[] = [];
    let turn = 0;
    const pick = () => replicas[turn++ % replicas.length]!;
    // Signed in before the clock starts, so every refreshing client holds a chain at the outage.
    const first = await Promise.all([0, 1, 2, 3].map((user) => signIn(user, pick())));
    for (const tokens of first) {
      assert.ok(tokens, 'every user signed in before the load');
      chains.push({ ...tokens, retried: 0 });
    }
    const from = seen.length;
    const began = Date.now();
    const refresher = async (user: number) => {
      let chain: Chain | undefined = chains[user];
      for (let round = 0; chain && !stop && round < 500; round++) {
        const refreshed = await refresh(chain, pick, Date.now() + 30_000);
        if (refreshed !== 'ok') {
          revoked.push(`u${user}: ${refreshed}`);
          chain = undefined;
          break;
        }
        const introspected = await post(pick(), '/token/introspection', { token: chain.access });
        if (introspected.status === 200) assert.equal(introspected.body.active, true);
        else assert.equal(introspected.status, 503);
        await sleep(10);
      }
    };
    // Sign-ins through the hosted page go on meanwhile; during the outage they fail with 503.
    const signer = async () => {
      for (let round = 0; !stop && round < 200; round++) {
        const tokens = await signIn(round % 4, pick());
        if (tokens) chains.push({ ...tokens, retried: 0 });
        else await sleep(200);
      }
    };
    const workers = [...[0, 1, 2, 3].map(refresher), signer()];
    try {
      await sleep(1500);
      await during();
      await sleep(1500);
    } finally {
      stop = true;
      await Promise.all(workers);
    }
    const answers = seen.slice(from);
    return { revoked, chains, answers, seconds: (Date.now() - began) / 1000 };
  }

  const readiness = async () =>
    Promise.all(replicas.map(async (r) => (await realFetch(`${r.url}/readyz`)).status));

  for (const mode of ['fast', 'immediate'] as const) {
    test(`PostgreSQL stopped with -m ${mode} and started again: both replicas live, 503 not 500, nobody signed out`, {
      timeout: 60_000,
    }, async (t) => {
      const options = startOptions();
      let notReady: number[] = [];
      let readyAfterMs = Number.POSITIVE_INFINITY;
      let retryAfter: string | null = null;
      const { revoked, chains, answers, seconds } = await underLoad(async () => {
        stopPostgres(mode);
        try {
          await sleep(1000);
          notReady = await readiness();
          retryAfter = (await realFetch(`${replicas[0]!.url}/readyz`)).headers.get('retry-after');
        } finally {
          // Whatever was seen, the next test finds PostgreSQL running.
          startPostgres(options);
        }
        const started = Date.now();
        for (let i = 0; i < 150 && (await readiness()).some((s) => s !== 200); i++) await sleep(100);
        readyAfterMs = Date.now() - started;
      });

      for (const replica of replicas) assert.equal(replica.child.exitCode, null, replica.output());
      assert.deepEqual(notReady, [503, 503], '/readyz says not ready while PostgreSQL is down');
      assert.ok(retryAfter, '/readyz 503 says when to retry');
      assert.ok(readyAfterMs < 15_000, `ready again ${readyAfterMs} ms after PostgreSQL was`);
      const errors = answers.filter((a) => a.status >= 500);
      assert.deepEqual(
        errors.filter((a) => a.status !== 503),
        [],
        'no request is answered 500 (or anything but 503)',
      );
      // Nothing in this load is refused on its merits: a 4xx would be an outage passed off as the
      // user's fault (say, "this sign-in request has expired").
      assert.deepEqual(
        answers.filter((a) => a.status >= 400 && a.status < 500),
        [],
        'no request is refused with a 4xx because of the outage',
      );
      assert.deepEqual(
        errors.filter((a) => a.retryAfter === null),
        [],
        'every 503 says when to retry',
      );
      const counts = new Map<string, number>();
      for (const e of errors) {
        const key = `${e.status} ${e.path.replace(/interaction\/[^/]+/, 'interaction/…')}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      const summary = JSON.stringify([...counts]);
      assert.ok(errors.length > 0, 'the load met the outage');
      assert.deepEqual(revoked, [], 'no refresh chain was revoked');
      // Every chain still refreshes: nobody was signed out by the outage.
      for (const chain of chains) {
        assert.equal(await refresh(chain, () => replicas[0]!, Date.now() + 10_000), 'ok');
      }
      assert.ok(answers.length > 50 && answers.length < 10_000, `${answers.length} requests`);
      t.diagnostic(
        `${answers.length} requests in ${seconds.toFixed(1)} s; ready ${readyAfterMs} ms after PostgreSQL; 5xx: ${summary}`,
      );
      assert.ok(
        chains.some((c) => c.retried > 0),
        `some refresh met the outage and was retried with the same token; 5xx: ${summary}`,
      );
    });
  }

  /**
   * Makes every insert of `model` into oidc_payloads sleep 30 s until `release` runs: the write
   * stalls where a test wants the connection to die.
   */
  async function stallWrites(model: string): Promise<() => Promise<void>> {
    await query(
      databaseUrl,
      `CREATE FUNCTION orthid_test_stall() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN IF NEW.model = '${model}' THEN PERFORM pg_sleep(30); END IF; RETURN NEW; END $$`,
    );
    await query(
      databaseUrl,
      'CREATE TRIGGER orthid_test_stall BEFORE INSERT ON oidc_payloads FOR EACH ROW EXECUTE FUNCTION orthid_test_stall()',
    );
    return async () => {
      await query(databaseUrl, 'DROP TRIGGER orthid_test_stall ON oidc_payloads');
      await query(databaseUrl, 'DROP FUNCTION orthid_test_stall()');
    };
  }

  /** Terminates the connections sleeping in a stalled write; returns how many. */
  async function killStalled(): Promise<number> {
    const rows = await query<{ killed: boolean }>(
      databaseUrl,
      `SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity
        WHERE datname = current_database() AND wait_event = 'PgSleep' AND pid <> pg_backend_pid()`,
    );
    return rows.filter((r) => r.killed).length;
  }

  test('a refresh whose connection is killed after it consumed its token answers 503, and its retry succeeds', {
    timeout: 30_000,
  }, async () => {
    const [a, b] = replicas as [ServerProcess, ServerProcess];
    let chain: Chain | undefined;
    for (let i = 0; !chain && i < 5; i++) {
      const tokens = await signIn(0, a);
      if (tokens) chain = { ...tokens, retried: 0 };
    }
    assert.ok(chain, 'signed in');
    // The access token is the refresh's last write: stall it there, then kill the connection.
    const release = await stallWrites('AccessToken');
    try {
      const pending = post(a, '/token', { grant_type: 'refresh_token', refresh_token: chain.refresh });
      let killed = false;
      for (let i = 0; !killed && i < 100; i++) {
        killed = (await killStalled()) > 0;
        if (!killed) await sleep(50);
      }
      assert.ok(killed, 'the refresh reached its access token write');
      const answer = await pending;
      assert.equal(answer.status, 503);
      assert.equal(answer.body.error, 'temporarily_unavailable');
      assert.ok(answer.retryAfter);
    } finally {
      await release();
    }
    assert.equal(a.child.exitCode, null, a.output());
    // The client never got an answer with new tokens, so it presents the same refresh token again.
    assert.equal(await refresh(chain, () => b, Date.now() + 10_000), 'ok');
    assert.equal(await refresh(chain, () => a, Date.now() + 10_000), 'ok');
  });
  test('a sign-in resume whose session write is cut off, and again when the engine saves it once more, answers 503 with Retry-After, not 500', {
    timeout: 30_000,
  }, async () => {
    const [a] = replicas as [ServerProcess];
    let signedIn: Awaited<ReturnType<typeof submitHostedSignIn>> | undefined;
    for (let i = 0; !signedIn && i < 5; i++) {
      const attempt = await submitHostedSignIn({
        issuer,
        client,
        redirectUri: REDIRECT_URI,
        email: 'u2@acme.test',
        password: PASSWORD,
        origin: a.url,
      });
      if (attempt.posted.status === 303) signedIn = attempt;
    }
    assert.ok(signedIn, 'the password was accepted');
    const resume = new URL(signedIn.posted.headers.get('location')!, a.url);
    assert.match(resume.pathname, /^\/t\/acme\/auth\//);
    // The resume signs the browser in, so it saves the session; the engine saves it once more
    // after its error handler has answered. Both writes stall here and their connections are
    // killed, as an outage that lasts longer than one statement does.
    const release = await stallWrites('Session');
    try {
      let settled = false;
      const pending = signedIn.browser.get(resume.href).finally(() => {
        settled = true;
      });
      let kills = 0;
      for (let i = 0; !settled && i < 300; i++) {
        kills += await killStalled();
        await sleep(50);
      }
      const answer = await pending;
      assert.ok(kills >= 2, `the session write was cut off twice (${kills})`);
      assert.equal(answer.status, 503, await answer.text());
      assert.ok(answer.headers.get('retry-after'), 'the 503 says when to retry');
    } finally {
      await release();
    }
    assert.equal(a.child.exitCode, null, a.output());
    // The user starts again and signs in.
    let tokens: Awaited<ReturnType<typeof signIn>>;
    for (let i = 0; !tokens && i < 5; i++) tokens = await signIn(2, a);
    assert.ok(tokens, 'signed in after the outage');
  });
  test('an introspection whose connection is killed while it waits answers 503 temporarily_unavailable, not 500 server_error', {
    timeout: 30_000,
  }, async () => {
    const [a] = replicas as [ServerProcess];
    let tokens: { refresh: string; access: string } | undefined;
    for (let i = 0; !tokens && i < 5; i++) tokens = await signIn(1, a);
    assert.ok(tokens, 'signed in');
    // The provider's token lookup waits behind this lock; then its connection is terminated.
    const locker = new pg.Client({ connectionString: databaseUrl });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE oidc_payloads IN ACCESS EXCLUSIVE MODE');
      const pending = post(a, '/token/introspection', { token: tokens.access });
      let killed = false;
      for (let i = 0; !killed && i < 100; i++) {
        const { rows } = await locker.query<{ killed: boolean }>(
          `SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity
            WHERE datname = current_database() AND wait_event_type = 'Lock' AND application_name = 'orthid'`,
        );
        killed = rows.some((r) => r.killed);
        if (!killed) await sleep(50);
      }
      assert.ok(killed, 'the introspection waited for the lock');
      await locker.query('COMMIT');
      const answer = await pending;
      assert.equal(answer.status, 503, JSON.stringify(answer.body));
      assert.equal(answer.body.error, 'temporarily_unavailable');
      assert.ok(answer.retryAfter);
    } finally {
      await locker.end();
    }
    assert.equal(a.child.exitCode, null, a.output());
    const again = await post(a, '/token/introspection', { token: tokens.access });
    assert.equal(again.body.active, true);
  });
});
