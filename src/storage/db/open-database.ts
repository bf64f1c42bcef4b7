// Opens the configured database, whichever driver it is: a PostgreSQL pool checked for a
// supported server, or the embedded PGlite data directory under its one-process lock.
import { join } from 'node:path';
import type { Config } from '../../config/config.js';
import type { Database } from './database.js';
import { requireSupportedServer } from './database-errors.js';
import { acquireEmbeddedLock } from './embedded-lock.js';
import { openPglite } from './pglite-driver.js';
import { describeDatabaseUrl, openPostgres } from './postgres-driver.js';

/** Opens the configured database. On the embedded default this takes the data directory's lock. */
export async function openDatabase(config: Config, purpose: 'app' | 'migrations' = 'app'): Promise<Database> {
  if (config.database.kind === 'postgres') {
    const url = purpose === 'migrations' ? config.database.migrationUrl : config.database.url;
    const db = await openPostgres(url, { max: purpose === 'migrations' ? 1 : 10 });
    try {
      await requireSupportedServer(db, describeDatabaseUrl(url));
    } catch (error) {
      await db.close();
      throw error;
    }
    return db;
  }
  const lock = await acquireEmbeddedLock(join(config.dataDir, 'pgdata.lock'));
  try {
    const db = await openPglite(config.database.dir);
    return {
      ...db,
      async close() {
        await db.close();
        await lock.release();
      },
    };
  } catch (error) {
    await lock.release();
    throw error;
  }
}
