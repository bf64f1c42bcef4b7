// The embedded database (PGlite) as a restore target: a data directory, or an in-memory instance
// for a drill. A data directory is restored into a staging directory beside it, which takes its
// place only once the whole dump has loaded (the directory it replaces waits beside it until the
// restore is released); embedded sets are plain SQL, which PGlite runs itself.
import { randomBytes } from 'node:crypto';
import { rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { OrthIdError } from '../../core/errors.js';
import { CREATE_APP_ROLE_IF_MISSING } from './app-role.queries.js';
import type { Database } from './database.js';
import { openPglite, type PgliteDriver } from './pglite-driver.js';
import type { RestoreTarget } from './restore-target.js';
import { analyzeDatabase, publicTableCount, RESET_SESSION } from './restore-target.queries.js';

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Loads a plain-SQL dump (an embedded set) into an empty PGlite; the whole script runs as one. */
async function loadSql(db: PgliteDriver, dump: Readable): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of dump) chunks.push(chunk as Buffer);
  await db.pglite.exec(CREATE_APP_ROLE_IF_MISSING);
  await db.pglite.exec(Buffer.concat(chunks).toString('utf8'));
  await db.pglite.exec(RESET_SESSION);
}

/** The embedded database in `dir` as a restore target; `memory://` is a throwaway in-memory one. */
export function embeddedRestoreTarget(dir: string | 'memory://'): RestoreTarget {
  const memory = dir === 'memory://';
  const suffix = randomBytes(4).toString('hex');
  const staging = memory ? undefined : join(dirname(dir), `.${basename(dir)}.restore-${suffix}`);
  const previous = memory ? undefined : join(dirname(dir), `.${basename(dir)}.previous-${suffix}`);
  let loaded: PgliteDriver | undefined;
  let promoted = false;
  let released = false;
  let previousAside = false;
  let opened: Database | undefined;
  return {
    kind: 'embedded database',
    description: memory ? 'in-memory embedded database' : dir,
    async inspect(dump) {
      if (dump.format !== 'plain') {
        throw new OrthIdError(
          'backup.format_unsupported',
          `The set ${dump.setId} holds a PostgreSQL custom-format dump, which restores into PostgreSQL only: pass --database-url.`,
        );
      }
      if (memory || !(await exists(dir))) return { resumed: false };
      const db = await openPglite(dir);
      const tables = await publicTableCount({ query: (sql, params) => db.ownerQuery(sql, params) }).finally(
        () => db.close(),
      );
      if (tables > 0) {
        throw new OrthIdError(
          'backup.target_not_empty',
          `The embedded database in ${dir} is not empty. Restore into a new data directory (ORTHID_DATA_DIR).`,
        );
      }
      return { resumed: false };
    },
    async load(_format, openDump) {
      loaded = await openPglite(staging ?? 'memory://');
      const dump = await openDump();
      await loadSql(loaded, dump).finally(() => dump.destroy());
    },
    async promote() {
      if (!loaded) throw new OrthIdError('internal.unexpected', 'Nothing was loaded to promote.');
      if (staging && previous) {
        await loaded.close();
        loaded = undefined;
        // The target was found empty (or absent) by inspect; it waits aside until release().
        if (await exists(dir)) {
          await rename(dir, previous);
          previousAside = true;
        }
        await rename(staging, dir).catch(async (error) => {
          if (previousAside) await rename(previous, dir);
          previousAside = false;
          throw error;
        });
      }
      promoted = true;
    },
    async release() {
      // Released first: a removal that fails must not put the previous directory back.
      released = true;
      if (previous && previousAside) await rm(previous, { recursive: true, force: true });
      previousAside = false;
    },
    async open() {
      if (memory) {
        if (!loaded || !promoted)
          throw new OrthIdError('internal.unexpected', 'The in-memory target holds no restore.');
        return loaded;
      }
      opened ??= await openPglite(dir);
      return opened;
    },
    async analyze() {
      const db = await this.open(1);
      await analyzeDatabase({ query: (sql, params) => db.ownerQuery(sql, params) });
    },
    async close() {
      const db = opened;
      opened = undefined;
      await db?.close();
      if (memory) {
        await loaded?.close();
        loaded = undefined;
      }
    },
    async discard() {
      await this.close().catch(() => {});
      await loaded?.close().catch(() => {});
      loaded = undefined;
      if (staging) await rm(staging, { recursive: true, force: true });
      if (promoted && !released && !memory && previous) {
        // The restore failed after the staged directory took the target's place.
        await rm(dir, { recursive: true, force: true });
        if (previousAside) await rename(previous, dir);
        previousAside = false;
        promoted = false;
      }
    },
  };
}
