// `orthid upgrade` on real PostgreSQL through the real CLI: a deployment with a migration pending
// is backed up before anything is migrated (refused, with nothing changed, when no set could be
// encrypted), a recent complete set counts as that backup, and a current schema is left alone.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../src/config/config.js';
import { exitCodes } from '../../src/core/errors.js';
import { openPostgres } from '../../src/storage/db/postgres-driver.js';
import { ageKeygen } from '../helpers/age-cli.js';
import { runCli } from '../helpers/cli.js';
import { backupDeploymentEnv } from '../helpers/deployment.js';
import { createTestDatabase, query } from '../helpers/postgres.js';
import { BINDING_MIGRATION, preBindingDeployment } from '../helpers/pre-binding.js';

const MASTER = 'upgrade-test-master-secret-0123456789abcdef';

describe('orthid upgrade backs up before it migrates', { timeout: 300_000 }, () => {
  let dir: string;
  let url: string;
  let env: Record<string, string>;

  const pendingApplied = async () =>
    query(url, 'SELECT version FROM orthid_migrations WHERE version = $1', [BINDING_MIGRATION]);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'orthid-upgrade-'));
    url = await createTestDatabase('orthid_upgrade');
    env = { ...backupDeploymentEnv(dir, url, MASTER, ageKeygen(dir)), ORTHID_LOG_LEVEL: 'silent' };
    // A deployment of the release before, with the deployment binding's migration pending.
    await preBindingDeployment(await openPostgres(url), loadConfig(env), MASTER);
  });

  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('without a recent set or recipients, it refuses and migrates nothing', async () => {
    const refused = await runCli(['upgrade', '--json'], { ...env, ORTHID_BACKUP_AGE_RECIPIENTS: '' });
    assert.equal(refused.code, exitCodes.invalid, refused.stderr);
    assert.match(refused.stderr, /error\[backup\.no_recipients\][^\n]*Nothing was migrated\./);
    assert.deepEqual(await pendingApplied(), []);
  });

  test('a bad --max-backup-age is refused before anything is read', async () => {
    const refused = await runCli(['upgrade', '--max-backup-age', 'soon'], env);
    assert.match(refused.stderr, /error\[request\.invalid\]: --max-backup-age must be a number of hours\./);
    assert.deepEqual(await pendingApplied(), []);
  });

  test('it takes an encrypted set, then applies the pending migration; a second run has nothing to do', async () => {
    const upgraded = await runCli(['upgrade', '--json'], env);
    assert.equal(upgraded.code, 0, upgraded.stderr);
    const report = JSON.parse(upgraded.stdout) as { backup: string; applied: number[] };
    assert.ok(report.applied.includes(BINDING_MIGRATION), upgraded.stdout);
    assert.match(upgraded.stderr, /Taking a backup before the upgrade\./);
    const listed = await runCli(['backup', 'list', '--json'], env);
    const sets = (JSON.parse(listed.stdout) as { sets: { id: string; status: string; encrypted: boolean }[] })
      .sets;
    assert.deepEqual(
      sets.map((s) => [s.id, s.status, s.encrypted]),
      [[report.backup, 'complete', true]],
    );
    assert.deepEqual(await pendingApplied(), [{ version: BINDING_MIGRATION }]);

    const again = await runCli(['upgrade', '--json'], env);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(JSON.parse(again.stdout), { backup: null, applied: [] });
  });
});
