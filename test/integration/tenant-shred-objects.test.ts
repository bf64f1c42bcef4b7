// A crypto-shred deletes the tenant's objects from the object store as well (avatars, logo, data
// exports, audit archives), on the local directory and on a real S3-protocol server; another
// tenant's objects and the shredded tenant's audit checkpoints stay. A store that fails part-way
// leaves the keys destroyed and the rest of the objects for a re-run, which finishes the job.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { checkpointPrefix } from '../../src/audit/audit-checkpoints.js';
import { readAudit } from '../../src/audit/audit-log.js';
import { isOrthIdError, OrthIdError } from '../../src/core/errors.js';
import { shredTenant } from '../../src/ops/key-rotation.js';
import { runOperation } from '../../src/ops/operations.js';
import { tenantObjectPrefixes } from '../../src/ops/tenant-objects.js';
import { withTenant } from '../../src/storage/db/database.js';
import type { ObjectStore } from '../../src/storage/objects/object-store.js';
import { SYSTEM_TENANT_SLUG } from '../../src/tenancy/admin-resource.js';
import type { Tenant } from '../../src/tenancy/tenants.js';
import { createTestOrthId, type TestOrthId } from '../helpers/orthid.js';
import { blackPng } from '../helpers/png.js';
import { type S3TestServer, startS3Server } from '../helpers/s3-server.js';

async function keysUnder(objects: ObjectStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await objects.list(prefix, cursor === undefined ? {} : { cursor });
    keys.push(...page.items.map((i) => i.key));
    cursor = page.cursor;
  } while (cursor !== undefined);
  return keys;
}

for (const backend of ['file', 's3'] as const) {
  describe(`shredding a tenant on the ${backend} object store`, { timeout: 180_000 }, () => {
    let s3: S3TestServer | undefined;
    let app: TestOrthId;

    before(async () => {
      if (backend === 's3') s3 = await startS3Server({ prefix: 'orthid' });
      app = await createTestOrthId('pglite', s3 ? { env: { ORTHID_OBJECT_STORE: s3.url } } : {});
      await app.tenants.create({ slug: SYSTEM_TENANT_SLUG, actor: 'test' });
    });

    after(async () => {
      await app?.close();
      await s3?.stop();
    });

    /** A tenant with a logo, two users with avatars, a data export, an audit archive and checkpoints. */
    async function populated(slug: string): Promise<Tenant> {
      await runOperation(app, 'tenant.create', { slug, displayName: slug });
      const tenant = await app.tenants.get(slug);
      await runOperation(app, 'tenant.logo-set', {
        tenant: slug,
        imageBase64: blackPng(40, 20).toString('base64'),
      });
      for (const name of ['ada', 'grace']) {
        const user = await runOperation(app, 'user.create', { tenant: slug, email: `${name}@${slug}.test` });
        const avatar = await app.avatars.prepare(blackPng(24, 24));
        await withTenant(app.db, tenant.id, (tx) => app.avatars.set(tx, tenant.id, user.id, avatar, 'test'));
        await runOperation(app, 'user.export', { tenant: slug, id: user.id });
      }
      await runOperation(app, 'audit.export', { tenant: slug });
      await runOperation(app, 'audit.verify', { tenant: slug });
      return tenant;
    }

    const stored = async (tenant: Tenant) => {
      const found: string[] = [];
      for (const prefix of tenantObjectPrefixes(tenant))
        found.push(...(await keysUnder(app.objects, prefix)));
      return found;
    };

    test('the shred deletes every object of the tenant and nothing of another; checkpoints stay', async () => {
      const acme = await populated('acme');
      const globex = await populated('globex');
      const before = await stored(acme);
      // Logo and its mail rendition, two avatars, two exports, one archive.
      assert.equal(before.length, 7, before.join('\n'));
      assert.ok(before.some((k) => k.endsWith('/branding/logo.webp')));
      assert.ok(before.some((k) => k.endsWith('/branding/logo-mail.png')));
      assert.equal(before.filter((k) => k.endsWith('/avatar.webp')).length, 2);
      const globexBefore = await stored(globex);
      const checkpoints = await keysUnder(app.objects, checkpointPrefix(acme.id));
      assert.ok(checkpoints.length > 0);

      const result = await runOperation(app, 'tenant.shred', { tenant: 'acme', confirm: 'acme' });
      assert.equal(result.objectsDeleted, 7);
      assert.deepEqual(await stored(acme), [], 'no avatar, logo, export or archive of acme is left');
      assert.deepEqual(await stored(globex), globexBefore, "globex's objects are untouched");
      assert.deepEqual(
        await keysUnder(app.objects, checkpointPrefix(acme.id)),
        checkpoints,
        'the checkpoints the shredded chain is verified against stay',
      );
      const verified = await runOperation(app, 'audit.verify', { tenant: 'acme' });
      assert.equal(verified.ok, true);

      // Run again (as after a crash): nothing left to delete, and nothing else goes.
      const again = await runOperation(app, 'tenant.shred', { tenant: 'acme', confirm: 'acme' });
      assert.equal(again.objectsDeleted, 0);
      assert.deepEqual(await stored(globex), globexBefore);
    });

    test('a store that fails part-way leaves the keys destroyed, says so, and a re-run finishes the job', async () => {
      const initech = await populated('initech');
      const total = (await stored(initech)).length;
      let deletes = 0;
      // The real store, which stops answering after two deletions (as a store going away would).
      const real = app.objects;
      const failing: ObjectStore = {
        url: real.url,
        put: (key, body, options) => real.put(key, body, options),
        get: (key) => real.get(key),
        head: (key) => real.head(key),
        list: (prefix, options) => real.list(prefix, options),
        region: () => real.region(),
        temporaryFiles: (options) => real.temporaryFiles(options),
        async delete(key) {
          if (++deletes > 2) throw new OrthIdError('objects.unavailable', 'The store went away.');
          return real.delete(key);
        },
      };
      await assert.rejects(shredTenant({ ...app, objects: failing }, initech, 'cli'), (e) =>
        isOrthIdError(e, 'tenant.shred_incomplete'),
      );
      assert.equal((await app.tenants.get('initech')).status, 'shredded', 'the keys went first');
      assert.equal((await stored(initech)).length, total - 2);

      const finished = await runOperation(app, 'tenant.shred', { tenant: 'initech', confirm: 'initech' });
      assert.equal(finished.objectsDeleted, total - 2);
      assert.deepEqual(await stored(initech), []);

      const system = await app.tenants.get(SYSTEM_TENANT_SLUG);
      const events = await withTenant(app.db, system.id, async (tx) =>
        readAudit(tx, await app.tenantKeys.forTenant(tx, system.id), { limit: 2 }),
      );
      assert.deepEqual(
        events.map((e) => [e.action, e.details?.objectsDeleted, e.details?.objectsRemaining]),
        [
          ['tenant.shredded', total - 2, undefined],
          ['tenant.shredded', 2, true],
        ],
      );
    });
  });
}
