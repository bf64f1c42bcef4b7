// Failed client authentications (a wrong client secret at the token, introspection or revocation
// endpoint) are throttled per client and per address, refused before the secret is compared,
// and audited; other clients and addresses go on as before.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { readAudit } from '../../src/audit/audit-log.js';
import { fixedClock } from '../../src/core/clock.js';
import { createSignInThrottleQueries } from '../../src/identity/sign-in-throttle.queries.js';
import { buildServer } from '../../src/server/app.js';
import { withTenant } from '../../src/storage/db/database.js';
import { createTestOrthId, type TestOrthId } from '../helpers/orthid.js';
import { freePort } from '../helpers/postgres.js';

const API = 'https://api.acme.test';

describe('throttling of failed client authentications', () => {
  let app: TestOrthId;
  let server: FastifyInstance;
  let base: string;
  let tenantId: string;
  const clock = fixedClock('2031-03-01T09:00:00Z');
  const clients: { id: string; secret: string }[] = [];
  let nextAddress = 1;
  const freshAddress = () => `198.51.100.${nextAddress++}`;

  before(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    app = await createTestOrthId('postgres', {
      env: { ORTHID_PUBLIC_URL: base, ORTHID_TRUST_PROXY: '127.0.0.1' },
      clock,
    });
    server = await buildServer(app);
    await server.listen({ host: '127.0.0.1', port });
    const tenant = await app.tenants.create({ slug: 'acme', actor: 'test' });
    tenantId = tenant.id;
    await withTenant(app.db, tenant.id, async (tx) => {
      await app.rbac.resources.create(tx, tenant.id, { indicator: API, name: 'Orders API' }, 'test');
      for (let i = 0; i < 8; i++) {
        const created = await app.clients.create(
          tx,
          tenant.id,
          { name: `worker ${i}`, grantTypes: ['client_credentials'], resources: [API] },
          'test',
        );
        clients.push({ id: created.clientId, secret: created.clientSecret! });
      }
    });
  });

  after(async () => {
    await server?.close();
    await app?.close();
  });

  const basic = (id: string, secret: string) =>
    `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

  /** A client-credentials token request with client_secret_basic. */
  const token = (from: string, id: string, secret: string) =>
    fetch(`${base}/t/acme/token`, {
      method: 'POST',
      headers: {
        'x-forwarded-for': from,
        authorization: basic(id, secret),
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: API }),
    });

  /** An introspection or revocation request with client_secret_post. */
  const posted = (endpoint: 'introspection' | 'revocation', from: string, id: string, secret: string) =>
    fetch(`${base}/t/acme/token/${endpoint}`, {
      method: 'POST',
      headers: { 'x-forwarded-for': from, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: 'not-a-token', client_id: id, client_secret: secret }),
    });

  async function refusal(response: Response) {
    const body = (await response.json()) as { error: string; error_description?: string };
    return { status: response.status, error: body.error, retryAfter: response.headers.get('retry-after') };
  }

  const counters = () =>
    withTenant(app.db, tenantId, (tx) =>
      tx.query<{ key: string; failures: number }>('SELECT key, failures FROM sign_in_throttle'),
    ).then((r) => r.rows);

  const clientFailures = (id: string) =>
    withTenant(app.db, tenantId, (tx) => createSignInThrottleQueries(tx).get([`client:${id}`])).then(
      (rows) => rows[0]?.failures ?? 0,
    );

  test('six wrong secrets block the client everywhere until the block ends; other clients go on', {
    timeout: 120_000,
  }, async () => {
    const [victim, bystander] = [clients[0]!, clients[1]!];
    const attacker = freshAddress();
    // Every endpoint that authenticates a client counts towards the same block.
    const wrong = [
      () => token(attacker, victim.id, 'guess-1'),
      () => token(attacker, victim.id, 'guess-2'),
      () => posted('introspection', attacker, victim.id, 'guess-3'),
      () => posted('revocation', attacker, victim.id, 'guess-4'),
      () => token(attacker, victim.id, 'guess-5'),
      () => token(attacker, victim.id, 'guess-6'),
    ];
    for (const [i, attempt] of wrong.entries()) {
      const r = await refusal(await attempt());
      assert.deepEqual([r.status, r.error], [401, 'invalid_client'], `wrong secret ${i + 1}`);
    }
    assert.equal(await clientFailures(victim.id), 6);

    const blocked = await refusal(await token(freshAddress(), victim.id, victim.secret));
    assert.deepEqual(blocked, { status: 429, error: 'invalid_client', retryAfter: '2' });
    const introspect = await refusal(await posted('introspection', freshAddress(), victim.id, victim.secret));
    assert.equal(introspect.status, 429);
    // A refused attempt compares no secret and counts nothing.
    assert.equal((await token(attacker, victim.id, 'guess-7')).status, 429);
    assert.equal(await clientFailures(victim.id), 6);

    const other = await token(freshAddress(), bystander.id, bystander.secret);
    assert.equal(other.status, 200, 'another client from another address is unaffected');

    clock.set(new Date(clock.now().getTime() + 2_000));
    const later = await token(freshAddress(), victim.id, victim.secret);
    assert.equal(later.status, 200, 'the right secret works once the block has ended');

    const events = await withTenant(app.db, tenantId, async (tx) =>
      readAudit(tx, await app.tenantKeys.forTenant(tx, tenantId), { limit: 100 }),
    );
    const failures = events.filter(
      (e) => e.action === 'client.authenticate' && e.target === `client:${victim.id}`,
    );
    assert.deepEqual(failures.map((e) => e.details?.reason).reverse(), [
      ...Array(6).fill('invalid_secret'),
      'throttled',
      'throttled',
      'throttled',
    ]);
    assert.deepEqual(
      failures
        .map((e) => e.details?.endpoint)
        .reverse()
        .slice(0, 4),
      ['token', 'token', 'introspection', 'revocation'],
    );
    assert.ok(failures.every((e) => e.outcome === 'failure' && e.actor === 'anonymous'));
    assert.equal(failures.at(-1)?.ip, attacker);
    const text = JSON.stringify(events);
    for (const secret of ['guess-1', 'guess-7', victim.secret]) assert.ok(!text.includes(secret));
  });

  test('six wrong secrets from one address block it for every client; other addresses go on', {
    timeout: 120_000,
  }, async () => {
    const attacker = freshAddress();
    const sprayed = clients.slice(2, 8);
    for (const [i, client] of sprayed.entries()) {
      assert.equal((await token(attacker, client.id, `guess-${i}`)).status, 401);
    }
    const blocked = await refusal(await token(attacker, sprayed[0]!.id, sprayed[0]!.secret));
    assert.deepEqual(blocked, { status: 429, error: 'invalid_client', retryAfter: '2' });
    // The same address in another spelling is the same address.
    assert.equal((await token(`${attacker}:4711`, sprayed[1]!.id, sprayed[1]!.secret)).status, 429);
    assert.equal((await token(freshAddress(), sprayed[0]!.id, sprayed[0]!.secret)).status, 200);
    // Client-authentication counters are apart from sign-in's.
    assert.ok((await counters()).every((c) => c.key.startsWith('client:') || c.key.startsWith('ip:client:')));
  });
});
