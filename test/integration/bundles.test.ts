import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import type { JSONWebKeySet } from 'jose';
import { readAudit } from '../../src/audit/audit-log.js';
import { exportAuditArchive, listAuditArchives } from '../../src/bundles/audit-archive.js';
import { tenantBundleJwks } from '../../src/bundles/tenant-bundle-keys.js';
import { exportUserData } from '../../src/bundles/user-export.js';
import { verifyBundle } from '../../src/bundles/verify-bundle.js';
import { exitCodes, isOrthIdError } from '../../src/core/errors.js';
import { withTenant } from '../../src/storage/db/database.js';
import type { Tenant } from '../../src/tenancy/tenants.js';
import { runCli } from '../helpers/cli.js';
import { createTestOrthId, DRIVERS, type TestOrthId } from '../helpers/orthid.js';

/** Where each entry's content starts in a bundle, by walking its pax headers. */
function entryOffsets(bytes: Buffer): Map<string, { start: number; size: number }> {
  const out = new Map<string, { start: number; size: number }>();
  const padded = (n: number) => Math.ceil(n / 512) * 512;
  let offset = 0;
  while (offset + 1024 <= bytes.length && !bytes.subarray(offset, offset + 512).every((b) => b === 0)) {
    const paxSize = Number.parseInt(bytes.subarray(offset + 124, offset + 135).toString('ascii'), 8);
    const pax = bytes.subarray(offset + 512, offset + 512 + paxSize).toString('utf8');
    const path = /\d+ path=(.*)\n/.exec(pax)![1]!;
    const size = Number(/\d+ size=(\d+)\n/.exec(pax)![1]);
    const start = offset + 512 + padded(paxSize) + 512;
    out.set(path, { start, size });
    offset = start + padded(size);
  }
  return out;
}

function flipped(bytes: Buffer, at: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[at] = copy[at]! ^ 0x01;
  return copy;
}

