// Bring your own key with a PKCS#11 token (SoftHSM2, initialised fresh for this file): every step
// runs as a real `orthid` process — the key ceremony, a sign-in through the hosted form with a
// stock relying party, dump → restore → drill — and neither the database nor the keystore export
// holds a key that opens anything. Pulling the token fails /readyz and stops a restore up front.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { exitCodes } from '../../src/core/errors.js';
import { aeadOpen, aeadSeal } from '../../src/crypto/aead.js';
import { parseSealed } from '../../src/crypto/sealed-field.js';
import { age, ageKeygen, requireAgeCli } from '../helpers/age-cli.js';
import { runCli } from '../helpers/cli.js';
import { consentToCallback, submitHostedSignIn } from '../helpers/hosted-sign-in.js';
import { createTestDatabase, query, rowCounts, testCluster } from '../helpers/postgres.js';
import { type ServerProcess, startServer } from '../helpers/server-process.js';
import { createSoftHsmToken, type SoftHsmToken } from '../helpers/softhsm.js';

const MASTER = 'byok-pkcs11-master-secret-0123456789abcdef';
const PASSWORD = 'a passphrase the token never sees, 2024';
const EMAIL = 'hsm@acme.test';

function json<T = Record<string, unknown>>(text: string): T {
  assert.ok(text.trimStart().startsWith('{'), `expected JSON, got:\n${text}`);
  return JSON.parse(text) as T;
}

function findOne(root: string, name: string): string {
  const found = spawnSync('find', [root, '-name', name], { encoding: 'utf8' }).stdout.trim().split('\n')[0];
  assert.ok(found, `no ${name} under ${root}`);
  return found;
}

/**
 * Every 32-byte window of `bytes` and of every base64/base64url and hex run in it: all the ways
 * an AES-256 key could sit in a SQL dump or a JSON export.
 */
function* candidateKeys(bytes: Buffer): Generator<Buffer> {
  const windows = function* (buf: Buffer) {
    for (let i = 0; i + 32 <= buf.length; i++) yield buf.subarray(i, i + 32);
  };
  yield* windows(bytes);
  const text = bytes.toString('latin1');
  for (const [run] of text.matchAll(/[A-Za-z0-9+/_-]{43,}/g)) yield* windows(Buffer.from(run, 'base64'));
  for (const [run] of text.matchAll(/[0-9a-fA-F]{64,}/g)) {
    yield* windows(Buffer.from(run.slice(0, run.length - (run.length % 2)), 'hex'));
  }
}

/** A ciphertext and the associated data it was sealed with, so a candidate key can be tried on it. */
interface Lock {
  what: string;
  sealed: Buffer;
  aad: Buffer;
}

/** The first key in `haystack` that opens any of `locks`, or undefined. */
function keyThatOpens(haystack: Buffer, locks: readonly Lock[]): { lock: string; key: string } | undefined {
  for (const key of candidateKeys(haystack)) {
    for (const lock of locks) {
      if (aeadOpen(key, lock.sealed, lock.aad)) return { lock: lock.what, key: key.toString('hex') };
    }
  }
  return undefined;
}

