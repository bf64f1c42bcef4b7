// Row 3b, a second factor at the hosted sign-in: successful sign-ins per second with password and
// TOTP against password-only sign-ins, both through `orthid start` on real PostgreSQL in the same
// run (runs alternate); target ≥ 0.9 (the code costs little beside argon2id). Second row: TOTP
// verifications per second through OrthID's verification (sealed secret, replay state and
// throttle counters in PostgreSQL, audit event) against otpauth's raw validate of the same codes.
//
// Run: npm run build && npm run bench -- mfa-sign-in [seconds-per-run=5] [runs=3] [workers=8]
//      (needs PostgreSQL server binaries: apt-get install -y postgresql)
//
// Data: two tenants seeded by bench/seed.ts with 2 000 users each sharing one argon2id hash of a
// known password: `plain` (MFA off) and `mfa` (MFA required), whose users each hold a TOTP factor
// whose secret this process keeps. One password-only sign-in is GET /auth, GET the form, POST it
// (303); one with TOTP adds the second-factor POST (303). Users are taken round robin, so no user
// signs in twice within a 30 s time step (a code is accepted once).
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { Secret, TOTP } from 'otpauth';
import { loadConfig } from '../src/config/config.js';
import { createLogger } from '../src/core/logger.js';
import { totpCode } from '../src/identity/totp.js';
import { openOrthId } from '../src/main.js';
import { configureMfaPolicy } from '../src/ops/mfa-policy.js';
import { withTenant } from '../src/storage/db/database.js';
import { cliEnv } from '../test/helpers/cli.js';
import { benchDeployment, collect, serverNodeArgs, stop, waitFor } from './lib/processes.js';
import { exitOnVerdicts, formatSpread, printHeader, printRow } from './lib/report.js';
import { BENCH_MASTER_KEY, seedTenant } from './seed.js';

const SECONDS = Number(process.argv[2] ?? 5);
const RUNS = Number(process.argv[3] ?? 3);
const WORKERS = Number(process.argv[4] ?? 8);
const USERS = 2_000;
const VERIFY_USERS = 400;
const PASSWORD = 'correct horse battery staple for the bench';
const REDIRECT = 'https://rp.bench.example/cb';
const BUILT_CLI =
  process.env.ORTHID_BENCH_CLI ?? fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));

if (!existsSync(BUILT_CLI)) {
  console.error('Build first (npm run build): this row measures the built CLI, as deployed.');
  process.exit(2);
}

interface Answer {
  status: number;
  location: string | undefined;
  setCookie: string[];
  body: string;
}