async function readAll(body: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function rejectsNaming(
  bytes: Buffer,
  jwks: JSONWebKeySet,
  file: string,
  reason?: string,
): Promise<void> {
  await assert.rejects(verifyBundle(bytes, jwks), (error: unknown) => {
    assert.ok(isOrthIdError(error, 'bundle.invalid'), String(error));
    assert.equal(error.details?.file, file, error.message);
    if (reason) assert.equal(error.details?.reason, reason, error.message);
    return true;
  });
}

for (const driver of DRIVERS) {
  describe(`signed document bundles (${driver})`, () => {
    let app: TestOrthId;
    let tenant: Tenant;
    let other: Tenant;
    let userId: string;
    let jwks: JSONWebKeySet;
    const deps = () => ({ ...app, publicUrl: app.config.publicUrl });

    before(async () => {
      app = await createTestOrthId(driver);
      tenant = await app.tenants.create({ slug: 'acme', actor: 'test' });
      other = await app.tenants.create({ slug: 'globex', actor: 'test' });
      await withTenant(app.db, tenant.id, async (tx) => {
        const user = await app.users.create(
          tx,
          tenant.id,
          { email: 'ann@acme.test', name: 'Ann Archive' },
          'test',
        );
        userId = user.id;
        const org = await app.rbac.organisations.create(tx, tenant.id, { name: 'North' }, 'test');
        const role = await app.rbac.roles.create(tx, tenant.id, { name: 'auditor' }, 'test');
        const membership = await app.rbac.memberships.add(tx, tenant.id, org.id, user.id, 'test');
        await app.rbac.memberships.grantRole(tx, tenant.id, membership.id, role.id, 'test');
        jwks = await tenantBundleJwks(tx, await app.tenantKeys.forTenant(tx, tenant.id), app.clock.now());
      });
    });
    after(() => app.close());

    test('a user export holds the decrypted profile, memberships with roles and audit events, and verifies against the JWKS', async () => {
      const info = await exportUserData(deps(), tenant, userId, 'test');
      assert.match(info.key, new RegExp(`^user-exports/acme/${userId}/\\d{8}T\\d{6}\\.\\d{3}Z\\.bundle$`));
      const { body } = await app.objects.get(info.key);
      const report = await verifyBundle(body, jwks);
      assert.equal(report.kind, 'user-export');
      assert.deepEqual(report.tenant, { id: tenant.id, slug: 'acme' });
      assert.equal(report.subject.userId, userId);
      assert.deepEqual(
        report.files.map((f) => f.path),
        ['profile.json', 'memberships.json', 'sessions.json', 'audit-events.ndjson'],
      );

      const bytes = await readAll((await app.objects.get(info.key)).body);
      const at = entryOffsets(bytes);
      const body_ = (path: string) => {
        const { start, size } = at.get(path)!;
        return bytes.subarray(start, start + size).toString('utf8');
      };
      assert.equal(JSON.parse(body_('profile.json')).email, 'ann@acme.test');
      const [membership] = JSON.parse(body_('memberships.json'));
      assert.equal(membership.organisation.name, 'North');
      assert.deepEqual(
        membership.roles.map((r: { name: string }) => r.name),
        ['auditor'],
      );
      const actions = body_('audit-events.ndjson')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).action);
      assert.ok(actions.includes('user.created'), actions.join());

      const [latest] = await withTenant(app.db, tenant.id, async (tx) =>
        readAudit(tx, await app.tenantKeys.forTenant(tx, tenant.id), { limit: 1 }),
      );
      assert.equal(latest!.action, 'user.exported');
      assert.equal(latest!.target, `user:${userId}`);
    });

    test('an audit archive holds gzip NDJSON events and the chain head, verifies, is listed and is audited', async () => {
      const info = await exportAuditArchive(deps(), tenant, {}, 'test');
      assert.match(info.key, /^audit-archives\/acme\/start_\d{8}T\d{6}\.\d{3}Z_\d{8}T\d{6}\.\d{3}Z\.bundle$/);
      assert.equal(info.chain.ok, true);
      const bytes = await readAll((await app.objects.get(info.key)).body);
      const report = await verifyBundle(bytes, jwks);
      assert.equal(report.kind, 'audit-archive');
      const at = entryOffsets(bytes);
      const gz = at.get('events.ndjson.gz')!;
      const events = gunzipSync(bytes.subarray(gz.start, gz.start + gz.size))
        .toString('utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      assert.equal(events.length, info.events);
      assert.deepEqual(
        events.map((e) => e.seq),
        events.map((_, i) => i + 1),
        'oldest first, the whole chain',
      );
      const chainAt = at.get('chain.json')!;
      const chain = JSON.parse(bytes.subarray(chainAt.start, chainAt.start + chainAt.size).toString('utf8'));
      assert.equal(chain.chain.headHash, events.at(-1).hash);
      assert.equal(chain.chain.ok, true);

      const listed = await listAuditArchives(app, tenant);
      assert.ok(listed.some((a) => a.key === info.key));
      const [latest] = await withTenant(app.db, tenant.id, async (tx) =>
        readAudit(tx, await app.tenantKeys.forTenant(tx, tenant.id), { limit: 1 }),
      );
      assert.equal(latest!.action, 'audit.exported');
      assert.equal(latest!.seq, events.length + 1);
    });

    test('an audit archive keeps only the events of its range', async () => {
      const future = new Date(Date.now() + 3_600_000);
      const info = await exportAuditArchive(
        deps(),
        tenant,
        { from: future, to: new Date(future.getTime() + 1000) },
        'test',
      );
      assert.equal(info.events, 0);
      await verifyBundle((await app.objects.get(info.key)).body, jwks);
      await assert.rejects(
        exportAuditArchive(deps(), tenant, { from: future, to: future }, 'test'),
        (e: unknown) => isOrthIdError(e, 'request.invalid'),
      );
    });

    test('flipping one byte in any file, the manifest or the signature fails naming that file', async () => {
      for (const info of [
        await exportUserData(deps(), tenant, userId, 'test'),
        await exportAuditArchive(deps(), tenant, {}, 'test'),
      ]) {
        const bytes = await readAll((await app.objects.get(info.key)).body);
        const entries = entryOffsets(bytes);
        assert.ok(entries.size >= 4);
        for (const [path, { start, size }] of entries) {
          for (const at of [start, start + Math.floor(size / 2), start + size - 1]) {
            await rejectsNaming(flipped(bytes, at), jwks, path);
          }
        }
      }
    });

    test('a changed tar header, padding, end marker or a truncated archive fails too', async () => {
      const info = await exportUserData(deps(), tenant, userId, 'test');
      const bytes = await readAll((await app.objects.get(info.key)).body);
      const profile = entryOffsets(bytes).get('profile.json')!;
      // The ustar header of profile.json (its mode field) and the zero padding after its content.
      await rejectsNaming(flipped(bytes, profile.start - 512 + 100), jwks, 'profile.json', 'archive_damaged');
      await rejectsNaming(
        flipped(bytes, profile.start + profile.size),
        jwks,
        'profile.json',
        'archive_damaged',
      );
      await assert.rejects(verifyBundle(flipped(bytes, bytes.length - 1), jwks), (e: unknown) =>
        isOrthIdError(e, 'bundle.invalid'),
      );
      await assert.rejects(verifyBundle(bytes.subarray(0, bytes.length - 1024), jwks), (e: unknown) =>
        isOrthIdError(e, 'bundle.invalid'),
      );
      await assert.rejects(verifyBundle(Buffer.concat([bytes, Buffer.alloc(512)]), jwks), (e: unknown) =>
        isOrthIdError(e, 'bundle.invalid'),
      );
    });

    test("a bundle signed by another tenant fails against this tenant's JWKS", async () => {
      await withTenant(app.db, other.id, (tx) =>
        app.users.create(tx, other.id, { email: 'gil@globex.test' }, 'test'),
      );
      const info = await exportAuditArchive(deps(), other, {}, 'test');
      const bytes = await readAll((await app.objects.get(info.key)).body);
      await rejectsNaming(bytes, jwks, 'manifest.jws', 'unknown_key');
      const otherJwks = await withTenant(app.db, other.id, async (tx) =>
        tenantBundleJwks(tx, await app.tenantKeys.forTenant(tx, other.id), app.clock.now()),
      );
      assert.equal((await verifyBundle(bytes, otherJwks)).tenant.slug, 'globex');
    });

    if (driver === 'pglite') {
      test('orthid bundle verify checks a file against a JWKS file: exit 0 when valid, 1 naming the file otherwise', async () => {
        const dir = await mkdtemp(join(tmpdir(), 'orthid-bundle-cli-'));
        try {
          const info = await exportUserData(deps(), tenant, userId, 'test');
          const bytes = await readAll((await app.objects.get(info.key)).body);
          const file = join(dir, 'export.bundle');
          const damaged = join(dir, 'damaged.bundle');
          const jwksFile = join(dir, 'jwks.json');
          await writeFile(file, bytes);
          const memberships = entryOffsets(bytes).get('memberships.json')!;
          await writeFile(damaged, flipped(bytes, memberships.start + 3));
          await writeFile(jwksFile, JSON.stringify(jwks));

          const ok = await runCli(['bundle', 'verify', file, '--jwks', jwksFile, '--json'], {});
          assert.equal(ok.code, exitCodes.ok, ok.stderr);
          assert.equal(JSON.parse(ok.stdout).valid, true);

          const bad = await runCli(['bundle', 'verify', damaged, '--jwks', jwksFile], {});
          assert.equal(bad.code, exitCodes.checkFailed, bad.stderr);
          assert.match(bad.stdout, /memberships\.json/);
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      });
    }
  });
}
