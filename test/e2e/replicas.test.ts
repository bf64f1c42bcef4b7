import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decodeProtectedHeader } from 'jose';
import { runCli } from '../helpers/cli.js';
import { readForm } from '../helpers/cookie-browser.js';
import { submitHostedSignIn } from '../helpers/hosted-sign-in.js';
import { createTestDatabase, freePort } from '../helpers/postgres.js';
import { type ServerProcess, startServer } from '../helpers/server-process.js';

const PASSWORD = 'two replicas, one database, zero disagreement';

interface Tenant {
  issuer: string;
  email: string;
  client: { client_id: string; client_secret: string };
}

/** Two `orthid start` processes on one PostgreSQL, as behind a load balancer. */
describe('OrthID as two stateless replicas on one PostgreSQL', () => {
  let dir: string;
  let env: Record<string, string>;
  let a: ServerProcess;
  let b: ServerProcess;
  let publicUrl: string;
  // Sign-in throttling counts per tenant, account and address; every test here signs in from
  // 127.0.0.1, so the test that sets off the block has a tenant of its own and leaves no block
  // where the others sign in, whichever order they run in and however fast.
  let acme: Tenant;
  let brute: Tenant;
  const redirectUri = 'http://127.0.0.1:9/callback';

  async function createTenant(slug: string): Promise<Tenant> {
    const tenant = await runCli(['tenant', 'create', slug], env);
    assert.equal(tenant.code, 0, tenant.stderr);
    const email = `rep@${slug}.test`;
    const user = await runCli(
      ['user', 'create', '--tenant', slug, '--email', email, '--password-stdin'],
      env,
      `${PASSWORD}\n`,
    );
    assert.equal(user.code, 0, user.stderr);
    const created = await runCli(
      [
        'client',
        'create',
        '--tenant',
        slug,
        '--name',
        'Replicated',
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
    assert.equal(created.code, 0, created.stderr);
    return { issuer: `${publicUrl}/t/${slug}`, email, client: JSON.parse(created.stdout) };
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'orthid-replicas-'));
    const portA = await freePort();
    publicUrl = `http://127.0.0.1:${portA}`;
    env = {
      ORTHID_DATA_DIR: dir,
      ORTHID_DATABASE_URL: await createTestDatabase(),
      ORTHID_MASTER_KEY: 'replica-test-master-secret-0123456789abcdef',
      ORTHID_PUBLIC_URL: publicUrl,
    };
    assert.equal((await runCli(['keystore', 'init'], env)).code, 0);
    assert.equal((await runCli(['migrate'], env)).code, 0);
    [a, b] = await Promise.all([
      startServer({ ...env, ORTHID_PORT: String(portA) }, 60_000, portA),
      startServer({
        ...env,
        ORTHID_DATA_DIR: join(dir, 'b'),
        ORTHID_KEYSTORE: `file://${join(dir, 'keystore')}`,
      }),
    ]);
    acme = await createTenant('acme');
    brute = await createTenant('brute');
  });

  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await rm(dir, { recursive: true, force: true });
  });

  const basic = ({ client }: Tenant) =>
    `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`;

  async function tokenRequest(to: ServerProcess, body: Record<string, string>) {
    const response = await fetch(`${to.url}/t/acme/token`, {
      method: 'POST',
      headers: {
        authorization: basic(acme),
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams(body),
    });
    return { status: response.status, body: (await response.json()) as Record<string, string> };
  }

  const signInOn = (replica: ServerProcess, password = PASSWORD, tenant = acme) =>
    submitHostedSignIn({
      issuer: tenant.issuer,
      client: tenant.client,
      redirectUri,
      email: tenant.email,
      password,
      origin: replica.url,
    });

  test('a sign-in on one replica is refreshed on the other, and a revocation on one is honoured by the other', async () => {
    const { browser, posted, verifier } = await signInOn(a);
    assert.equal(posted.status, 303);
    const consent = await browser.follow(posted, a.url);
    const form = readForm(await consent.response.text());
    const done = await browser.follow(
      await browser.post(new URL(form.action, a.url).href, form.fields),
      a.url,
      redirectUri,
    );
    const code = new URL(done.url).searchParams.get('code')!;

    const exchanged = await tokenRequest(b, {
      grant_type: 'authorization_code',
      code,
      redirect_uri: redirectUri,
      code_verifier: verifier,
    });
    assert.equal(exchanged.status, 200, JSON.stringify(exchanged.body));
    const refreshed = await tokenRequest(a, {
      grant_type: 'refresh_token',
      refresh_token: exchanged.body.refresh_token!,
    });
    assert.equal(refreshed.status, 200);

    const revoked = await fetch(`${b.url}/t/acme/token/revocation`, {
      method: 'POST',
      headers: {
        authorization: basic(acme),
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ token: refreshed.body.refresh_token! }),
    });
    assert.equal(revoked.status, 200);
    const afterRevoke = await tokenRequest(a, {
      grant_type: 'refresh_token',
      refresh_token: refreshed.body.refresh_token!,
    });
    assert.equal(afterRevoke.status, 400);
    assert.equal(afterRevoke.body.error, 'invalid_grant');
  });

  test('failed sign-ins are counted across both replicas', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) {
      const { posted } = await signInOn(i % 2 === 0 ? a : b, 'wrong password, wrong password', brute);
      statuses.push(posted.status);
    }
    // Five failures are free wherever they land; the sixth starts a block that the seventh meets,
    // although neither replica alone has seen more than four.
    assert.deepEqual(statuses, [401, 401, 401, 401, 401, 401, 429]);
  });

  test('a signing-key rotation announced by the CLI reaches both replicas at once', async () => {
    const rotated = await runCli(['keystore', 'rotate-signing', '--tenant', 'acme', '--json'], env);
    assert.equal(rotated.code, 0, rotated.stderr);
    // The relying party's ID tokens are RS256, one of the algorithms the rotation renewed.
    const { keys } = JSON.parse(rotated.stdout) as { keys: { alg: string; kid: string }[] };
    const kid = keys.find((k) => k.alg === 'RS256')!.kid;
    for (const replica of [a, b]) {
      let seen: string[] = [];
      for (let attempt = 0; attempt < 50 && !seen.includes(kid); attempt++) {
        const jwks = (await (await fetch(`${replica.url}/t/acme/jwks`)).json()) as {
          keys: { kid: string }[];
        };
        seen = jwks.keys.map((k) => k.kid);
        if (!seen.includes(kid)) await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(seen.includes(kid), `replica ${replica.url} still serves ${seen.join(', ')}`);
      const { id_token } = await (async () => {
        const { browser, posted, verifier } = await signInOn(replica);
        const consent = await browser.follow(posted, replica.url);
        const text = await consent.response.text();
        const done = text.includes('Allow')
          ? await browser.follow(
              await browser.post(new URL(readForm(text).action, replica.url).href, readForm(text).fields),
              replica.url,
              redirectUri,
            )
          : consent;
        const code = new URL(done.url).searchParams.get('code')!;
        return (
          await tokenRequest(replica, {
            grant_type: 'authorization_code',
            code,
            redirect_uri: redirectUri,
            code_verifier: verifier,
          })
        ).body;
      })();
      assert.equal(decodeProtectedHeader(id_token!).kid, kid);
    }
  });
});
