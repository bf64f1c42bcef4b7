// A data directory for a test whose `orthid start` on the embedded default is a fixture, not
// the subject. A fresh PGlite database runs initdb in WebAssembly: 4-6 s of CPU, most of an
// embedded start, paid again by every such test. The runner runs initdb once per run
// (ORTHID_TEST_PGDATA_TEMPLATE) and these directories get a copy of its pgdata: the start still
// creates the keystore, applies every migration and records the binding, as on a first run.
// Tests of the first run itself (embedded-start, the restore and binding tests) use empty ones.
import { existsSync } from 'node:fs';
import { cp, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openPglite } from '../../src/storage/db/pglite-driver.js';

/** Runs initdb into `dir` (a pgdata directory, not yet there) and closes it. */
export async function writePgdataTemplate(dir: string): Promise<void> {
  const db = await openPglite(dir);
  await db.close();
}

/**
 * A new temporary data directory for `orthid start`, with an initialised, unmigrated pgdata when
 * the runner prepared one; an empty one otherwise (the start then runs initdb itself).
 */
export async function embeddedDataDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const template = process.env.ORTHID_TEST_PGDATA_TEMPLATE;
  if (template && existsSync(template)) await cp(template, join(dir, 'pgdata'), { recursive: true });
  return dir;
}
