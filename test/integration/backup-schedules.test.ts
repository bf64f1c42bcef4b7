import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { readAudit } from '../../src/audit/audit-log.js';
import { listBackupSets } from '../../src/backup/sets.js';
import { generateIdentity } from '../../src/crypto/age/index.js';
import { composeOrthId } from '../../src/main.js';
import { bootstrap } from '../../src/ops/bootstrap.js';
import { startSchedules, type Ticker } from '../../src/ops/schedules.js';
import { withTenant } from '../../src/storage/db/database.js';
import type { ObjectStore } from '../../src/storage/objects/object-store.js';
import { openObjectStore } from '../../src/storage/objects/open-object-store.js';
import { SYSTEM_TENANT_SLUG } from '../../src/tenancy/admin-resource.js';
import { createTestOrthId, DRIVERS, type TestOrthId } from '../helpers/orthid.js';
import { query } from '../helpers/postgres.js';

for (const driver of DRIVERS) {
  describe(`in-process backup schedule (${driver})`, () => {
    let app: TestOrthId;
    const identityFile = join(tmpdir(), `orthid-schedules-${process.pid}-${driver}.age-key`);

    before(async () => {
      const key = generateIdentity();
      await writeFile(identityFile, `${key.identity}\n`, { mode: 0o600 });
      app = await createTestOrthId(driver, {
        env: {
          ORTHID_BACKUP_SCHEDULE: '*/2 * * * * *',
          ORTHID_BACKUP_AGE_RECIPIENTS: key.recipient,
          ORTHID_BACKUP_AGE_IDENTITY_FILE: identityFile,
          // Fired by hand below; the pattern itself never comes round while the tests run.
          ORTHID_DRILL_SCHEDULE: '0 0 29 2 *',
        },
      });
      await bootstrap(app, join(app.dataDir, 'admin-credentials.json'));
    });
    after(async () => {
      await app.close();
      await rm(identityFile, { force: true });
    });

    test('ORTHID_BACKUP_SCHEDULE takes encrypted sets on its own while the process runs', async () => {
      const schedules = startSchedules(app);
      const dest = await openObjectStore(app.config.backup.dest);
      try {
        let complete = 0;
        for (let i = 0; i < 100 && complete === 0; i++) {
          await new Promise((r) => setTimeout(r, 200));
          complete = await countComplete(dest);
        }
        assert.ok(complete >= 1, 'no complete set appeared within 20 s');
        const [newest] = (await listBackupSets(dest)).filter((s) => s.status === 'complete');
        assert.equal(newest!.manifest!.encrypted, true);
      } finally {
        await schedules.stop();
      }
    });

    test('stopping waits for the dump in progress, which completes', async () => {
      const dest = await openObjectStore(app.config.backup.dest);
      const completeBefore = await countComplete(dest);
      const schedules = startSchedules(app);
      for (let i = 0; i < 2000 && schedules.running().length === 0; i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
      const inProgress = schedules.running();
      // Called in the same tick as the check: the dump is still running when stop is called.
      const stopping = schedules.stop();
      assert.deepEqual(inProgress, ['ORTHID_BACKUP_SCHEDULE']);
      await stopping;
      assert.deepEqual(schedules.running(), []);
      assert.equal(await countComplete(dest), completeBefore + 1);
    });

    test('a tick while the run it started is still in progress is skipped: never two runs at once', {
      timeout: 120_000,
    }, async () => {
      const dest = await openObjectStore(app.config.backup.dest);
      const completeBefore = await countComplete(dest);
      const ticks = handTicker();
      const schedules = startSchedules(app, { ticker: ticks.ticker });
      // On PostgreSQL the first dump is held mid-run by a lock on the table it reads the root keys
      // from; on PGlite the second tick comes in the same turn of the event loop as the first, before
      // the dump could have done any I/O.
      const hold = driver === 'postgres' ? await holdTenantKeys(app.databaseUrl!) : undefined;
      try {
        try {
          ticks.fire('ORTHID_BACKUP_SCHEDULE');
          await hold?.blocked();
          ticks.fire('ORTHID_BACKUP_SCHEDULE');
          assert.deepEqual(schedules.running(), ['ORTHID_BACKUP_SCHEDULE']);
          assert.deepEqual(schedules.skipped(), { ORTHID_BACKUP_SCHEDULE: 1 });
        } finally {
          await hold?.release();
        }
        await settle(schedules);
        assert.equal(await countComplete(dest), completeBefore + 1, 'exactly one set from the two ticks');
        // Once the run has finished, the next tick runs again.
        ticks.fire('ORTHID_BACKUP_SCHEDULE');
        assert.deepEqual(schedules.running(), ['ORTHID_BACKUP_SCHEDULE']);
      } finally {
        // Even when an assertion failed: no dump may still be writing when the app closes.
        await schedules.stop();
      }
      assert.deepEqual(schedules.skipped(), { ORTHID_BACKUP_SCHEDULE: 1 });
      assert.equal(await countComplete(dest), completeBefore + 2);
    });

    test('ORTHID_DRILL_SCHEDULE drills the newest set with the running deployment and records it', {
      timeout: 180_000,
    }, async () => {
      const dest = await openObjectStore(app.config.backup.dest);
      const ticks = handTicker();
      const schedules = startSchedules(app, { ticker: ticks.ticker, compose: composeOrthId });
      try {
        ticks.fire('ORTHID_BACKUP_SCHEDULE');
        await settle(schedules);
        ticks.fire('ORTHID_DRILL_SCHEDULE');
        assert.deepEqual(schedules.running(), ['ORTHID_DRILL_SCHEDULE']);
        await settle(schedules, 120_000);
      } finally {
        await schedules.stop();
      }
      const [newest] = (await listBackupSets(dest)).filter((s) => s.status === 'complete');
      assert.equal(newest!.drill?.ok, true, JSON.stringify(newest!.drill));
      const system = await app.tenants.get(SYSTEM_TENANT_SLUG);
      const events = await withTenant(app.db, system.id, async (tx) =>
        readAudit(tx, await app.tenantKeys.forTenant(tx, system.id), { limit: 20 }),
      );
      assert.ok(events.some((e) => e.action === 'backup.drill' && e.outcome === 'success'));
    });
  });
}

/** A ticker the test fires by hand, by the variable that scheduled the run. */
function handTicker(): { ticker: Ticker; fire(variable: string): void } {
  const fires = new Map<string, () => void>();
  return {
    ticker: (_pattern, variable, fire) => {
      fires.set(variable, fire);
      return { stop: () => fires.delete(variable) };
    },
    fire(variable) {
      const fire = fires.get(variable);
      assert.ok(fire, `${variable} is not scheduled`);
      fire();
    },
  };
}

/** Holds an exclusive lock on tenant_keys until released; `blocked` resolves once a reader waits on it. */
async function holdTenantKeys(url: string): Promise<{ blocked(): Promise<void>; release(): Promise<void> }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query('BEGIN');
  await client.query('LOCK TABLE tenant_keys IN ACCESS EXCLUSIVE MODE');
  return {
    async blocked() {
      for (let i = 0; i < 3000; i++) {
        const [row] = await query<{ n: string }>(
          url,
          `SELECT count(*) AS n FROM pg_locks WHERE NOT granted AND relation = 'tenant_keys'::regclass`,
        );
        if (Number(row!.n) > 0) return;
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.fail('the scheduled dump never reached the locked table');
    },
    async release() {
      await client.query('COMMIT').catch(() => {});
      await client.end();
    },
  };
}

/** Waits until no scheduled run is in progress. */
async function settle(schedules: { running(): string[] }, withinMs = 60_000): Promise<void> {
  for (let i = 0; i < withinMs / 10 && schedules.running().length > 0; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.deepEqual(schedules.running(), [], `the run did not finish within ${withinMs / 1000} s`);
}

async function countComplete(dest: ObjectStore): Promise<number> {
  return (await listBackupSets(dest)).filter((s) => s.status === 'complete').length;
}
