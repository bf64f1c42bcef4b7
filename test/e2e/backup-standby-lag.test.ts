// A backup dump from a replica that lags: it waits until the replica has replayed what the
// primary had when the dump began, so the set holds every audit head its checkpoints name.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Manifest } from '../../src/backup/manifest.js';
import { loadConfig } from '../../src/config/config.js';
import { createLogger } from '../../src/core/logger.js';
import { openOrthId } from '../../src/main.js';
import { ageKeygen, requireAgeCli } from '../helpers/age-cli.js';
import { runCli } from '../helpers/cli.js';
import {
  type Cluster,
  currentWalLsn,
  query,
  startCluster,
  startStandby,
  waitForReplay,
} from '../helpers/postgres.js';

const MASTER = 'backup-standby-lag-test-master-secret-0123456789';
const dbUrl = (cluster: Cluster) => cluster.url.replace(/\/postgres$/, '/orthid');

describe('a dump from a lagging replica', { timeout: 300_000 }, () => {
  let primary: Cluster;
  let standby: Cluster;
  let dir: string;
  let env: Record<string, string>;
  let key: ReturnType<typeof ageKeygen>;

  before(async () => {
    requireAgeCli();
    dir = mkdtempSync(join(tmpdir(), 'orthid-standby-lag-'));
    key = ageKeygen(dir);
    primary = await startCluster();
    await query(primary.url, 'CREATE DATABASE orthid');
    env = {
      ORTHID_DATA_DIR: join(dir, 'data'),
      ORTHID_DATABASE_URL: dbUrl(primary),
      ORTHID_MASTER_KEY: MASTER,
      ORTHID_BACKUP_AGE_RECIPIENTS: key.recipient,
      ORTHID_BACKUP_DEST: join(dir, 'sets'),
      ORTHID_BACKUP_KEYSTORE_DEST: join(dir, 'keys'),
      ORTHID_DRILL_DATABASE_URL: primary.url,
    };
    const app = await openOrthId(loadConfig(env), {
      initKeystore: true,
      migrate: true,
      log: createLogger('silent'),
    });
    await app.tenants.create({ slug: 'acme', actor: 'test' });
    await app.close();
    standby = await startStandby(primary);
    await waitForReplay(standby.url, await currentWalLsn(primary.url));
  });
  after(() => {
    standby?.stop();
    primary?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('waits for the replica to replay what the primary had, so its set agrees with the audit checkpoints it names', async () => {
    // The replica stops replaying; the deployment goes on writing (a tenant and its audit events).
    await query(standby.url, 'SELECT pg_wal_replay_pause()');
    const created = await runCli(['tenant', 'create', 'late'], env);
    assert.equal(created.code, 0, created.stderr);

    let finished = false;
    const dump = runCli(['backup', 'dump', '--encrypt', '--json'], {
      ...env,
      ORTHID_BACKUP_DATABASE_URL: dbUrl(standby),
    }).finally(() => {
      finished = true;
    });
    // While the replica lags behind what the dump's checkpoints name, the dump does not read it.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    assert.equal(finished, false, 'the dump read a replica that had not replayed the primary');
    await query(standby.url, 'SELECT pg_wal_replay_resume()');

    const result = await dump;
    assert.equal(result.code, 0, result.stderr);
    const manifest = JSON.parse(result.stdout) as Manifest;
    assert.equal(manifest.database.source?.standby, true);

    // The drill restores the set and holds each chain against the checkpoints taken at the dump:
    // a snapshot read before the replica caught up would lack the late tenant's events.
    const drill = await runCli(
      ['backup', 'drill', '--from', manifest.setId, '--identity', key.file, '--json'],
      env,
    );
    const report = JSON.parse(drill.stdout) as { checks: { name: string; ok: boolean; detail: string }[] };
    const audit = report.checks.find((c) => c.name === 'audit-log');
    assert.equal(audit?.ok, true, audit?.detail);
    assert.match(audit.detail, /2 tenant audit chain\(s\) intact, .* 2 held against a checkpoint/);
  });
});
