// Backups through the admin API as an operator uses them: sets with their status, age and the
// freshness warnings of `orthid backup list`, and a verify and a restore drill started as jobs
// whose progress is followed to their reports, recorded beside the set and in the audit log.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { generateIdentity } from '../../src/crypto/age/index.js';
import { composeOrthId } from '../../src/main.js';
import { bootstrap } from '../../src/ops/bootstrap.js';
import { runOperation } from '../../src/ops/operations.js';
import { buildServer } from '../../src/server/app.js';
import { withTenant } from '../../src/storage/db/database.js';
import type { Tenant } from '../../src/tenancy/tenants.js';
import { mintAdminToken } from '../helpers/admin-token.js';
import { createTestOrthId, DRIVERS, type TestOrthId } from '../helpers/orthid.js';

interface Job {
  id: string;
  kind: string;
  set: string;
  status: 'running' | 'succeeded' | 'failed';
  steps: { title: string }[];
  result: {
    ok: boolean;
    report: { parts?: { ok: boolean }[]; checks?: { name: string; ok: boolean }[] };
  } | null;
  error: { code: string } | null;
}

for (const driver of DRIVERS) {
  describe(`admin API backups (${driver})`, { timeout: 600_000 }, () => {
    let work: string;
    let orthid: TestOrthId;
    let app: FastifyInstance;
    let system: Tenant;
    let alpha: Tenant;
    let recipient: string;

    async function call(
      method: 'GET' | 'POST',
      path: string,
      options: { as?: Tenant; body?: unknown } = {},
    ): Promise<LightMyRequestResponse> {
      const token = await mintAdminToken(orthid, options.as ?? system);
      return app.inject({
        method,
        url: `/api/v1${path}`,
        headers: { authorization: `Bearer ${token}` },
        ...(options.body === undefined ? {} : { payload: options.body as object }),
      });
    }

    /** Follows a job the way a console does, until it has finished (bounded). */
    async function finished(id: string): Promise<Job> {
      for (let i = 0; i < 6000; i++) {
        const job = (await call('GET', `/backups/jobs/${id}`)).json() as Job;
        if (job.status !== 'running') return job;
        await sleep(100);
      }
      throw new Error(`job ${id} did not finish`);
    }

    before(async () => {
      work = await mkdtemp(join(tmpdir(), 'orthid-admin-backups-'));
      const key = generateIdentity();
      recipient = key.recipient;
      const identityFile = join(work, 'identity.txt');
      await writeFile(identityFile, `${key.identity}\n`, { mode: 0o600 });
      orthid = await createTestOrthId(driver, {
        env: {
          ORTHID_BACKUP_DEST: pathToFileURL(join(work, 'sets')).href,
          ORTHID_BACKUP_AGE_IDENTITY_FILE: identityFile,
        },
      });
      // A bootstrapped deployment: the system tenant with the canary a drill signs in with.
      await bootstrap(orthid, join(work, 'admin-credentials.json'));
      system = await orthid.tenants.get('system');
      alpha = await orthid.tenants.create({ slug: 'alpha', actor: 'test' });
      await withTenant(orthid.db, alpha.id, (tx) =>
        orthid.users.create(tx, alpha.id, { email: 'restored@alpha.test', name: 'Restored Person' }, 'test'),
      );
      app = await buildServer(orthid, { compose: composeOrthId });
    });
    after(async () => {
      await app?.close();
      await orthid?.close();
      if (work) await rm(work, { recursive: true, force: true });
    });

    test('only the system tenant administrators see backups', async () => {
      const response = await call('GET', '/backups', { as: alpha });
      assert.equal(response.statusCode, 403);
      assert.equal(response.json().code, 'auth.forbidden');
      assert.match(response.json().detail, /orthid:admin/);
      const start = await call('POST', '/backups/jobs', { as: alpha, body: { kind: 'verify' } });
      assert.equal(start.statusCode, 403);
    });

    test('without sets the listing warns as backup list does, and a job of no set is refused', async () => {
      const empty = await call('GET', '/backups');
      assert.equal(empty.statusCode, 200, empty.body);
      assert.deepEqual(empty.json().items, []);
      assert.deepEqual(empty.json().warnings, [
        'There is no complete backup set.',
        'No restore drill has passed: run orthid backup drill.',
      ]);
      const none = await call('POST', '/backups/jobs', { body: { kind: 'verify' } });
      assert.equal(none.statusCode, 404);
      assert.equal(none.json().code, 'backup.set_not_found');
      for (const body of [{ kind: 'restore' }, { kind: 'verify', set: '' }, { kind: 'verify', extra: 1 }]) {
        const bad = await call('POST', '/backups/jobs', { body });
        assert.equal(bad.statusCode, 400, JSON.stringify(body));
        assert.equal(bad.json().code, 'request.invalid');
      }
      assert.equal((await call('GET', '/backups?status=lost')).statusCode, 400);
      const unknown = await call('GET', '/backups/jobs/0190d7a0-0000-7000-8000-000000000000');
      assert.equal(unknown.statusCode, 404);
      assert.equal(unknown.json().code, 'backup.job_not_found');
    });

    test('a set is listed, verified and drilled as jobs, and the outcomes show in the listing', async () => {
      const manifest = await runOperation(orthid, 'backup.dump', {
        encrypt: true,
        upload: false,
        recipients: [recipient],
        dest: orthid.config.backup.dest,
        destConfigured: true,
      });
      const listed = await call('GET', '/backups');
      const sets = listed.json().items as {
        id: string;
        status: string;
        size: number;
        ageSeconds: number;
        verified: unknown;
      }[];
      assert.equal(sets.length, 1);
      assert.equal(sets[0]!.id, manifest.setId);
      assert.equal(sets[0]!.status, 'complete');
      assert.ok(sets[0]!.size > 0);
      assert.ok(sets[0]!.ageSeconds >= 0);
      assert.equal(sets[0]!.verified, null);
      assert.deepEqual(listed.json().warnings, ['No restore drill has passed: run orthid backup drill.']);

      const started = await call('POST', '/backups/jobs', { body: { kind: 'verify' } });
      assert.equal(started.statusCode, 202, started.body);
      assert.equal(started.headers.location, `/api/v1/backups/jobs/${started.json().id}`);
      assert.equal(started.json().set, manifest.setId, '"latest" is resolved when the job starts');
      const verify = await finished(started.json().id);
      assert.equal(verify.status, 'succeeded', JSON.stringify(verify));
      assert.equal(verify.result?.ok, true);
      assert.ok(verify.result?.report.parts?.every((p) => p.ok));
      assert.ok(verify.steps.length >= 2);

      const drillStarted = await call('POST', '/backups/jobs', {
        body: { kind: 'drill', set: manifest.setId },
      });
      assert.equal(drillStarted.statusCode, 202, drillStarted.body);
      const busy = await call('POST', '/backups/jobs', { body: { kind: 'drill' } });
      assert.equal(busy.statusCode, 409);
      assert.equal(busy.json().code, 'backup.locked');
      const drill = await finished(drillStarted.json().id);
      assert.equal(drill.status, 'succeeded', JSON.stringify(drill));
      assert.ok(drill.result?.report.checks?.some((c) => c.name === 'decrypted-fields' && c.ok));
      assert.ok(drill.steps.length > 0, 'the drill reported its steps as it went');

      const after = (await call('GET', '/backups')).json();
      assert.equal(after.items[0].verified.ok, true);
      assert.equal(after.items[0].drill.ok, true);
      assert.deepEqual(after.warnings, []);
      const jobs = (await call('GET', '/backups/jobs')).json().items as Job[];
      assert.deepEqual(
        jobs.map((j) => j.kind),
        ['drill', 'verify'],
      );
      const recorded = await withTenant(orthid.db, system.id, async (tx) => {
        const { rows } = await tx.query<{ actor: string; outcome: string }>(
          "SELECT actor, outcome FROM audit_events WHERE action = 'backup.drill' ORDER BY seq DESC LIMIT 1",
        );
        return rows[0];
      });
      assert.deepEqual(recorded, { actor: 'client:admin-client@system', outcome: 'success' });
    });
  });
}
