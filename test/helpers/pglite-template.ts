// Creating a PGlite database takes seconds; loading a prepared, migrated data directory takes
// under one. The test runner prepares the template once (ORTHID_TEST_PGLITE_TEMPLATE) for all files.
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { migrate } from '../../src/storage/db/migrate.js';
import { openPglite, type PgliteDriver } from '../../src/storage/db/pglite-driver.js';

export async function writePgliteTemplate(path: string): Promise<void> {
  const db = await openPglite('memory://');
  await migrate(db);
  const blob = await db.pglite.dumpDataDir('none');
  await writeFile(path, Buffer.from(await blob.arrayBuffer()));
  await db.close();
}

/** A fresh, migrated in-memory PGlite database. */
export async function migratedPglite(): Promise<PgliteDriver> {
  const template = process.env.ORTHID_TEST_PGLITE_TEMPLATE;
  if (template && existsSync(template)) {
    const db = await openPglite('memory://', { loadDataDir: new Blob([await readFile(template)]) });
    await migrate(db); // no-op unless migrations changed since the template was written
    return db;
  }
  const db = await openPglite('memory://');
  await migrate(db);
  return db;
}
