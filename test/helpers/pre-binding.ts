// A deployment as the release before the deployment binding left it: every migration but 0009
// applied the way migrate applied them (the later ones too, since the bootstrap below is today's
// and writes their tables, such as the canary's second factor), a bootstrapped system tenant and the tenant acme, and a
// keystore — but no deployment id recorded in the database. For upgrade tests on both drivers.
import { join } from 'node:path';
import type { Config } from '../../src/config/config.js';
import { systemClock } from '../../src/core/clock.js';
import { createLogger } from '../../src/core/logger.js';
import { ManagedKeystore } from '../../src/crypto/managed-keystore.js';
import { composeOrthId } from '../../src/main.js';
import { ADMIN_CREDENTIALS_FILE, bootstrap } from '../../src/ops/bootstrap.js';
import { repairAppRoleGrants } from '../../src/storage/db/app-role.js';
import type { Database } from '../../src/storage/db/database.js';
import { loadMigrations } from '../../src/storage/db/migrate.js';
import { openObjectStore } from '../../src/storage/objects/open-object-store.js';

/** The schema the binding arrived with. */
export const BINDING_MIGRATION = 9;

/** Sets up `db` and the keystore of `config` as before the binding; closes `db`; returns the keystore's id. */
export async function preBindingDeployment(
  db: Database,
  config: Config,
  masterSecret: string,
): Promise<string> {
  await db.ownerTransaction((tx) =>
    tx.exec(`CREATE TABLE orthid_migrations (
      version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now())`),
  );
  for (const m of (await loadMigrations()).filter((m) => m.version !== BINDING_MIGRATION)) {
    await db.ownerTransaction(async (tx) => {
      await tx.exec(m.sql);
      await tx.query('INSERT INTO orthid_migrations (version, name, checksum) VALUES ($1, $2, $3)', [
        m.version,
        m.name,
        m.checksum,
      ]);
    });
  }
  // What migrate does after every run: the application role's grants on the tables just made.
  await db.ownerTransaction((tx) => repairAppRoleGrants(tx));
  const { keystore } = await ManagedKeystore.init(config.keystorePath, masterSecret);
  const app = composeOrthId({
    config,
    clock: systemClock,
    log: createLogger('silent'),
    db,
    keystore,
    objects: await openObjectStore(config.objectStore),
  });
  try {
    await bootstrap(app, join(config.dataDir, ADMIN_CREDENTIALS_FILE));
    await app.tenants.create({ slug: 'acme', displayName: 'Acme', actor: 'cli' });
  } finally {
    await app.close();
  }
  return keystore.deploymentId;
}
