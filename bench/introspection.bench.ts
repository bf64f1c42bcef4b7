// Row 4, introspection and userinfo: requests per second and p99 through `orthid start` on real
// PostgreSQL, with 1 000 users against `users` users (default 1 000 000), in the same run. The
// baseline column is the 1 000-user database; the ratio (large / small) must be ≥ 0.9, i.e. the
// cost must not grow with the number of users. Target for introspection: ≥ 4 800/s with p99 < 25 ms.
//
// Run: npm run build && npm run bench -- introspection [users=1000000] [seconds-per-run=5] [runs=3] [connections=10]
//      (needs PostgreSQL server binaries: apt-get install -y postgresql)
//
// Data: one throwaway cluster, two databases, each migrated and given a tenant `bench` by OrthID,
// then filled by the data generator (bench/seed.ts: COPY, users with sealed fields and blind
// index, one organisation per 10 users, one membership each). 1 000 opaque access tokens per
// database (scope openid email profile), for random users, minted through the provider's own
// models and the Postgres adapter as a code flow leaves them. One `orthid start` per database.
// Load (bench/lib/load.ts): `connections` keep-alive loops, each request the next token in turn:
// POST /token/introspection (HTTP Basic, a confidential client) and GET /me (Bearer).
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { loadConfig } from '../src/config/config.js';
import { createLogger } from '../src/core/logger.js';
import { openOrthId } from '../src/main.js';
import { withTenant } from '../src/storage/db/database.js';
import { cliEnv } from '../test/helpers/cli.js';
import { freePort, startCluster } from '../test/helpers/postgres.js';
import { clusterCpuSeconds, cpuSeconds, postmasterPid } from './lib/cpu.js';
import type { LoadResult, LoadSpec } from './lib/load.js';
import { collect, load, stop, waitFor } from './lib/processes.js';
import { exitOnVerdicts, formatSpread, median, printHeader, printRow } from './lib/report.js';
import { BENCH_MASTER_KEY, seedTenant } from './seed.js';

const USERS = Number(process.argv[2] ?? 1_000_000);
const SECONDS = Number(process.argv[3] ?? 5);
const RUNS = Number(process.argv[4] ?? 3);
const CONNECTIONS = Math.min(20, Number(process.argv[5] ?? 10));
const TOKENS = 1000;
const SCOPE = 'openid email profile';
const BUILT_CLI =
  process.env.ORTHID_BENCH_CLI ?? fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));

if (!existsSync(BUILT_CLI)) {
  console.error('Build first (npm run build): this row measures the built CLI, as deployed.');
  process.exit(2);
}

interface Dataset {
  users: number;
  url: string;
  /** The `orthid start` serving this database. */
  pid: number;
  introspection: LoadSpec;
  userinfo: LoadSpec;
}

const scratch = mkdtempSync(join(tmpdir(), 'orthid-bench-introspection-'));
const cluster = await startCluster();
const children: ChildProcess[] = [];

