// Backups through the admin API as an operator uses them: sets with their status, age and the
// freshness warnings of `orthid backup list`, and a verify and a restore drill started as jobs
// whose progress is followed to their reports, recorded beside the set and in the audit log.
// The jobs are kept in the database: a restarted server and a second instance on the same
// database see them, one verify at a time holds across instances, and a server started on the
// embedded database interrupts what a server before it left running.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { systemClock } from '../../src/core/clock.js';
import { createLogger } from '../../src/core/logger.js';
import { generateIdentity } from '../../src/crypto/age/index.js';
import { ManagedKeystore } from '../../src/crypto/managed-keystore.js';
import { composeOrthId } from '../../src/main.js';
import { bootstrap } from '../../src/ops/bootstrap.js';
import { runOperation } from '../../src/ops/operations.js';
import type { OrthId } from '../../src/ops/orthid.js';
import { buildServer } from '../../src/server/app.js';
import { withTenant } from '../../src/storage/db/database.js';
import { openPostgres } from '../../src/storage/db/postgres-driver.js';
import { openObjectStore } from '../../src/storage/objects/open-object-store.js';
import type { Tenant } from '../../src/tenancy/tenants.js';
import { mintAdminToken } from '../helpers/admin-token.js';
import { createTestOrthId, DRIVERS, TEST_MASTER_KEY, type TestOrthId } from '../helpers/orthid.js';
import { query } from '../helpers/postgres.js';
import { holdingObjectReads, type S3TestServer, startS3Server } from '../helpers/s3-server.js';

