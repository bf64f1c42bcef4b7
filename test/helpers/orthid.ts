// Builds a whole OrthID over each database driver for integration tests: a migrated database,
// a managed keystore in a temporary directory and the real domain services.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/config.js';
import { type Clock, systemClock } from '../../src/core/clock.js';
import { createLogger } from '../../src/core/logger.js';
import { ManagedKeystore } from '../../src/crypto/managed-keystore.js';
import type { AvatarLimits } from '../../src/identity/avatars.js';
import { composeOrthId } from '../../src/main.js';
import type { OrthId } from '../../src/ops/orthid.js';
import type { Database } from '../../src/storage/db/database.js';
import { migrate } from '../../src/storage/db/migrate.js';
import { openPostgres } from '../../src/storage/db/postgres-driver.js';
import { openObjectStore } from '../../src/storage/objects/open-object-store.js';
import { migratedPglite } from './pglite-template.js';
import { createTestDatabase } from './postgres.js';

export type DriverName = 'pglite' | 'postgres';
export const DRIVERS: DriverName[] = ['pglite', 'postgres'];

export const TEST_MASTER_KEY = 'test-master-secret-that-is-long-enough-0123456789';

export interface TestOrthId extends OrthId {
  /** Superuser URL of the database (postgres driver only). */
  databaseUrl?: string;
  dataDir: string;
}

export async function openTestDatabase(driver: DriverName): Promise<{ db: Database; url?: string }> {
  if (driver === 'pglite') return { db: await migratedPglite() };
  const url = await createTestDatabase();
  const db = await openPostgres(url);
  await migrate(db);
  return { db, url };
}

export interface TestOptions {
  /** Extra configuration, e.g. ORTHID_PUBLIC_URL for a server listening on a real port. */
  env?: Record<string, string>;
  clock?: Clock;
  /** Upload limits other than the defaults. */
  media?: AvatarLimits;
}

export async function createTestOrthId(driver: DriverName, options: TestOptions = {}): Promise<TestOrthId> {
  const dataDir = await mkdtemp(join(tmpdir(), 'orthid-test-'));
  const { db, url } = await openTestDatabase(driver);
  const config = loadConfig({
    ORTHID_DATA_DIR: dataDir,
    ORTHID_MASTER_KEY: TEST_MASTER_KEY,
    ...(url ? { ORTHID_DATABASE_URL: url } : {}),
    ORTHID_LOG_LEVEL: 'silent',
    ...options.env,
  });
  const { keystore } = await ManagedKeystore.init(config.keystorePath, TEST_MASTER_KEY);
  const objects = await openObjectStore(config.objectStore);
  const app = composeOrthId({
    config,
    clock: options.clock ?? systemClock,
    log: createLogger('silent'),
    db,
    keystore,
    objects,
    ...(options.media ? { media: options.media } : {}),
  });
  return {
    ...app,
    databaseUrl: url,
    dataDir,
    async close() {
      await app.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