async function prepare(users: number): Promise<Dataset> {
  const name = `bench_${users}`;
  const admin = new pg.Client({ connectionString: cluster.url });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const dbUrl = new URL(cluster.url);
  dbUrl.pathname = `/${name}`;
  const port = await freePort();
  const publicUrl = `http://127.0.0.1:${port}`;
  const env = {
    ORTHID_DATA_DIR: join(scratch, name),
    ORTHID_DATABASE_URL: dbUrl.toString(),
    ORTHID_MASTER_KEY: BENCH_MASTER_KEY,
    ORTHID_PUBLIC_URL: publicUrl,
    ORTHID_PORT: String(port),
    ORTHID_LOG_LEVEL: 'warn',
  };
  const app = await openOrthId(loadConfig(env), {
    initKeystore: true,
    migrate: true,
    log: createLogger('silent'),
  });
  let tokens: string[];
  let resourceServer: { id: string; secret: string };
  try {
    const tenant = await app.tenants.create({ slug: 'bench', actor: 'bench' });
    const clients = await withTenant(app.db, tenant.id, async (tx) => {
      const rs = await app.clients.create(
        tx,
        tenant.id,
        { name: 'Bench resource server', grantTypes: ['client_credentials'] },
        'bench',
      );
      const rp = await app.clients.create(
        tx,
        tenant.id,
        {
          name: 'Bench RP',
          grantTypes: ['authorization_code'],
          redirectUris: ['https://rp.bench.example/cb'],
        },
        'bench',
      );
      return { rs: { id: rs.clientId, secret: rs.clientSecret! }, rp: rp.clientId };
    });
    resourceServer = clients.rs;
    const started = performance.now();
    await seedTenant(app, dbUrl.toString(), tenant.id, {
      users,
      orgs: Math.max(1, Math.floor(users / 10)),
      auditEvents: 0,
    });
    console.log(`seeded ${users} users in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    const picker = new pg.Client({ connectionString: dbUrl.toString() });
    await picker.connect();
    const { rows } = await picker.query<{ id: string }>(
      'SELECT id FROM users WHERE tenant_id = $1 ORDER BY random() LIMIT $2',
      [tenant.id, TOKENS],
    );
    await picker.end();
    // Opaque access tokens as a code flow leaves them, through the provider's models and adapter.
    const { provider } = await app.oidc.get('bench');
    const client = await provider.Client.find(clients.rp);
    tokens = [];
    for (const { id } of rows) {
      const grant = new provider.Grant({ accountId: id, clientId: clients.rp });
      grant.addOIDCScope(SCOPE);
      const grantId = await grant.save();
      const token = new provider.AccessToken({
        accountId: id,
        client,
        grantId,
        scope: SCOPE,
        gty: 'authorization_code',
      } as never);
      tokens.push(await token.save());
    }
  } finally {
    await app.close();
  }

  const server = spawn(process.execPath, [BUILT_CLI, 'start'], {
    env: cliEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(server);
  await waitFor(`${publicUrl}/readyz`, server, collect(server));
  const basic = `Basic ${Buffer.from(`${encodeURIComponent(resourceServer.id)}:${encodeURIComponent(resourceServer.secret)}`).toString('base64')}`;
  const base = { connections: CONNECTIONS, seconds: SECONDS };
  return {
    users,
    url: publicUrl,
    pid: server.pid!,
    introspection: {
      ...base,
      url: `${publicUrl}/t/bench/token/introspection`,
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
      // Resource servers name the kind of token they hold; without the hint the provider looks in
      // three tables.
      variants: tokens.map((t) => ({
        body: new URLSearchParams({ token: t, token_type_hint: 'access_token' }).toString(),
      })),
    },
    userinfo: {
      ...base,
      url: `${publicUrl}/t/bench/me`,
      method: 'GET',
      headers: {},
      variants: tokens.map((t) => ({ headers: { authorization: `Bearer ${t}` } })),
    },
  };
}

try {
  const small = await prepare(1000);
  const large = await prepare(USERS);

  // Each answers as expected before anything is measured.
  for (const set of [small, large]) {
    const first = set.introspection.variants![0]!;
    const response = await fetch(set.introspection.url, {
      method: 'POST',
      headers: set.introspection.headers,
      body: first.body!,
    });
    const body = (await response.json()) as { active?: boolean };
    if (!body.active)
      throw new Error(`introspection at ${set.url} did not find its token: ${JSON.stringify(body)}`);
    const info = await fetch(set.userinfo.url, { headers: set.userinfo.variants![0]!.headers! });
    const claims = (await info.json()) as { email?: string };
    if (!claims.email?.endsWith('@bench.example')) {
      throw new Error(`userinfo at ${set.url} did not answer the user's email: ${JSON.stringify(claims)}`);
    }
  }

  const warm = Math.min(2, SECONDS);
  for (const set of [small, large]) {
    await load({ ...set.introspection, seconds: warm });
    await load({ ...set.userinfo, seconds: warm });
  }
  interface Run extends LoadResult {
    /** CPU milliseconds per answered request: the server process, and the whole cluster. */
    serverMs: number;
    pgMs: number;
  }
  const postmaster = postmasterPid(cluster.port);
  const measure = async (set: Dataset, spec: LoadSpec): Promise<Run> => {
    const before = { server: cpuSeconds(set.pid), pg: postmaster ? clusterCpuSeconds(postmaster) : 0 };
    const result = await load(spec);
    const answered = Math.max(1, result.rps * result.seconds);
    return {
      ...result,
      serverMs: ((cpuSeconds(set.pid) - before.server) * 1000) / answered,
      pgMs: postmaster ? ((clusterCpuSeconds(postmaster) - before.pg) * 1000) / answered : 0,
    };
  };
  const runs = {
    small: { i: [] as Run[], u: [] as Run[] },
    large: { i: [] as Run[], u: [] as Run[] },
  };
  for (let run = 0; run < RUNS; run++) {
    // Which goes first alternates, so a drift in the machine's speed hits both alike.
    const order = run % 2 === 0 ? (['small', 'large'] as const) : (['large', 'small'] as const);
    for (const kind of ['i', 'u'] as const) {
      for (const size of order) {
        const set = size === 'small' ? small : large;
        runs[size][kind].push(await measure(set, kind === 'i' ? set.introspection : set.userinfo));
      }
    }
  }
  const failed = [...runs.small.i, ...runs.large.i, ...runs.small.u, ...runs.large.u].find(
    (r) => r.errors > 0,
  );
  if (failed) console.log(`failed requests, first: ${failed.firstError}`);

  printHeader(
    `Introspection and userinfo, opaque tokens, 1 000 vs ${USERS.toLocaleString('en')} users, ${CONNECTIONS} connections × ${SECONDS} s`,
    RUNS,
  );
  const introspectionRps = median(runs.large.i.map((r) => r.rps));
  const introspectionP99 = median(runs.large.i.map((r) => r.p99));
  const absolute = introspectionRps >= 4800 && introspectionP99 < 25;
  const verdicts = [
    printRow({
      name: `introspection, 1 000 → ${USERS} users`,
      baseline: runs.small.i.map((r) => r.rps),
      orthid: runs.large.i.map((r) => r.rps),
      unit: 'req/s',
      target: { kind: 'ratio-at-least', value: 0.9 },
      extraPass: absolute,
      notes: `and ≥ 4 800/s, p99 < 25 ms at ${USERS} users: ${absolute ? 'met' : 'missed'}`,
    }),
    printRow({
      name: `userinfo, 1 000 → ${USERS} users`,
      baseline: runs.small.u.map((r) => r.rps),
      orthid: runs.large.u.map((r) => r.rps),
      unit: 'req/s',
      target: { kind: 'ratio-at-least', value: 0.9 },
    }),
  ];
  for (const [label, set] of [
    ['introspection', 'i'],
    ['userinfo', 'u'],
  ] as const) {
    console.log(
      `  ${label} p99: 1 000 users ${formatSpread(
        runs.small[set].map((r) => r.p99),
        'ms',
        1,
      )}; ${USERS} users ${formatSpread(
        runs.large[set].map((r) => r.p99),
        'ms',
        1,
      )}`,
    );
  }
  const cpu = (rs: Run[]) =>
    `server ${median(rs.map((r) => r.serverMs)).toFixed(2)} ms, PostgreSQL ${median(rs.map((r) => r.pgMs)).toFixed(2)} ms`;
  console.log(
    `  CPU per request (median): introspection 1 000 users ${cpu(runs.small.i)}; ${USERS} users ${cpu(runs.large.i)}`,
  );
  console.log(
    `  CPU per request (median): userinfo 1 000 users ${cpu(runs.small.u)}; ${USERS} users ${cpu(runs.large.u)}`,
  );
  exitOnVerdicts(verdicts);
} finally {
  for (const child of children) await stop(child);
  cluster.stop();
  rmSync(scratch, { recursive: true, force: true });
}
