// A verify started through the admin API of `orthid start` on PostgreSQL, whose server is killed
// (SIGKILL) while the job reads the set: the server started again shows the job as interrupted
// with a stable code once the dead one's lease has run out, and a new verify may start.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ageKeygen, requireAgeCli } from '../helpers/age-cli.js';
import { adminTokenFrom, readBootstrapCredentials } from '../helpers/bootstrap-credentials.js';
import { runCli } from '../helpers/cli.js';
import { createTestDatabase, freePort, query } from '../helpers/postgres.js';
import {
  holdingObjectReads,
  type S3TestServer,
  startS3Server,
  TEST_CREDENTIALS,
} from '../helpers/s3-server.js';
import { type ServerProcess, startServer } from '../helpers/server-process.js';

interface Job {
  id: string;
  status: string;
  finishedAt: string | null;
  error: { code: string; message: string } | null;
}

const START_TIMEOUT_MS = 180_000;

describe('a backup job whose server was killed', { timeout: 600_000 }, () => {
  let dir: string;
  let s3: S3TestServer;
  const reads = holdingObjectReads();
  let env: Record<string, string>;
  let database: string;
  let port: number;
  let server: ServerProcess | undefined;

  const token = async () =>
    adminTokenFrom(await readBootstrapCredentials(join(dir, 'data', 'admin-credentials.json')));
  async function api(method: 'GET' | 'POST', path: string, body?: unknown): Promise<Response> {
    return fetch(`${server!.url}/api/v1${path}`, {
      method,
      headers: {
        authorization: `Bearer ${await token()}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  }
  /** The job once it is no longer running (bounded by the test's timeout). */
  async function ended(id: string): Promise<Job> {
    for (;;) {
      const response = await api('GET', `/backups/jobs/${id}`);
      assert.equal(response.status, 200, await response.clone().text());
      const job = (await response.json()) as Job;
      if (job.status !== 'running') return job;
      await sleep(200);
    }
  }

  before(async () => {
    requireAgeCli();
    dir = await mkdtemp(join(tmpdir(), 'orthid-backup-jobs-killed-'));
    s3 = await startS3Server({ onRequest: reads.onRequest });
    const key = ageKeygen(dir, 'backup-key.txt');
    database = await createTestDatabase('orthid_jobs_killed');
    port = await freePort();
    env = {
      ORTHID_DATA_DIR: join(dir, 'data'),
      ORTHID_DATABASE_URL: database,
      ORTHID_MASTER_KEY: 'backup-jobs-killed-master-secret-0123456789',
      ORTHID_REGION: s3.region,
      ORTHID_BACKUP_DEST: s3.url,
      ORTHID_BACKUP_AGE_RECIPIENTS: key.recipient,
      ORTHID_BACKUP_AGE_IDENTITY_FILE: key.file,
      // Short, so the test does not wait a minute for the dead server's lease to run out.
      ORTHID_BACKUP_JOB_LEASE_SECONDS: '2',
      AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    };
    assert.equal((await runCli(['keystore', 'init'], env)).code, 0);
    assert.equal((await runCli(['migrate'], env)).code, 0);
    // The same port again after the kill, so the admin credentials' issuer stays the same.
    server = await startServer(env, START_TIMEOUT_MS, port);
    const dump = await runCli(['backup', 'dump', '--encrypt', '--json'], {
      ...env,
      ORTHID_PUBLIC_URL: server.url,
    });
    assert.equal(dump.code, 0, dump.stderr);
  });

  after(async () => {
    reads.release();
    if (server?.child.exitCode === null && server.child.signalCode === null) await server.stop();
    await s3?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('the restarted server shows it interrupted with backup.job_interrupted, and a new verify runs', async () => {
    reads.hold();
    const started = await api('POST', '/backups/jobs', { kind: 'verify' });
    assert.equal(started.status, 202, await started.clone().text());
    const { id } = (await started.json()) as Job;
    // The job is reading the set's parts: it is surely running when the server dies.
    while (reads.held().length === 0) await sleep(50);
    const killed = new Promise((resolve) => server!.child.once('exit', resolve));
    server!.child.kill('SIGKILL');
    await killed;
    const [row] = await query<{ status: string }>(database, 'SELECT status FROM backup_jobs WHERE id = $1', [
      id,
    ]);
    assert.equal(row?.status, 'running', 'nothing could record the end of a killed server’s job');
    reads.release();

    server = await startServer(env, START_TIMEOUT_MS, port);
    const job = await ended(id);
    assert.equal(job.status, 'interrupted', JSON.stringify(job));
    assert.equal(job.error?.code, 'backup.job_interrupted');
    assert.ok(job.finishedAt);

    const next = await api('POST', '/backups/jobs', { kind: 'verify' });
    assert.equal(next.status, 202, await next.clone().text());
    const verified = await ended(((await next.json()) as Job).id);
    assert.equal(verified.status, 'succeeded', JSON.stringify(verified));
  });
});
