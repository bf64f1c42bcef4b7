// Picks the dump source a deployment's database calls for, so backup code never learns which
// driver it dumps: the embedded database open in this process, or a PostgreSQL by URL.
import type { Clock } from '../../core/clock.js';
import type { Database } from './database.js';
import type { DumpSource } from './dump-source.js';
import { pgliteDumpSource } from './pglite-dump.js';
import { openPostgresDumpSource, type PostgresDumpOptions } from './postgres-dump.js';

export type DumpSourceSpec =
  /**
   * The open embedded database; `lockFile` (in its data directory) keeps one dump at a time;
   * `clock` dates the snapshot.
   */
  { embedded: Database; lockFile: string; clock?: Clock } | PostgresDumpOptions;

export function openDumpSource(spec: DumpSourceSpec): Promise<DumpSource> {
  return 'embedded' in spec
    ? Promise.resolve(pgliteDumpSource(spec.embedded, spec.lockFile, spec.clock))
    : openPostgresDumpSource(spec);
}
