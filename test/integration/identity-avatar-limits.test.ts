import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { importJWK, SignJWT } from 'jose';
import { rotateSigningKey, usableSigningKeys } from '../../src/crypto/signing-keys.js';
import { avatarKey } from '../../src/identity/avatars.js';
import { buildServer } from '../../src/server/app.js';
import { withTenant } from '../../src/storage/db/database.js';
import { ADMIN_PERMISSION, adminResourceIndicator } from '../../src/tenancy/admin-resource.js';
import { issuerFor, type Tenant } from '../../src/tenancy/tenants.js';
import { ensureAdminClient } from '../helpers/admin-principal.js';
import { createTestOrthId, DRIVERS, type TestOrthId } from '../helpers/orthid.js';
import { blackPng } from '../helpers/png.js';

const CONCURRENT = 2;
const QUEUED = 1;
const PER_WINDOW = 4;

for (const driver of DRIVERS) {
  describe(`avatar upload limits (${driver})`, { timeout: 120_000 }, () => {
    let app: TestOrthId;
    let server: FastifyInstance;
    let tenant: Tenant;
    let userId: string;
    let decodes = 0;
    // Decodes inside their slot right now, seen from the decoder's side (not the semaphore's).
    let atGate = 0;
    let peakAtGate = 0;
    // While set, every decode waits in its slot until the test opens the gate.
    let gate: Promise<void> | undefined;

    /** An admin token for the client `clientId`: each test uploads as its own caller. */
    async function adminToken(clientId: string): Promise<string> {
      // The admin API checks on every request that the client exists and holds the permission.
      await ensureAdminClient(app.db, tenant.id, clientId, app.config.publicUrl);
      const key = await withTenant(app.db, tenant.id, async (tx) => {
        const keyring = await app.tenantKeys.forTenant(tx, tenant.id);
        if ((await usableSigningKeys(tx, keyring, new Date())).length === 0) {
          await rotateSigningKey(tx, keyring, 'EdDSA', new Date(), 0);
        }
        return (await usableSigningKeys(tx, keyring, new Date()))[0]!;
      });
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ client_id: clientId, scope: ADMIN_PERMISSION })
        .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt' })
        .setIssuer(issuerFor(app.config.publicUrl, tenant.slug))
        .setSubject(clientId)
        .setAudience(adminResourceIndicator(app.config.publicUrl))
        .setIssuedAt(now)
        .setExpirationTime(now + 600)
        .setJti(randomUUID())
        .sign(await importJWK(key.privateJwk, key.alg));
    }

    async function upload(clientId: string, body: Buffer) {
      return server.inject({
        method: 'PUT',
        url: `/api/v1/tenants/${tenant.slug}/users/${userId}/avatar`,
        headers: { authorization: `Bearer ${await adminToken(clientId)}`, 'content-type': 'image/png' },
        payload: body,
      });
    }

    /** Lets the event loop run until `ready` holds; gives up (failing) after 20 s, not a race. */
    async function until(ready: () => boolean, what: string): Promise<void> {
      for (let waited = 0; !ready(); waited += 5) {
        assert.ok(waited < 20_000, `never saw ${what}: ${JSON.stringify(app.avatars.decodeState())}`);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    }

    before(async () => {
      app = await createTestOrthId(driver, {
        media: {
          concurrentDecodes: CONCURRENT,
          queuedDecodes: QUEUED,
          uploadsPerWindow: PER_WINDOW,
          uploadWindowSeconds: 600,
          beforeDecode: async () => {
            decodes++;
            atGate++;
            peakAtGate = Math.max(peakAtGate, atGate);
            await gate;
            atGate--;
          },
        },
      });
      server = await buildServer(app);
      tenant = await app.tenants.create({ slug: 'alpha', actor: 'test' });
      userId = await withTenant(app.db, tenant.id, async (tx) => {
        const user = await app.users.create(tx, tenant.id, { email: 'ann@alpha.test' }, 'test');
        return user.id;
      });
    });

    after(async () => {
      await server?.close();
      await app?.close();
    });

    test('a PNG declaring a huge canvas over a few bytes is refused with media.too_large before any decoding', async () => {
      const before = decodes;
      for (const bomb of [blackPng(8192, 8192), blackPng(60_000, 60_000, 1)]) {
        const put = await upload('bomb-client', bomb);
        assert.equal(put.statusCode, 400, put.body);
        assert.equal(put.json().code, 'media.too_large');
        assert.match(put.json().detail, /megapixels/);
      }
      // Just under the pixel limit, the same kind of file is decoded and stored.
      const fits = await upload('bomb-client', blackPng(5000, 5000));
      assert.equal(fits.statusCode, 200, fits.body);
      assert.equal(decodes, before + 1, 'only the upload that fits reached the decoder');
      assert.ok(await app.objects.head(avatarKey(tenant.id, userId)));
    });

    test('at most the configured number of uploads decode at once; past the queue bound, 503 media.busy with Retry-After', async () => {
      let open!: () => void;
      gate = new Promise<void>((resolve) => {
        open = resolve;
      });
      const image = blackPng(64, 64);
      const inFlight = Array.from({ length: CONCURRENT + QUEUED }, (_, i) =>
        upload(`busy-client-${i}`, image),
      );
      try {
        await until(() => {
          return atGate === CONCURRENT && app.avatars.decodeState().waiting === QUEUED;
        }, `${CONCURRENT} decoding and ${QUEUED} waiting`);
        const refused = await upload('busy-client-extra', image);
        assert.equal(refused.statusCode, 503, refused.body);
        assert.equal(refused.json().code, 'media.busy');
        assert.ok(Number(refused.headers['retry-after']) >= 1);
      } finally {
        open();
        gate = undefined;
      }
      for (const put of await Promise.all(inFlight)) assert.equal(put.statusCode, 200, put.body);
      assert.equal(peakAtGate, CONCURRENT, 'never more decodes at once than the bound');
      const state = app.avatars.decodeState();
      assert.equal(state.peakActive, CONCURRENT);
      assert.deepEqual([state.active, state.waiting], [0, 0]);
    });

    test('a caller past its uploads per window gets 429 media.rate_limited with Retry-After; another caller does not', async () => {
      const image = blackPng(64, 64);
      // Broken uploads count too: the allowance is spent before any decoding.
      const broken = await upload('rate-client', image.subarray(0, 40));
      assert.equal(broken.statusCode, 400);
      for (let i = 1; i < PER_WINDOW; i++) {
        const put = await upload('rate-client', image);
        assert.equal(put.statusCode, 200, put.body);
      }
      const before = decodes;
      for (const body of [image, blackPng(60_000, 60_000, 1)]) {
        const limited = await upload('rate-client', body);
        assert.equal(limited.statusCode, 429, limited.body);
        assert.equal(limited.json().code, 'media.rate_limited');
        const retryAfter = Number(limited.headers['retry-after']);
        assert.ok(retryAfter >= 1 && retryAfter <= 600, `Retry-After: ${limited.headers['retry-after']}`);
      }
      assert.equal(decodes, before, 'a refused upload is not decoded');
      const other = await upload('other-client', image);
      assert.equal(other.statusCode, 200, other.body);
    });
  });
}
