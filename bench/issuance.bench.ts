// Row 1, token issuance: client-credentials grants per second through a real `orthid start`
// process on a throwaway PostgreSQL, against a bare `oidc-provider` (in-memory adapter) with the
// same signing algorithm (EdDSA) and the same token shape (JWT access token for one API
// resource, one permission in `scope`). Target: ratio ≥ 0.6, and OrthID ≥ 600 grants/s with
// p99 < 50 ms.
//
// Run: npm run build && npm run bench -- issuance [seconds-per-run=5] [runs=3] [connections=10]
//      (needs PostgreSQL server binaries: apt-get install -y postgresql)
//
// Data: a fresh cluster (test/helpers/postgres.ts startCluster: fsync off), migrated in-process;
// through OrthID's domain services one tenant `bench`, an API resource, a permission
// `orders:read`, a role holding it, and a client-credentials client granted that role. Then the
// built CLI (dist/cli/main.js start) serves it. The bare provider runs in its own process too.
// Load comes from a third process (bench/lib/load.ts): `connections` keep-alive loops, each
// POSTing grant_type=client_credentials with HTTP Basic client authentication, for a fixed time;
// only 2xx answers count. Runs alternate bare / OrthID, after one untimed warm-up run of each.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config/config.js';
import { createLogger } from '../src/core/logger.js';
import { openOrthId } from '../src/main.js';
import { withTenant } from '../src/storage/db/database.js';
import { cliEnv } from '../test/helpers/cli.js';
import { freePort } from '../test/helpers/postgres.js';
import { clusterCpuSeconds, cpuSeconds, postmasterPid } from './lib/cpu.js';
import type { LoadSpec } from './lib/load.js';
import { mintRefreshTokens } from './lib/mint-refresh-tokens.js';
import { benchDeployment, collect, load, serverNodeArgs, stop, waitFor } from './lib/processes.js';
import { exitOnVerdicts, formatSpread, median, printHeader, printRow } from './lib/report.js';

const SECONDS = Number(process.argv[2] ?? 5);
const RUNS = Number(process.argv[3] ?? 3);
const CONNECTIONS = Math.min(20, Number(process.argv[4] ?? 10));
const MASTER = 'bench-master-secret-0123456789-abcdefghijklmnop';
const RESOURCE = 'https://api.bench.example';
const SCOPE = 'orders:read';
// ORTHID_BENCH_CLI: another build of the CLI (e.g. one made beside dist/ while others use it).
const BUILT_CLI =
  process.env.ORTHID_BENCH_CLI ?? fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const BARE = fileURLToPath(new URL('./lib/bare-provider.ts', import.meta.url));

if (!existsSync(BUILT_CLI)) {
  console.error('Build first (npm run build): this row measures the built CLI, as deployed.');
  process.exit(2);
}

function refreshSpec(url: string, clientId: string, secret: string, refreshTokens: string[]): LoadSpec {
  return {
    ...grantSpec(url, clientId, secret),
    body: 'grant_type=refresh_token',
    refreshTokens,
  };
}

function grantSpec(url: string, clientId: string, secret: string): LoadSpec {
  return {
    url,
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      resource: RESOURCE,
      scope: SCOPE,
    }).toString(),
    connections: CONNECTIONS,
    seconds: SECONDS,
  };
}

