// Behind a trusted proxy, the client address comes from X-Forwarded-For; however that header
// spells one address (a port, brackets, octal or hex parts, the integer form, IPv4-mapped IPv6,
// another host in the same IPv6 /64), failed sign-ins from it are counted on one counter.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { fixedClock } from '../../src/core/clock.js';
import { buildServer } from '../../src/server/app.js';
import { withTenant } from '../../src/storage/db/database.js';
import { CookieBrowser } from '../helpers/cookie-browser.js';
import { submitHostedSignIn } from '../helpers/hosted-sign-in.js';
import { createTestOrthId, type TestOrthId } from '../helpers/orthid.js';
import { freePort } from '../helpers/postgres.js';

const PASSWORD = 'correct horse battery staple 42';

describe('sign-in throttling by address behind a trusted proxy', () => {
  let app: TestOrthId;
  let server: FastifyInstance;
  let base: string;
  let client: { client_id: string; client_secret: string };
  const clock = fixedClock('2031-03-01T09:00:00Z');

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
    await withTenant(app.db, tenant.id, async (tx) => {
      await app.users.create(tx, tenant.id, { email: 'ann@acme.test', password: PASSWORD }, 'test');
      const created = await app.clients.create(
        tx,
        tenant.id,
        { name: 'Acme Web', grantTypes: ['authorization_code'], redirectUris: [`${base}/cb`] },
        'test',
      );
      client = { client_id: created.clientId, client_secret: created.clientSecret! };
    });
  });

  after(async () => {
    await server?.close();
    await app?.close();
  });

  const attempt = (from: string, email: string, password: string) =>
    submitHostedSignIn({
      issuer: `${base}/t/acme`,
      client,
      redirectUri: `${base}/cb`,
      email,
      password,
      browser: new CookieBrowser({ 'x-forwarded-for': from }),
    }).then((s) => s.posted.status);

  for (const [label, spellings, other] of [
    [
      'IPv4',
      [
        '203.0.113.21:4711',
        '[203.0.113.21]:4711',
        '3405803797',
        '0xcb.0.0x71.0x15',
        '0313.0.0161.025',
        '::ffff:203.0.113.21',
      ],
      '203.0.113.22',
    ],
    [
      'IPv6',
      [
        '[2001:db8:7:1::1]:4711',
        '2001:DB8:7:1:0:0:0:1',
        '[2001:0db8:0007:0001::2]',
        '2001:db8:7:1:ffff::9',
        '2001:db8:7:1::1%eth0',
        '[2001:db8:7:1:a:b:c:d]:80',
      ],
      '2001:db8:7:2::1',
    ],
  ] as const) {
    test(`six failures under six spellings of one ${label} address are counted together`, {
      timeout: 120_000,
    }, async () => {
      for (const [i, from] of spellings.entries()) {
        assert.equal(
          await attempt(from, `guess${label}${i}@acme.test`, 'wrong'),
          401,
          `attempt ${i} from ${from}`,
        );
      }
      // Five failures are free; the sixth blocked the address, whatever its next spelling.
      assert.equal(await attempt(spellings[0], 'ann@acme.test', PASSWORD), 429);
      assert.equal(await attempt(other, 'ann@acme.test', PASSWORD), 303, 'another address is unaffected');
      clock.set(new Date(clock.now().getTime() + 2_000));
      assert.equal(await attempt(spellings[3], 'ann@acme.test', PASSWORD), 303, 'the block ends');
    });
  }
});