describe('bring your own key: a PKCS#11 token holds the root keys, end to end', () => {
  let token: SoftHsmToken;
  let dir: string;
  let ageKey: { file: string; recipient: string };
  let sourceUrl: string;
  let env: Record<string, string>;
  let server: ServerProcess | undefined;
  let rootKeyId: string;

  before(async () => {
    requireAgeCli();
    token = createSoftHsmToken({ label: 'orthid-e2e', object: 'orthid-root' });
    dir = await mkdtemp(join(tmpdir(), 'orthid-byok-'));
    ageKey = ageKeygen(dir);
    sourceUrl = await createTestDatabase('orthid_byok');
    env = {
      ...token.env,
      ORTHID_KEYSTORE: token.uri,
      ORTHID_PKCS11_PIN: token.pin,
      ORTHID_DATA_DIR: join(dir, 'live'),
      ORTHID_DATABASE_URL: sourceUrl,
      ORTHID_MASTER_KEY: MASTER,
      ORTHID_BACKUP_DEST: `file://${join(dir, 'sets')}`,
      ORTHID_BACKUP_KEYSTORE_DEST: `file://${join(dir, 'keys')}`,
      ORTHID_BACKUP_AGE_RECIPIENTS: ageKey.recipient,
      ORTHID_BACKUP_AGE_IDENTITY_FILE: ageKey.file,
    };
  });

  after(async () => {
    if (server && server.child.exitCode === null) await server.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
    token?.cleanup();
  });

  /** The same deployment's settings on another host: its own data directory, database and master secret. */
  const elsewhere = (name: string, databaseUrl: string) => ({
    ...env,
    ORTHID_DATA_DIR: join(dir, name),
    ORTHID_DATABASE_URL: databaseUrl,
    ORTHID_MASTER_KEY: `${MASTER}-${name}`,
  });

  test('orthid keystore init generates the root key inside the token, and a second run adopts it', async () => {
    const first = await runCli(['keystore', 'init', '--json'], env);
    assert.equal(first.code, 0, first.stderr);
    const created = json<{
      created: boolean;
      custody: { kind: string; reference: string; created: boolean; rootKeyId: string };
      rootKeyIds: string[];
    }>(first.stdout);
    assert.equal(created.created, true);
    assert.equal(created.custody.kind, 'pkcs11');
    assert.equal(created.custody.created, true);
    assert.ok(!created.custody.reference.includes(token.pin), 'the reference never carries the PIN');
    rootKeyId = created.custody.rootKeyId;
    assert.deepEqual(created.rootKeyIds, [rootKeyId]);

    const second = await runCli(['keystore', 'init', '--json'], env);
    assert.equal(second.code, 0, second.stderr);
    const adopted = json<typeof created>(second.stdout);
    assert.equal(adopted.created, false);
    assert.equal(adopted.custody.created, false);
    assert.equal(adopted.custody.rootKeyId, rootKeyId);
  });

  test('orthid start signs a user in through the hosted form and issues tokens a stock client verifies', async () => {
    const migrated = await runCli(['migrate'], env);
    assert.equal(migrated.code, 0, migrated.stderr);
    server = await startServer(env);
    const issuer = `${server.url}/t/acme`;
    const redirectUri = 'http://127.0.0.1:9/callback';

    assert.equal((await runCli(['tenant', 'create', 'acme'], env)).code, 0);
    const user = await runCli(
      [
        'user',
        'create',
        '--tenant',
        'acme',
        '--email',
        EMAIL,
        '--name',
        'Hilde Hsm',
        '--password-stdin',
        '--json',
      ],
      env,
      `${PASSWORD}\n`,
    );
    assert.equal(user.code, 0, user.stderr);
    const userId = json<{ id: string }>(user.stdout).id;
    const registered = await runCli(
      [
        'client',
        'create',
        '--tenant',
        'acme',
        '--name',
        'HSM Web',
        '--grant',
        'authorization_code',
        '--grant',
        'refresh_token',
        '--redirect-uri',
        redirectUri,
        '--json',
      ],
      env,
    );
    assert.equal(registered.code, 0, registered.stderr);
    const client = json<{ client_id: string; client_secret: string }>(registered.stdout);

    const signIn = await submitHostedSignIn({
      issuer,
      client,
      redirectUri,
      email: EMAIL,
      password: PASSWORD,
      scope: 'openid email profile offline_access',
    });
    assert.equal(signIn.posted.status, 303, await signIn.posted.clone().text());
    const callback = await consentToCallback(signIn, redirectUri);
    const tokens = await oidc.authorizationCodeGrant(signIn.config, callback, {
      pkceCodeVerifier: signIn.verifier,
      expectedState: signIn.state,
    });
    const jwks = createRemoteJWKSet(new URL(`${issuer}/jwks`));
    const { payload } = await jwtVerify(tokens.id_token!, jwks, { issuer, audience: client.client_id });
    assert.equal(payload.sub, userId);
    assert.ok(tokens.refresh_token);
    const refreshed = await oidc.refreshTokenGrant(signIn.config, tokens.refresh_token);
    assert.ok(refreshed.access_token);
    const info = await oidc.fetchUserInfo(signIn.config, refreshed.access_token, userId);
    // The profile is stored sealed: it reads back only through a data key unwrapped inside the token.
    assert.equal(info.email, EMAIL);
    assert.equal(info.name, 'Hilde Hsm');
  });

  test('dump --encrypt, restore into a fresh database with the same token, and a drill pass every check', async () => {
    const dumped = await runCli(['dump', '--encrypt', '--json'], env);
    assert.equal(dumped.code, 0, dumped.stderr);

    const targetUrl = await createTestDatabase('orthid_byok_restored');
    const restored = await runCli(
      ['backup', 'restore', 'latest', '--into-live-stores', '--json'],
      elsewhere('restored', targetUrl),
    );
    assert.equal(restored.code, 0, restored.stderr + restored.stdout);
    const outcome = json<{ ok: boolean; checks: { name: string; ok: boolean }[] }>(restored.stdout);
    assert.equal(outcome.ok, true, restored.stdout);
    assert.deepEqual(
      outcome.checks.map((c) => [c.name, c.ok]),
      ['sign-in', 'token', 'audit-log', 'decrypted-fields', 'object-store'].map((name) => [name, true]),
    );
    const [live, copy] = await Promise.all([
      query<{ wrapped: string }>(sourceUrl, 'SELECT wrapped FROM tenant_keys ORDER BY tenant_id, id'),
      query<{ wrapped: string }>(targetUrl, 'SELECT wrapped FROM tenant_keys ORDER BY tenant_id, id'),
    ]);
    assert.deepEqual(copy, live, 'the copy holds the same wrapped keys, opened by the same token');

    const drilled = await runCli(['backup', 'drill', '--json'], env);
    assert.equal(drilled.code, 0, drilled.stderr + drilled.stdout);
    const report = json<{ ok: boolean; checks: { name: string; ok: boolean }[] }>(drilled.stdout);
    assert.equal(report.ok, true, drilled.stdout);
    assert.equal(report.checks.length, 5);
    assert.ok(
      report.checks.every((c) => c.ok),
      drilled.stdout,
    );
  });

  test('neither the database nor the keystore export holds a key that opens a sealed field or a wrapped key', async () => {
    // Everything the database says about keys: each data key is wrapped by a root key in the token.
    const keys = await query<{
      tenant_id: string;
      id: string;
      purpose: string;
      custody: string;
      root_key_id: string;
      wrapped: string;
    }>(sourceUrl, 'SELECT tenant_id, id, purpose, custody, root_key_id, wrapped FROM tenant_keys');
    assert.ok(keys.length >= 4, 'data and index keys of the system tenant and acme');
    for (const key of keys) {
      assert.equal(key.custody, 'pkcs11');
      assert.ok(key.root_key_id.startsWith('orthid-root'), key.root_key_id);
      // nonce (12) || AES-GCM ciphertext of a 32-byte key (32) || tag (16)
      assert.equal(Buffer.from(key.wrapped, 'base64url').length, 60);
    }
    const [user] = await query<{ tenant_id: string; id: string; email: string }>(
      sourceUrl,
      'SELECT tenant_id, id, email FROM users WHERE tenant_id = (SELECT id FROM tenants WHERE slug = $1)',
      ['acme'],
    );
    assert.ok(user);
    const sealed = parseSealed(user.email);
    const locks: Lock[] = [
      {
        what: `users.email of ${user.id} (a data key)`,
        sealed: sealed.body,
        aad: Buffer.from(`orthid/field/v1|${user.tenant_id}|users|email|${user.id}|${sealed.keyId}`),
      },
      ...keys.map((k) => ({
        what: `tenant_keys ${k.purpose} ${k.id} (a root key)`,
        sealed: Buffer.from(k.wrapped, 'base64url'),
        aad: Buffer.from(`tenant-key|${k.tenant_id}|${k.purpose}|${k.id}`),
      })),
    ];

    // The search finds a key when one is there: one planted, base64url-encoded, in a line of SQL.
    const planted = Buffer.alloc(32, 7);
    const plantedLock = { what: 'planted', aad: Buffer.from('planted') };
    const plantedSealed = { ...plantedLock, sealed: aeadSeal(planted, Buffer.from('x'), plantedLock.aad) };
    assert.equal(
      keyThatOpens(Buffer.from(`INSERT … '${planted.toString('base64url')}';`), [plantedSealed])?.lock,
      'planted',
    );

    const cluster = await testCluster();
    const pgDump = spawnSync(join(cluster.binDir, 'pg_dump'), ['--no-owner', '--dbname', sourceUrl], {
      maxBuffer: 256 * 1024 * 1024,
    });
    assert.equal(pgDump.status, 0, String(pgDump.stderr));
    assert.ok(pgDump.stdout.includes(Buffer.from(user.email)), 'the dump holds the sealed fields');
    assert.equal(keyThatOpens(pgDump.stdout, locks), undefined);

    const exported = age(['-d', '-i', ageKey.file, findOne(join(dir, 'keys'), 'keystore.age')]);
    const contents = json<{
      format: string;
      keystore: { rootKeys: unknown[]; externalCustody?: { kind: string; reference: string } };
    }>(exported.toString('utf8')).keystore;
    assert.deepEqual(contents.rootKeys, []);
    assert.equal(contents.externalCustody?.kind, 'pkcs11');
    assert.match(contents.externalCustody?.reference ?? '', /^pkcs11:token=orthid-e2e;object=orthid-root/);
    assert.ok(!exported.includes(Buffer.from(token.pin)), 'the export never carries the PIN');
    assert.equal(keyThatOpens(exported, locks), undefined);
  });

  test('with the token removed, /readyz answers 503 keystore.custody_unavailable and a restore fails before touching its target', async () => {
    assert.ok(server, 'the server of the sign-in test is running');
    assert.equal((await fetch(`${server.url}/readyz`)).status, 200);
    token.remove();

    const ready = await fetch(`${server.url}/readyz`);
    const body = await ready.text();
    assert.equal(ready.status, 503, body);
    assert.match(ready.headers.get('content-type') ?? '', /application\/problem\+json/);
    assert.equal(json<{ code: string }>(body).code, 'keystore.custody_unavailable', body);

    const targetUrl = await createTestDatabase('orthid_byok_no_token');
    const restore = await runCli(
      ['backup', 'restore', 'latest', '--into-live-stores'],
      elsewhere('no-token', targetUrl),
    );
    assert.equal(restore.code, exitCodes.unavailable, restore.stderr);
    assert.equal(restore.code, 6);
    assert.match(restore.stderr, /error\[keystore\.custody_unavailable\]/);
    assert.doesNotMatch(restore.stderr, /\[1\/6\]/, 'no restore step began');
    assert.deepEqual(await rowCounts(targetUrl), {});
  });
});
