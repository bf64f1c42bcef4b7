// The product page's Backup & restore commands, exactly as printed, on OrthID's files: pg_dump as
// the backup login, age, `aws s3 cp --sse aws:kms` to a local S3-protocol server, then a restore onto
// a second, clean PostgreSQL with no OrthID roles, completed by `orthid keystore import` and
// `orthid migrate`, served by the least-privilege login and verified as the page's step 6 says.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { ageKeygen, requireAgeCli } from '../helpers/age-cli.js';
import { adminTokenFrom, readBootstrapCredentials } from '../helpers/bootstrap-credentials.js';
import { runCli } from '../helpers/cli.js';
import { consentToCallback, submitHostedSignIn } from '../helpers/hosted-sign-in.js';
import { type Cluster, freePort, query, startCluster } from '../helpers/postgres.js';
import { type S3TestServer, startS3Server, TEST_CREDENTIALS } from '../helpers/s3-server.js';
import { type ServerProcess, startServer } from '../helpers/server-process.js';

// The page's terminal blocks, character for character.
const PAGE_DUMP = `# Logical, compressed dump of the OrthID database
pg_dump \\
  --format=custom \\
  --no-owner \\
  --dbname="$ORTHID_DATABASE_URL" \\
  --file="orthid-$(date +%Y%m%d-%H%M).dump"`;
const PAGE_ENCRYPT_UPLOAD = `# Encrypt the dump to your team's public key, then upload
age -r "$BACKUP_AGE_RECIPIENT" \\
  -o orthid-backup.dump.age orthid-20260622-0200.dump

aws s3 cp orthid-backup.dump.age \\
  "s3://orthid-backups-au-syd-1/$(date +%Y/%m/%d)/" \\
  --sse aws:kms --sse-kms-key-id "$BACKUP_KMS_KEY"`;
const PAGE_RESTORE = `# Decrypt, then restore into a fresh database
age -d -i backup-key.txt orthid-backup.dump.age > orthid-restore.dump

pg_restore \\
  --no-owner \\
  --clean --if-exists \\
  --dbname="$ORTHID_RESTORE_URL" \\
  orthid-restore.dump`;

const MASTER = 'page-restore-master-secret-0123456789abcdef';
const PASSWORD = 'a page-restore passphrase of some length';
const EMAIL = 'ann@acme.test';
const NAME = 'Ann Acme';
const BUCKET = 'orthid-backups-au-syd-1';

function requireAwsCli(): void {
  const probe = spawnSync('aws', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new Error(
      'The AWS CLI is required to run the page\'s "aws s3 cp" but is not installed. Install it: apt-get install -y awscli',
    );
  }
}

/**
 * Runs a block of the page in `cwd` with `sh`, as an operator pasting it would. Asynchronously:
 * the S3-protocol server answers from this process.
 */
