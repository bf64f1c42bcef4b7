// Row 9, memory: idle RSS of `orthid start` on real PostgreSQL (target ≤ 250 MiB) and the growth
// per active session held in process (target ≤ 1 KiB per session, measured over 10 000).
//
// Run: npm run build && npm run bench -- memory [sessions=10000] [runs=3]
//      (needs PostgreSQL server binaries: apt-get install -y postgresql)
//
// Data: a tenant seeded by bench/seed.ts with `sessions` users; for each, a provider Session
// (signed in, as the hosted form leaves it), a grant and an opaque access token, minted through
// the provider's models and the Postgres adapter. Per run, a fresh `orthid start`: RSS (VmRSS)
// after 3 s idle; then 1 000 other sessions are made active to warm the code up, RSS read; then
// every session is made active through the server (one userinfo request per token, which loads
// the session's account and grant). What the process holds is read through its inspector after a
// full garbage collection (live heap + external memory, `bench/lib/inspector.ts`) after warming
// and after activating: growth = (after − warmed) / sessions. RSS is printed beside it; it also
// counts garbage not yet collected and pages the allocator keeps, so its growth is an upper
// bound. The baseline column is, for scale, a bare `node -e` HTTP server's RSS.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { loadConfig } from '../src/config/config.js';
import { createLogger } from '../src/core/logger.js';
import { openOrthId } from '../src/main.js';
import { withTenant } from '../src/storage/db/database.js';
import { cliEnv } from '../test/helpers/cli.js';
import { freePort } from '../test/helpers/postgres.js';
import { type HeldMemory, heldMemory } from './lib/inspector.js';
import { benchDeployment, collect, load, stop, waitFor } from './lib/processes.js';
import { exitOnVerdicts, formatSpread, median, printHeader, printRow } from './lib/report.js';
import { BENCH_MASTER_KEY, seedTenant } from './seed.js';

const SESSIONS = Number(process.argv[2] ?? 10_000);
const RUNS = Number(process.argv[3] ?? 3);
const SCOPE = 'openid email profile';
/** Sessions made active first, uncounted, so the growth measured is not code warming up. */
const WARM = 1000;
const BUILT_CLI =
  process.env.ORTHID_BENCH_CLI ?? fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const MiB = 1024 * 1024;

if (!existsSync(BUILT_CLI)) {
  console.error('Build first (npm run build): this row measures the built CLI, as deployed.');
  process.exit(2);
}

const rss = (pid: number) =>
  Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const { scratch, cluster, dbUrl, publicUrl, env } = await benchDeployment('memory', BENCH_MASTER_KEY);