interface Job {
  id: string;
  kind: string;
  set: string;
  status: 'running' | 'succeeded' | 'failed' | 'interrupted';
  finishedAt: string | null;
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

/** Follows a job through `get` until it has finished (bounded). */
async function followed(get: (id: string) => Promise<LightMyRequestResponse>, id: string): Promise<Job> {
  for (let i = 0; i < 6000; i++) {
    const response = await get(id);
    assert.equal(response.statusCode, 200, response.body);
    const job = response.json() as Job;
    if (job.status !== 'running') return job;
    await sleep(100);
  }
  throw new Error(`job ${id} did not finish`);
}

for (const driver of DRIVERS) {
  describe(`backup jobs kept in the database (${driver})`, { timeout: 600_000 }, () => {
    let work: string;
    let s3: S3TestServer;
    const reads = holdingObjectReads();
    let orthid: TestOrthId;
    let app: FastifyInstance;
    let system: Tenant;
    let setId: string;

    async function call(
      server: FastifyInstance,
      method: 'GET' | 'POST',
      path: string,
      body?: unknown,
      as: OrthId = orthid,
    ): Promise<LightMyRequestResponse> {
      const token = await mintAdminToken(as, system);
      return server.inject({
        method,
        url: `/api/v1${path}`,
        headers: { authorization: `Bearer ${token}` },
        ...(body === undefined ? {} : { payload: body as object }),
      });
    }
    const jobOn =
      (server: FastifyInstance, as: OrthId = orthid) =>
      (id: string) =>
        call(server, 'GET', `/backups/jobs/${id}`, undefined, as);

    /** Resolves once the held job has asked for a part, so it is surely running. */
    async function heldRead(count: number): Promise<void> {
      for (let i = 0; i < 6000 && reads.held().length < count; i++) await sleep(50);
      assert.ok(reads.held().length >= count, 'the job reads the set');
    }

    /**
     * Another OrthID on the same PostgreSQL database, as a second replica is: its own pool,
     * keystore and object store opened from the same configuration, its own server.
     */
    async function secondInstance(): Promise<OrthId & { server: FastifyInstance }> {
      const other = composeOrthId({
        config: orthid.config,
        clock: systemClock,
        log: createLogger('silent'),
        db: await openPostgres(orthid.databaseUrl!),
        keystore: await ManagedKeystore.open(orthid.config.keystorePath, TEST_MASTER_KEY),
        objects: await openObjectStore(orthid.config.objectStore),
      });
      const server = await buildServer(other, { compose: composeOrthId });
      return Object.assign(other, { server });
    }

    before(async () => {
      work = await mkdtemp(join(tmpdir(), 'orthid-backup-jobs-'));
      s3 = await startS3Server({ onRequest: reads.onRequest });
      const key = generateIdentity();
      const identityFile = join(work, 'identity.txt');
      await writeFile(identityFile, `${key.identity}\n`, { mode: 0o600 });
      orthid = await createTestOrthId(driver, {
        env: {
          ORTHID_REGION: s3.region,
          ORTHID_BACKUP_DEST: s3.url,
          ORTHID_BACKUP_AGE_IDENTITY_FILE: identityFile,
        },
      });
      await bootstrap(orthid, join(work, 'admin-credentials.json'));
      system = await orthid.tenants.get('system');
      const manifest = await runOperation(orthid, 'backup.dump', {
        encrypt: true,
        upload: false,
        recipients: [key.recipient],
        dest: orthid.config.backup.dest,
        destConfigured: true,
      });
      setId = manifest.setId;
      app = await buildServer(orthid, { compose: composeOrthId });
    });
    after(async () => {
      reads.release();
      await app?.close();
      await orthid?.close();
      await s3?.stop();
      if (work) await rm(work, { recursive: true, force: true });
    });

    test('bad job input is refused with 400 and starts nothing', async () => {
      const before = (await call(app, 'GET', '/backups/jobs')).json().items as Job[];
      for (const body of [
        {},
        { kind: 'verify', set: '../other' },
        { kind: 'verify', set: 'x'.repeat(201) },
        { kind: 'verify', set: 7 },
        { kind: ['verify'] },
      ]) {
        const bad = await call(app, 'POST', '/backups/jobs', body);
        assert.equal(bad.statusCode, 400, `${JSON.stringify(body)}: ${bad.body}`);
        assert.equal(bad.json().code, 'request.invalid');
      }
      const notUuid = await call(app, 'GET', '/backups/jobs/not-a-job');
      assert.equal(notUuid.statusCode, 400);
      assert.equal(notUuid.json().code, 'request.invalid');
      assert.deepEqual((await call(app, 'GET', '/backups/jobs')).json().items, before);
    });

    test('a restarted server shows the jobs of the one before, steps and report and all', async () => {
      const started = await call(app, 'POST', '/backups/jobs', { kind: 'verify', set: setId });
      assert.equal(started.statusCode, 202, started.body);
      const done = await followed(jobOn(app), started.json().id);
      assert.equal(done.status, 'succeeded', JSON.stringify(done));
      await app.close();
      app = await buildServer(orthid, { compose: composeOrthId });
      const again = await call(app, 'GET', `/backups/jobs/${done.id}`);
      assert.equal(again.statusCode, 200, again.body);
      assert.deepEqual(again.json(), done);
      const listed = (await call(app, 'GET', '/backups/jobs')).json().items as Job[];
      assert.deepEqual(listed[0], done);
    });

    if (driver === 'postgres') {
      test('a second instance on the same database sees a running job, may not start another verify, and sees it end', async () => {
        const other = await secondInstance();
        try {
          reads.hold();
          const started = await call(app, 'POST', '/backups/jobs', { kind: 'verify', set: setId });
          assert.equal(started.statusCode, 202, started.body);
          await heldRead(1);
          const seen = await jobOn(other.server, other)(started.json().id);
          assert.equal(seen.json().status, 'running');
          const refused = await call(other.server, 'POST', '/backups/jobs', { kind: 'verify' }, other);
          assert.equal(refused.statusCode, 409, refused.body);
          assert.equal(refused.json().code, 'backup.locked');
          assert.match(refused.json().detail, new RegExp(started.json().id));
          reads.release();
          const ended = await followed(jobOn(other.server, other), started.json().id);
          assert.equal(ended.status, 'succeeded', JSON.stringify(ended));
          const next = await call(other.server, 'POST', '/backups/jobs', { kind: 'verify' }, other);
          assert.equal(next.statusCode, 202, next.body);
          assert.equal((await followed(jobOn(app), next.json().id)).status, 'succeeded');
        } finally {
          reads.release();
          await other.server.close();
          await other.close();
        }
      });

      test('two instances starting a verify at the same moment: exactly one starts', async () => {
        const other = await secondInstance();
        try {
          reads.hold();
          const answers = await Promise.all([
            call(app, 'POST', '/backups/jobs', { kind: 'verify' }),
            call(other.server, 'POST', '/backups/jobs', { kind: 'verify' }, other),
          ]);
          assert.deepEqual(
            answers.map((a) => a.statusCode).sort(),
            [202, 409],
            answers.map((a) => a.body).join('\n'),
          );
          const running = await query<{ n: string }>(
            orthid.databaseUrl!,
            "SELECT count(*) AS n FROM backup_jobs WHERE status = 'running'",
          );
          assert.equal(Number(running[0]!.n), 1);
          reads.release();
          const id = answers.find((a) => a.statusCode === 202)!.json().id as string;
          assert.equal((await followed(jobOn(app), id)).status, 'succeeded');
        } finally {
          reads.release();
          await other.server.close();
          await other.close();
        }
      });

      test('no tenant’s transaction sees or writes the jobs, and the server role may not change the table', async () => {
        const alpha = await orthid.tenants.create({ slug: 'jobs-alpha', actor: 'test' });
        const seen = await withTenant(orthid.db, alpha.id, async (tx) => {
          const { rows } = await tx.query('SELECT id FROM backup_jobs');
          const { rowCount } = await tx.query("UPDATE backup_jobs SET started_by = 'tenant'");
          return { rows: rows.length, updated: rowCount };
        });
        assert.deepEqual(seen, { rows: 0, updated: 0 });
        await assert.rejects(
          withTenant(orthid.db, alpha.id, (tx) => tx.query('TRUNCATE backup_jobs')),
          /permission denied/,
        );
      });
    } else {
      test('a server started on the embedded database interrupts the job an earlier server left running', async () => {
        reads.hold();
        const started = await call(app, 'POST', '/backups/jobs', { kind: 'verify', set: setId });
        assert.equal(started.statusCode, 202, started.body);
        await heldRead(1);
        // The embedded database has one server at a time: the next one to start owns it, so the
        // job of the one before is of a process that is gone (here, one that stopped answering).
        const earlier = app;
        app = await buildServer(orthid, { compose: composeOrthId });
        try {
          const job = (await call(app, 'GET', `/backups/jobs/${started.json().id}`)).json() as Job;
          assert.equal(job.status, 'interrupted', JSON.stringify(job));
          assert.equal(job.error?.code, 'backup.job_interrupted');
          assert.ok(job.finishedAt);
          // The kind is free again.
          reads.release();
          const next = await call(app, 'POST', '/backups/jobs', { kind: 'verify', set: setId });
          assert.equal(next.statusCode, 202, next.body);
          assert.equal((await followed(jobOn(app), next.json().id)).status, 'succeeded');
        } finally {
          reads.release();
          await earlier.close();
        }
        // The earlier server's run ended after it was given up: it does not rewrite the record.
        const kept = (await call(app, 'GET', `/backups/jobs/${started.json().id}`)).json() as Job;
        assert.equal(kept.status, 'interrupted');
      });
    }
  });
}
