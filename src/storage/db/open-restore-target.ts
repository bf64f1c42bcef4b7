// Picks the restore target a request names, so callers never learn which driver restores it:
// a PostgreSQL database by URL, or the embedded data directory; and a drill's throwaway target.
import { randomBytes } from 'node:crypto';
import { embeddedRestoreTarget } from './pglite-restore-target.js';
import { databaseUrlFor, postgresRestoreTarget } from './postgres-restore-target.js';
import type { RestoreTarget } from './restore-target.js';

export type RestoreTargetSpec =
  /** A PostgreSQL database (created when missing); `clean` replaces one that is not empty. */
  | { postgresUrl: string; clean?: boolean }
  /** The embedded database's data directory. */
  | { embeddedDir: string };

export function openRestoreTarget(spec: RestoreTargetSpec): RestoreTarget {
  return 'postgresUrl' in spec
    ? postgresRestoreTarget(spec.postgresUrl, { clean: spec.clean ?? false })
    : embeddedRestoreTarget(spec.embeddedDir);
}

/**
 * A target that exists only for a drill: a new database on `serverUrl`, or an in-memory embedded
 * database when no server is given. discard() removes it.
 */
export function throwawayRestoreTarget(serverUrl: string | undefined): RestoreTarget {
  if (serverUrl === undefined) return embeddedRestoreTarget('memory://');
  const name = `orthid_drill_${randomBytes(6).toString('hex')}`;
  return postgresRestoreTarget(databaseUrlFor(serverUrl, name), { throwaway: true });
}