function sh(
  script: string,
  cwd: string,
  env: Record<string, string>,
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', script], {
      cwd,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/**
 * A pass-through in front of the S3-protocol server that records each request's method, path
 * and headers: the local server ignores SSE-KMS, so what the AWS CLI asked for is read here.
 */
async function recordingProxy(target: string) {
  const seen: { method: string; path: string; headers: http.IncomingHttpHeaders }[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method!, path: req.url!, headers: req.headers });
    const upstream = http.request(
      new URL(req.url!, target),
      { method: req.method, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode!, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    seen,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function at(cluster: Cluster, login: string, database = 'orthid'): string {
  return `postgres://${login}@127.0.0.1:${cluster.port}/${database}`;
}

/** Every row of every table, as superuser (past row-level security), in a stable order. */
async function contents(cluster: Cluster): Promise<Record<string, string>> {
  const url = at(cluster, 'postgres');
  const tables = await query<{ tablename: string }>(
    url,
    `SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`,
  );
  const out: Record<string, string> = {};
  for (const { tablename } of tables) {
    const [row] = await query<{ n: string; rows: string }>(
      url,
      `SELECT count(*) AS n, coalesce(jsonb_agg(to_jsonb(t) ORDER BY to_jsonb(t)::text), '[]')::text AS rows FROM "${tablename}" t`,
    );
    out[tablename] = `${row!.n} ${row!.rows}`;
  }
  return out;
}

async function signIn(
  issuer: string,
  client: { client_id: string; client_secret: string },
  redirectUri: string,
) {
  const started = await submitHostedSignIn({ issuer, client, redirectUri, email: EMAIL, password: PASSWORD });
  assert.equal(started.posted.status, 303, 'the hosted sign-in form accepts the password');
  const callback = await consentToCallback(started, redirectUri);
  return oidc.authorizationCodeGrant(started.config, callback, {
    pkceCodeVerifier: started.verifier,
    expectedState: started.state,
  });
}

describe("the product page's backup and restore commands, verbatim", { timeout: 900_000 }, () => {
  let dir: string;
  let source: Cluster;
  let clean: Cluster;
  let s3: S3TestServer;
  let live: ServerProcess | undefined;
  let restored: ServerProcess | undefined;
  let sourceEnv: Record<string, string>;
  let port: number;
  let client: { client_id: string; client_secret: string };
  let redirectUri: string;
  let refreshToken: string;
  let key: { file: string; recipient: string };

  before(async () => {
    requireAgeCli();
    requireAwsCli();
    dir = await mkdtemp(join(tmpdir(), 'orthid-page-'));
    [source, clean, s3] = await Promise.all([
      startCluster(),
      startCluster(),
      startS3Server({ bucket: BUCKET, region: 'au-syd-1' }),
    ]);
    await mkdir(join(dir, 'backup-host'));
    await mkdir(join(dir, 'restore-host'));
    // The operator's age key; its identity file is the page's backup-key.txt.
    key = ageKeygen(join(dir, 'restore-host'), 'backup-key.txt');

    // The source deployment, with the README's least-privilege logins.
    await query(source.url, 'CREATE ROLE orthid_owner LOGIN CREATEROLE');
    await query(source.url, 'CREATE DATABASE orthid OWNER orthid_owner');
    port = await freePort();
    const publicUrl = `http://127.0.0.1:${port}`;
    sourceEnv = {
      ORTHID_DATA_DIR: join(dir, 'source'),
      ORTHID_DATABASE_URL: at(source, 'orthid_server'),
      ORTHID_MIGRATION_DATABASE_URL: at(source, 'orthid_owner'),
      ORTHID_MASTER_KEY: MASTER,
      ORTHID_PUBLIC_URL: publicUrl,
    };
    assert.equal((await runCli(['keystore', 'init'], sourceEnv)).code, 0);
    const migrated = await runCli(['migrate'], sourceEnv);
    assert.equal(migrated.code, 0, migrated.stderr);
    await query(source.url, 'CREATE ROLE orthid_server LOGIN IN ROLE orthid_app');
    await query(source.url, 'CREATE ROLE orthid_backup LOGIN BYPASSRLS IN ROLE pg_read_all_data');
    live = await startServer(sourceEnv, 60_000, port);

    assert.equal((await runCli(['tenant', 'create', 'acme'], sourceEnv)).code, 0);
    const user = await runCli(
      ['user', 'create', '--tenant', 'acme', '--email', EMAIL, '--name', NAME, '--password-stdin'],
      sourceEnv,
      PASSWORD,
    );
    assert.equal(user.code, 0, user.stderr);
    redirectUri = `${publicUrl}/callback`;
    const created = await runCli(
      [
        'client',
        'create',
        '--tenant',
        'acme',
        '--name',
        'My app',
        '--grant',
        'authorization_code',
        '--grant',
        'refresh_token',
        '--redirect-uri',
        redirectUri,
        '--json',
      ],
      sourceEnv,
    );
    assert.equal(created.code, 0, created.stderr);
    client = JSON.parse(created.stdout);
    // One sign-in, so the database holds a session, a grant, tokens and their audit events.
    const tokens = await signIn(`${publicUrl}/t/acme`, client, redirectUri);
    assert.ok(tokens.refresh_token);
    refreshToken = tokens.refresh_token!;
    // The incident: the source goes away. What the dump holds is what the source holds now.
    assert.equal(await live.stop(), 0);
    live = undefined;
  });

  after(async () => {
    for (const server of [live, restored]) if (server && server.child.exitCode === null) await server.stop();
    source?.stop();
    clean?.stop();
    await s3?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('backs up, restores onto a clean server, and the restored deployment signs in, verifies and reads', async (t) => {
    const backupHost = join(dir, 'backup-host');
    const restoreHost = join(dir, 'restore-host');
    const pgPath = `${source.binDir}:${process.env.PATH}`;
    const proxy = await recordingProxy(s3.endpoint);
    t.after(() => proxy.close());
    const aws = {
      AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
      AWS_DEFAULT_REGION: s3.region,
      AWS_ENDPOINT_URL: proxy.endpoint,
    };

    // The keys, in the same window (before the dump: the export is audited), kept apart: the page's "exported keystore", encrypted the same way.
    const keystoreFile = join(dir, 'keystore-vault', 'keystore.age');
    await mkdir(join(dir, 'keystore-vault'));
    const exported = await runCli(['keystore', 'export', '-r', key.recipient, '-o', keystoreFile], sourceEnv);
    assert.equal(exported.code, 0, exported.stderr);

    // "Back up Postgres", as the backup login: BYPASSRLS, so FORCE ROW LEVEL SECURITY lets it read every tenant.
    const dumped = await sh(PAGE_DUMP, backupHost, {
      PATH: pgPath,
      ORTHID_DATABASE_URL: at(source, 'orthid_backup'),
    });
    assert.equal(dumped.status, 0, dumped.stderr);
    const [dumpFile] = (await readdir(backupHost)).filter((f) => /^orthid-\d{8}-\d{4}\.dump$/.test(f));
    assert.ok(dumpFile, 'pg_dump wrote orthid-YYYYMMDD-HHMM.dump');

    // "Encrypt with your own keys", then upload: the page's file name is its example's; the one
    // addition is --endpoint-url, which points the AWS CLI at the local S3-protocol server.
    const encrypted = await sh(
      `${PAGE_ENCRYPT_UPLOAD.replace('orthid-20260622-0200.dump', dumpFile).replace(
        '--sse aws:kms --sse-kms-key-id "$BACKUP_KMS_KEY"',
        '--sse aws:kms --sse-kms-key-id "$BACKUP_KMS_KEY" --endpoint-url "$AWS_ENDPOINT_URL"',
      )}`,
      backupHost,
      { ...aws, BACKUP_AGE_RECIPIENT: key.recipient, BACKUP_KMS_KEY: 'alias/orthid-backups' },
    );
    assert.equal(encrypted.status, 0, encrypted.stderr + encrypted.stdout);
    const listed = await s3.client.send(new ListObjectsV2Command({ Bucket: BUCKET }));
    const uploaded = listed.Contents?.map((o) => o.Key) ?? [];
    assert.equal(uploaded.length, 1, `uploaded: ${uploaded.join(', ')}`);
    assert.match(uploaded[0]!, /^\d{4}\/\d{2}\/\d{2}\/orthid-backup\.dump\.age$/);
    const puts = proxy.seen.filter((r) => r.method === 'PUT' || r.method === 'POST');
    assert.ok(puts.length > 0, 'the AWS CLI wrote through the recording proxy');
    for (const put of puts) {
      assert.equal(
        put.headers['x-amz-server-side-encryption'],
        'aws:kms',
        `SSE-KMS on ${put.method} ${put.path}`,
      );
      assert.equal(put.headers['x-amz-server-side-encryption-aws-kms-key-id'], 'alias/orthid-backups');
    }

    // "Provision a clean Postgres": a server that has never seen OrthID; its DBA makes an owner login.
    assert.deepEqual(await query(clean.url, `SELECT rolname FROM pg_roles WHERE rolname LIKE 'orthid%'`), []);
    await query(clean.url, 'CREATE ROLE orthid_owner LOGIN CREATEROLE');
    await query(clean.url, 'CREATE DATABASE orthid OWNER orthid_owner');
    const restoreEnv = {
      ORTHID_DATA_DIR: join(dir, 'restored'),
      ORTHID_DATABASE_URL: at(clean, 'orthid_server'),
      ORTHID_MIGRATION_DATABASE_URL: at(clean, 'orthid_owner'),
      ORTHID_MASTER_KEY: `${MASTER}-of-the-new-host`,
      ORTHID_PUBLIC_URL: sourceEnv.ORTHID_PUBLIC_URL!,
    };
    const started = performance.now();
    const downloaded = await sh(
      `aws s3 cp "s3://${BUCKET}/${uploaded[0]}" orthid-backup.dump.age --endpoint-url "$AWS_ENDPOINT_URL"`,
      restoreHost,
      aws,
    );
    assert.equal(downloaded.status, 0, downloaded.stderr);
    const lap = (() => {
      let last = started;
      return () => {
        const now = performance.now();
        const seconds = ((now - last) / 1000).toFixed(2);
        last = now;
        return seconds;
      };
    })();
    const laps = [`download ${lap()} s`];

    // Step 2: the keystore first, so decryption is available.
    const imported = await runCli(['keystore', 'import', keystoreFile, '--identity', key.file], restoreEnv);
    assert.equal(imported.code, 0, imported.stderr);
    laps.push(`keystore import ${lap()} s`);

    // Step 3: decrypt and restore. pg_dump carries no roles, so on a clean server the dump's GRANTs
    // to orthid_app fail (pg_restore goes on, and says so); everything else must restore.
    const restoredDump = await sh(PAGE_RESTORE, restoreHost, {
      PATH: pgPath,
      ORTHID_RESTORE_URL: at(clean, 'orthid_owner'),
    });
    const errors = restoredDump.stderr.split('\n').filter((l) => /^pg_restore: error:/.test(l));
    const unexpected = errors.filter((l) => !/role "orthid_app" does not exist/.test(l));
    assert.deepEqual(unexpected, [], restoredDump.stderr);
    assert.equal(restoredDump.status, errors.length > 0 ? 1 : 0, 'pg_restore exits 1 when it ignored errors');
    laps.push(`age -d and pg_restore ${lap()} s (${errors.length} GRANTs to the missing orthid_app refused)`);

    // Step 3, completed: migrate creates orthid_app and every grant the dump could not carry.
    const migrated = await runCli(['migrate'], restoreEnv);
    assert.equal(migrated.code, 0, migrated.stderr + migrated.stdout);
    laps.push(`migrate ${lap()} s`);
    const restoreSeconds = (performance.now() - started) / 1000;
    t.diagnostic(`restore onto the clean server: ${restoreSeconds.toFixed(2)} s (${laps.join(', ')})`);

    // Every table holds exactly what the source held.
    const [want, got] = await Promise.all([contents(source), contents(clean)]);
    assert.deepEqual(Object.keys(got), Object.keys(want), 'the same tables');
    for (const table of Object.keys(want)) assert.equal(got[table], want[table], `contents of ${table}`);

    // Step 4: object storage to the matching bucket (here the local directory the source used).
    await cp(join(dir, 'source', 'objects'), join(dir, 'restored', 'objects'), { recursive: true });

    // Step 5: point OrthID at the restored database and start it, as the least-privilege login.
    await query(clean.url, 'CREATE ROLE orthid_server LOGIN IN ROLE orthid_app');
    restored = await startServer(restoreEnv, 60_000, port);

    // Step 6: sign in with a stock client, verify a token against JWKS.
    const issuer = `${sourceEnv.ORTHID_PUBLIC_URL}/t/acme`;
    const tokens = await signIn(issuer, client, redirectUri);
    const jwks = createRemoteJWKSet(new URL(`${issuer}/jwks`));
    const { payload } = await jwtVerify(tokens.id_token!, jwks, { issuer, audience: client.client_id });
    const config = await oidc.discovery(new URL(issuer), client.client_id, client.client_secret, undefined, {
      execute: [oidc.allowInsecureRequests],
    });
    const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, payload.sub!);
    assert.equal(userinfo.email, EMAIL, 'userinfo renders the decrypted e-mail address');
    // The session and grant taken before the backup still hold: the source's refresh token works.
    const refreshed = await oidc.refreshTokenGrant(config, refreshToken);
    await jwtVerify(refreshed.id_token!, jwks, { issuer, audience: client.client_id });

    // Read the audit log, verify its chain, and see decrypted details.
    const verified = await runCli(['audit', 'verify', '--tenant', 'acme', '--json'], restoreEnv);
    assert.equal(verified.code, 0, verified.stderr + verified.stdout);
    assert.equal(JSON.parse(verified.stdout).ok, true);
    const tail = await runCli(['audit', 'tail', '--tenant', 'acme', '-n', '200', '--json'], restoreEnv);
    assert.equal(tail.code, 0, tail.stderr);
    const events = JSON.parse(tail.stdout) as { action: string; details: Record<string, unknown> | null }[];
    const userCreated = events.find((e) => e.action === 'user.created');
    assert.deepEqual(userCreated?.details, { password: true }, 'audit details decrypt');

    // Decrypted fields render through the admin API, with the credentials the first start wrote.
    const access_token = await adminTokenFrom(
      await readBootstrapCredentials(join(dir, 'source', 'admin-credentials.json')),
    );
    const users = await fetch(`${sourceEnv.ORTHID_PUBLIC_URL}/api/v1/tenants/acme/users`, {
      headers: { authorization: `Bearer ${access_token}` },
    });
    assert.equal(users.status, 200, await users.clone().text());
    const items = ((await users.json()) as { items: { email: string; name: string }[] }).items;
    assert.deepEqual(
      items.map((u) => [u.email, u.name]),
      [[EMAIL, NAME]],
    );

    // And OrthID's own verification checks agree.
    const checked = await runCli(['backup', 'check', '--json'], restoreEnv);
    assert.equal(checked.code, 0, checked.stderr + checked.stdout);
  });
});