const children: ChildProcess[] = [];
try {
  const app = await openOrthId(loadConfig(env), {
    initKeystore: true,
    migrate: true,
    log: createLogger('silent'),
  });
  const tokens: string[] = [];
  try {
    const tenant = await app.tenants.create({ slug: 'bench', actor: 'bench' });
    const rpId = await withTenant(app.db, tenant.id, async (tx) => {
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
      return rp.clientId;
    });
    await seedTenant(app, dbUrl.toString(), tenant.id, { users: SESSIONS + WARM, orgs: 0, auditEvents: 0 });
    const picker = new pg.Client({ connectionString: dbUrl.toString() });
    await picker.connect();
    const { rows } = await picker.query<{ id: string }>('SELECT id FROM users WHERE tenant_id = $1', [
      tenant.id,
    ]);
    await picker.end();
    const { provider } = await app.oidc.get('bench');
    const client = await provider.Client.find(rpId);
    const now = Math.floor(Date.now() / 1000);
    // The provider's Session model, typed by what this bench uses of it.
    const SessionModel = provider.Session as unknown as new (
      payload: Record<string, unknown>,
    ) => { uid: string; authorizations: unknown; save(ttl: number): Promise<string> };
    for (const { id } of rows) {
      const session = new SessionModel({ accountId: id, loginTs: now, amr: ['pwd'] });
      const grant = new provider.Grant({ accountId: id, clientId: rpId });
      grant.addOIDCScope(SCOPE);
      const grantId = await grant.save();
      session.authorizations = { [rpId]: { sid: session.uid, grantId } };
      await session.save(3600);
      const token = new provider.AccessToken({
        accountId: id,
        client,
        grantId,
        scope: SCOPE,
        sessionUid: session.uid,
        gty: 'authorization_code',
      } as never);
      tokens.push(await token.save());
    }
  } finally {
    await app.close();
  }

  const idle: number[] = [];
  const warmed: HeldMemory[] = [];
  const active: HeldMemory[] = [];
  const warmedRss: number[] = [];
  const activeRss: number[] = [];
  const bare: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const barePort = await freePort();
    const bareServer = spawn(
      process.execPath,
      ['-e', `require('node:http').createServer((q, s) => s.end('ok')).listen(${barePort}, '127.0.0.1')`],
      { stdio: 'ignore' },
    );
    await sleep(3000);
    bare.push(rss(bareServer.pid!));
    await stop(bareServer);

    const inspectPort = await freePort();
    const server = spawn(process.execPath, [`--inspect=127.0.0.1:${inspectPort}`, BUILT_CLI, 'start'], {
      env: cliEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(server);
    await waitFor(`${publicUrl}/readyz`, server, collect(server));
    await sleep(3000);
    idle.push(rss(server.pid!));
    const activate = async (some: string[]) => {
      const result = await load({
        url: `${publicUrl}/t/bench/me`,
        method: 'GET',
        headers: {},
        connections: 10,
        seconds: 3600,
        variants: some.map((t) => ({ headers: { authorization: `Bearer ${t}` } })),
        requests: some.length,
      });
      if (result.errors > 0) throw new Error(`userinfo failed: ${result.firstError}`);
      await sleep(3000);
      return { rss: rss(server.pid!), held: await heldMemory(inspectPort) };
    };
    const warm = await activate(tokens.slice(0, WARM));
    const after = await activate(tokens.slice(WARM));
    warmed.push(warm.held);
    active.push(after.held);
    warmedRss.push(warm.rss);
    activeRss.push(after.rss);
    await stop(server);
  }
  const held = (m: HeldMemory) => m.heapUsed + m.external;
  const growth = active.map((a, i) => (held(a) - held(warmed[i]!)) / SESSIONS);
  const rssGrowth = activeRss.map((a, i) => (a - warmedRss[i]!) / SESSIONS);
  const perSession = median(growth);
  printHeader(`Memory of orthid start on PostgreSQL, ${SESSIONS} active sessions`, RUNS);
  const verdicts = [
    printRow({
      name: 'idle RSS (baseline: bare node:http server)',
      baseline: bare.map((b) => b / MiB),
      orthid: idle.map((b) => b / MiB),
      unit: 'MiB',
      digits: 0,
      target: { kind: 'absolute-below', value: 250 },
      extraPass: perSession <= 1024,
      notes: `and ≤ 1 024 bytes held per active session (heap + external after a full GC): ${formatSpread(growth, 'bytes', 0)}`,
    }),
  ];
  const spreadMiB = (values: number[]) =>
    formatSpread(
      values.map((v) => v / MiB),
      'MiB',
      1,
    );
  console.log(
    `  held after warming up: ${spreadMiB(warmed.map(held))}; after ${SESSIONS} more sessions were made active: ${spreadMiB(active.map(held))}`,
  );
  console.log(
    `  RSS after warming up: ${spreadMiB(warmedRss)}; after: ${spreadMiB(activeRss)}; RSS growth per session (upper bound): ${formatSpread(rssGrowth, 'bytes', 0)}`,
  );
  exitOnVerdicts(verdicts);
} finally {
  for (const child of children) await stop(child);
  cluster.stop();
  rmSync(scratch, { recursive: true, force: true });
}