// node:http over keep-alive sockets, as in the sign-in bench: fetch costs several times the CPU.
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
function request(
  url: URL,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { agent, method: options.method ?? 'GET', headers: options.headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode!,
            location: res.headers.location,
            setCookie: res.headers['set-cookie'] ?? [],
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

class Jar {
  readonly #cookies = new Map<string, string>();
  take(response: Answer): void {
    for (const line of response.setCookie) {
      const [pair] = line.split(';');
      const at = pair!.indexOf('=');
      this.#cookies.set(pair!.slice(0, at), pair!.slice(at + 1));
    }
  }
  header(): string {
    return [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

const { scratch, cluster, dbUrl, publicUrl, env } = await benchDeployment('mfa-sign-in', BENCH_MASTER_KEY);
const children: ChildProcess[] = [];
try {
  const app = await openOrthId(loadConfig(env), {
    initKeystore: true,
    migrate: true,
    log: createLogger('silent'),
  });
  const setups: Record<string, { clientId: string; emails: string[]; secrets: string[] }> = {};
  const verify: { ours: number[]; raw: number[] } = { ours: [], raw: [] };
  try {
    const passwordHash = await app.users.passwords.hash(PASSWORD);
    for (const slug of ['plain', 'mfa'] as const) {
      const tenant = await app.tenants.create({ slug, actor: 'bench' });
      const clientId = await withTenant(app.db, tenant.id, async (tx) => {
        const rp = await app.clients.create(
          tx,
          tenant.id,
          {
            name: 'Bench RP',
            grantTypes: ['authorization_code'],
            redirectUris: [REDIRECT],
            firstParty: true,
          },
          'bench',
        );
        return rp.clientId;
      });
      const { emailPrefix } = await seedTenant(app, dbUrl.toString(), tenant.id, {
        users: USERS,
        orgs: 0,
        auditEvents: 0,
        passwordHash,
      });
      const emails = Array.from({ length: USERS }, (_, i) => `${emailPrefix}${i}@bench.example`);
      const secrets: string[] = [];
      if (slug === 'mfa') {
        await configureMfaPolicy(app, tenant, { mode: 'required' }, 'bench');
        for (const email of emails) {
          secrets.push(
            await withTenant(app.db, tenant.id, async (tx) => {
              const user = (await app.users.findByEmail(tx, tenant.id, email))!;
              return app.mfa.provisionTotp(tx, tenant.id, user.id, 'bench');
            }),
          );
        }
        // TOTP verifications in this process, OrthID's against otpauth's raw validate, alternating;
        // each OrthID run takes users of its own (the last ones: sign-ins start from the first),
        // so every code is a current one accepted once.
        for (let run = 0; run < RUNS; run++) {
          const first = USERS - (run + 1) * VERIFY_USERS;
          const picked = emails.slice(first, first + VERIFY_USERS);
          const users = await withTenant(app.db, tenant.id, async (tx) => {
            const ids: string[] = [];
            for (const e of picked) ids.push((await app.users.findByEmail(tx, tenant.id, e))!.id);
            return ids;
          });
          const mine = secrets.slice(first, first + VERIFY_USERS);
          const now = new Date();
          const codes = mine.map((secret) => totpCode(secret, now));
          let started = performance.now();
          for (let i = 0; i < users.length; i++) {
            await app.mfa.verifyTotp({
              tenantId: tenant.id,
              userId: users[i]!,
              ip: `10.0.${i >> 8}.${i & 255}`,
              code: codes[i]!,
            });
          }
          verify.ours.push(users.length / ((performance.now() - started) / 1000));
          const parsed = mine.map((s) => Secret.fromBase32(s));
          started = performance.now();
          let n = 0;
          while (performance.now() - started < 1000) {
            const i = n++ % parsed.length;
            TOTP.validate({ token: codes[i]!, secret: parsed[i]!, timestamp: now.getTime(), window: 1 });
          }
          verify.raw.push(n / ((performance.now() - started) / 1000));
        }
      }
      setups[slug] = { clientId, emails, secrets };
    }
  } finally {
    await app.close();
  }

  const server = spawn(process.execPath, [...serverNodeArgs(), BUILT_CLI, 'start'], {
    env: cliEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(server);
  await waitFor(`${publicUrl}/readyz`, server, collect(server));

  const next: Record<string, number> = { plain: 0, mfa: 0 };
  /** One sign-in; true when it reached the redirect to the relying party. */
  async function signIn(slug: 'plain' | 'mfa'): Promise<boolean> {
    const { clientId, emails, secrets } = setups[slug]!;
    const verifier = randomBytes(32).toString('base64url');
    const authorize = new URL(
      `${publicUrl}/t/${slug}/auth?${new URLSearchParams({
        client_id: clientId,
        response_type: 'code',
        scope: 'openid',
        redirect_uri: REDIRECT,
        code_challenge: createHash('sha256').update(verifier).digest('base64url'),
        code_challenge_method: 'S256',
        state: 'bench',
      })}`,
    );
    const jar = new Jar();
    const auth = await request(authorize);
    jar.take(auth);
    const formUrl = new URL(auth.location!, publicUrl);
    const form = await request(formUrl, { headers: { cookie: jar.header() } });
    jar.take(form);
    const csrf = /name="csrf" value="([^"]+)"/.exec(form.body)?.[1];
    if (!csrf) throw new Error(`no sign-in form at ${formUrl}: ${form.status}`);
    const i = next[slug]!++ % USERS;
    const headers = () => ({ cookie: jar.header(), 'content-type': 'application/x-www-form-urlencoded' });
    const post = await request(new URL(`${formUrl.href}/login`), {
      method: 'POST',
      headers: headers(),
      body: new URLSearchParams({ csrf, email: emails[i]!, password: PASSWORD }).toString(),
    });
    jar.take(post);
    if (slug === 'plain') return post.status === 303;
    if (post.status !== 200 || !post.body.includes('name="code"')) return false;
    const submit = async (at: Date) => {
      const answer = await request(new URL(`${formUrl.href}/second-factor`), {
        method: 'POST',
        headers: headers(),
        body: new URLSearchParams({ csrf, method: 'totp', code: totpCode(secrets[i]!, at) }).toString(),
      });
      jar.take(answer);
      return answer;
    };
    let second = await submit(new Date());
    // This step's code was spent (by the verification row, or the same user a step ago): a person
    // would wait for the next code; the drift window accepts it now.
    if (second.status === 401) second = await submit(new Date(Date.now() + 30_000));
    return second.status === 303;
  }

  async function closedLoop(slug: 'plain' | 'mfa', seconds: number) {
    let ok = 0;
    let failures = 0;
    const started = performance.now();
    const deadline = started + seconds * 1000;
    await Promise.all(
      Array.from({ length: WORKERS }, async () => {
        while (performance.now() < deadline) {
          if (await signIn(slug)) ok++;
          else failures++;
        }
      }),
    );
    return { rate: ok / ((performance.now() - started) / 1000), failures };
  }

  if (!(await signIn('plain')) || !(await signIn('mfa')))
    throw new Error('a warm-up sign-in did not succeed');
  await closedLoop('plain', Math.min(2, SECONDS));
  await closedLoop('mfa', Math.min(2, SECONDS));
  const plain: number[] = [];
  const mfa: number[] = [];
  let failures = 0;
  for (let run = 0; run < RUNS; run++) {
    const a = await closedLoop('plain', SECONDS);
    const b = await closedLoop('mfa', SECONDS);
    plain.push(a.rate);
    mfa.push(b.rate);
    failures += a.failures + b.failures;
  }
  if (failures > 0) console.log(`${failures} sign-ins failed`);

  printHeader(
    `Sign-in with a second factor through the hosted pages, ${WORKERS} browsers × ${SECONDS} s`,
    RUNS,
  );
  const verdicts = [
    printRow({
      name: 'sign-ins with password + TOTP vs password only',
      baseline: plain,
      orthid: mfa,
      unit: '/s',
      digits: 1,
      target: { kind: 'ratio-at-least', value: 0.9 },
      notes: `${failures} failed`,
    }),
  ];
  const row = printRow({
    name: 'TOTP verifications (PostgreSQL, audited) vs otpauth raw validate',
    baseline: verify.raw,
    orthid: verify.ours,
    unit: '/s',
    digits: 0,
    // Informational: a verification is one short transaction; the target is only that it stays
    // well above the argon2id rate that bounds sign-ins (about 20-60/s per core).
    target: { kind: 'ratio-at-least', value: 0 },
    notes: `OrthID ${formatSpread(verify.ours, '/s', 0)} per process, one at a time`,
  });
  exitOnVerdicts([...verdicts, row]);
} finally {
  for (const child of children) await stop(child);
  cluster.stop();
  rmSync(scratch, { recursive: true, force: true });
}