const { scratch, cluster, publicUrl, env } = await benchDeployment('issuance', MASTER);
const children: ChildProcess[] = [];
try {
  // Seed through the domain services, as `orthid tenant/client create` would.
  const config = loadConfig(env);
  const app = await openOrthId(config, { initKeystore: true, migrate: true, log: createLogger('silent') });
  const { db } = app;
  const tenant = await app.tenants.create({ slug: 'bench', actor: 'bench' });
  const client = await withTenant(db, tenant.id, async (tx) => {
    const api = await app.rbac.resources.create(
      tx,
      tenant.id,
      { indicator: RESOURCE, name: 'Bench API' },
      'bench',
    );
    const permission = await app.rbac.permissions.create(tx, tenant.id, api.id, { name: SCOPE }, 'bench');
    const role = await app.rbac.roles.create(tx, tenant.id, { name: 'reader' }, 'bench');
    await app.rbac.roles.addPermission(tx, tenant.id, role.id, permission.id, 'bench');
    const created = await app.clients.create(
      tx,
      tenant.id,
      { name: 'Bench machine', grantTypes: ['client_credentials'], resources: [RESOURCE] },
      'bench',
    );
    await app.rbac.clientRoles.grant(tx, tenant.id, created.clientId, role.id, 'bench');
    // The refresh-token row: a relying party, and a user holding the same role in an organisation.
    const rp = await app.clients.create(
      tx,
      tenant.id,
      {
        name: 'Bench RP',
        grantTypes: ['authorization_code', 'refresh_token'],
        redirectUris: ['https://rp.bench.example/cb'],
        resources: [RESOURCE],
      },
      'bench',
    );
    const user = await app.users.create(
      tx,
      tenant.id,
      { email: 'refresh@bench.example', name: 'Refresh Bench', emailVerified: true },
      'bench',
    );
    const org = await app.rbac.organisations.create(tx, tenant.id, { name: 'Bench org' }, 'bench');
    const membership = await app.rbac.memberships.add(tx, tenant.id, org.id, user.id, 'bench');
    await app.rbac.memberships.grantRole(tx, tenant.id, membership.id, role.id, 'bench');
    return {
      id: created.clientId,
      secret: created.clientSecret!,
      rp: { id: rp.clientId, secret: rp.clientSecret! },
      userId: user.id,
    };
  });
  // Refresh tokens as a code flow would leave them, through the provider's own models and the
  // Postgres adapter; the process started below finds them in the database. One chain per
  // connection and run (a chain survives a run, but a failed request would end it).
  const { provider: inProcess } = await app.oidc.get('bench');
  const chains = RUNS + 1;
  const ourRefreshTokens = await mintRefreshTokens(inProcess, {
    clientId: client.rp.id,
    accountId: client.userId,
    resource: RESOURCE,
    scope: SCOPE,
    count: CONNECTIONS * chains,
  });
  await app.close();

  const orthid = spawn(process.execPath, [...serverNodeArgs(), BUILT_CLI, 'start'], {
    env: cliEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(orthid);
  const orthidOutput = collect(orthid);
  await waitFor(`${publicUrl}/readyz`, orthid, orthidOutput);

  const barePort = await freePort();
  const bareSecret = randomBytes(24).toString('base64url');
  const bare = spawn(
    process.execPath,
    ['--import', 'tsx', BARE, String(barePort), 'bench-client', bareSecret, RESOURCE, SCOPE],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.push(bare);
  const bareOutput = collect(bare);
  await waitFor(`http://127.0.0.1:${barePort}/.well-known/openid-configuration`, bare, bareOutput);

  const oursSpec = grantSpec(`${publicUrl}/t/bench/token`, client.id, client.secret);
  const bareSpec = grantSpec(`http://127.0.0.1:${barePort}/token`, 'bench-client', bareSecret);
  // The bare provider's default in-memory adapter is an LRU of 1 000 entries, so its refresh
  // tokens are minted right before each run, or a run's churn would evict the next run's.
  const bareMint = async (): Promise<string[]> => {
    const response = await fetch(`http://127.0.0.1:${barePort}/bench/refresh-tokens?count=${CONNECTIONS}`, {
      method: 'POST',
    });
    return (await response.json()) as string[];
  };
  const oursRefresh = (run: number) =>
    refreshSpec(
      `${publicUrl}/t/bench/token`,
      client.rp.id,
      client.rp.secret,
      ourRefreshTokens.slice(run * CONNECTIONS, (run + 1) * CONNECTIONS),
    );
  const bareRefresh = async () =>
    refreshSpec(`http://127.0.0.1:${barePort}/token`, 'bench-client-rp', bareSecret, await bareMint());

  // Check both answer a grant with a JWT access token before measuring anything.
  for (const spec of [oursSpec, bareSpec]) {
    const response = await fetch(spec.url, { method: 'POST', headers: spec.headers, body: spec.body! });
    const body = (await response.json()) as { access_token?: string; error?: string };
    if (response.status !== 200 || body.access_token?.split('.').length !== 3) {
      throw new Error(
        `${spec.url} did not issue a JWT access token: ${response.status} ${JSON.stringify(body)}`,
      );
    }
    const header = JSON.parse(Buffer.from(body.access_token.split('.')[0]!, 'base64url').toString()) as {
      alg: string;
    };
    if (header.alg !== 'EdDSA') throw new Error(`${spec.url} signed with ${header.alg}, not EdDSA`);
  }

  // Warm-up (JIT, connection pool, provider cache), shorter than a run.
  await load({ ...bareSpec, seconds: Math.min(2, SECONDS) });
  await load({ ...oursSpec, seconds: Math.min(2, SECONDS) });
  await load({ ...(await bareRefresh()), seconds: Math.min(2, SECONDS) });
  await load({ ...oursRefresh(RUNS), seconds: Math.min(2, SECONDS) });
  // CPU milliseconds per grant: the bare process; OrthID's process plus PostgreSQL's.
  const postmaster = postmasterPid(cluster.port);
  const measured = async (spec: LoadSpec, pids: { node: number; postmaster?: number }) => {
    const cpu = () => ({
      node: cpuSeconds(pids.node),
      pg: pids.postmaster === undefined ? 0 : clusterCpuSeconds(pids.postmaster),
    });
    const before = cpu();
    const result = await load(spec);
    const after = cpu();
    const per = (s: number) => (s * 1000) / Math.max(1, result.requests);
    return { ...result, nodeMs: per(after.node - before.node), pgMs: per(after.pg - before.pg) };
  };
  const barePids = { node: bare.pid! };
  const ourPids = { node: orthid.pid!, ...(postmaster ? { postmaster } : {}) };
  type Measured = Awaited<ReturnType<typeof measured>>;
  const cpuLine = (label: string, bareRs: Measured[], ourRs: Measured[]) =>
    console.log(
      `  ${label} CPU ms per grant (median): bare ${median(bareRs.map((r) => r.nodeMs)).toFixed(2)}; OrthID ${median(
        ourRs.map((r) => r.nodeMs),
      ).toFixed(2)} + PostgreSQL ${median(ourRs.map((r) => r.pgMs)).toFixed(2)}`,
    );
  const bareRuns: Measured[] = [];
  const ourRuns: Measured[] = [];
  const bareRefreshRuns: Measured[] = [];
  const ourRefreshRuns: Measured[] = [];
  for (let run = 0; run < RUNS; run++) {
    bareRuns.push(await measured(bareSpec, barePids));
    ourRuns.push(await measured(oursSpec, ourPids));
    bareRefreshRuns.push(await measured(await bareRefresh(), barePids));
    ourRefreshRuns.push(await measured(oursRefresh(run), ourPids));
  }
  for (const [name, runs] of [
    ['bare', bareRuns],
    ['orthid', ourRuns],
    ['bare refresh', bareRefreshRuns],
    ['orthid refresh', ourRefreshRuns],
  ] as const) {
    const errors = runs.reduce((n, r) => n + r.errors, 0);
    if (errors > 0)
      console.log(`${name}: ${errors} failed requests, first: ${runs.find((r) => r.firstError)!.firstError}`);
  }

  printHeader(
    `Token issuance, client credentials, EdDSA JWT, ${CONNECTIONS} connections × ${SECONDS} s`,
    RUNS,
  );
  const oursMedian = median(ourRuns.map((r) => r.rps));
  const p99 = median(ourRuns.map((r) => r.p99));
  const absoluteOk = oursMedian >= 600 && p99 < 50;
  const verdict = printRow({
    name: 'client-credentials grants',
    baseline: bareRuns.map((r) => r.rps),
    orthid: ourRuns.map((r) => r.rps),
    unit: 'grants/s',
    target: { kind: 'ratio-at-least', value: 0.6 },
    extraPass: absoluteOk,
    notes: `and ≥ 600/s, p99 < 50 ms: ${absoluteOk ? 'met' : 'missed'}`,
  });
  console.log(
    `  p99 latency: bare ${formatSpread(
      bareRuns.map((r) => r.p99),
      'ms',
      1,
    )}; OrthID ${formatSpread(
      ourRuns.map((r) => r.p99),
      'ms',
      1,
    )}`,
  );
  console.log(
    `  p50 latency: bare ${formatSpread(
      bareRuns.map((r) => r.p50),
      'ms',
      1,
    )}; OrthID ${formatSpread(
      ourRuns.map((r) => r.p50),
      'ms',
      1,
    )}`,
  );
  cpuLine('client credentials', bareRuns, ourRuns);

  const refreshMedian = median(ourRefreshRuns.map((r) => r.rps));
  const refreshOk = refreshMedian >= 600;
  const refreshVerdict = printRow({
    name: 'refresh-token grants (rotating)',
    baseline: bareRefreshRuns.map((r) => r.rps),
    orthid: ourRefreshRuns.map((r) => r.rps),
    unit: 'grants/s',
    target: { kind: 'ratio-at-least', value: 0 },
    extraPass: refreshOk,
    notes: `≥ 600/s: ${refreshOk ? 'met' : 'missed'}`,
  });
  console.log(
    `  refresh p99: bare ${formatSpread(
      bareRefreshRuns.map((r) => r.p99),
      'ms',
      1,
    )}; OrthID ${formatSpread(
      ourRefreshRuns.map((r) => r.p99),
      'ms',
      1,
    )}`,
  );
  cpuLine('refresh', bareRefreshRuns, ourRefreshRuns);
  exitOnVerdicts([verdict, refreshVerdict]);
} finally {
  for (const child of children) await stop(child);
  cluster.stop();
  rmSync(scratch, { recursive: true, force: true });
}
