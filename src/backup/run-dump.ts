// Runs a dump for a configured deployment: picks the dump source (the backup connection on real
// PostgreSQL, a snapshot of the open embedded database otherwise) and the destinations. Shared by
// the CLI (in-process) and the running embedded server (through its control socket).
import { join } from 'node:path';
import type { Config } from '../config/config.js';
import type { Clock } from '../core/clock.js';
import { OrthIdError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { Database } from '../storage/db/database.js';
import type { DumpSource } from '../storage/db/dump-source.js';
import { openDumpSource } from '../storage/db/open-dump-source.js';
import type { ObjectStore } from '../storage/objects/object-store.js';
import { openObjectStore } from '../storage/objects/open-object-store.js';
import { type DumpEvent, type DumpKeystore, type DumpOptions, dumpBackupSet } from './dump-set.js';
import type { Manifest, ManifestAuditCheckpoint } from './manifest.js';

/** The embedded default's dump lock, beside the database in the data directory. */
export const BACKUP_LOCK_FILE = 'backup.lock';

export interface RunDumpParts {
  config: Config;
  /** The open embedded database (embedded default only; real PostgreSQL is reached by URL). */
  db?: Database | undefined;
  objects: ObjectStore;
  keystore: DumpKeystore;
  clock: Clock;
  /** Writes each tenant's audit checkpoint for the manifest (needs the tenants' keys). */
  auditCheckpoints?: (() => Promise<ManifestAuditCheckpoint[]>) | undefined;
}

async function openSource(parts: RunDumpParts): Promise<DumpSource> {
  const { config } = parts;
  if (config.database.kind === 'embedded') {
    if (!parts.db)
      throw new OrthIdError('internal.unexpected', 'An embedded dump needs the open embedded database.');
    return openDumpSource({
      embedded: parts.db,
      lockFile: join(config.dataDir, BACKUP_LOCK_FILE),
      clock: parts.clock,
    });
  }
  return openDumpSource({
    // The app login cannot read every tenant (row-level security); the owner or a replica login can.
    dumpUrl: config.backupDatabaseUrl ?? config.database.migrationUrl,
    // One lock per deployment, on the primary every replica shares.
    lockUrl: config.database.url,
  });
}

export async function runBackupDump(
  parts: RunDumpParts,
  options: DumpOptions,
  onEvent?: (event: DumpEvent) => void,
): Promise<Manifest> {
  const source = await openSource(parts);
  try {
    return await dumpBackupSet(
      {
        source,
        objects: parts.objects,
        objectStoreUrl: parts.config.objectStore,
        keystore: parts.keystore,
        openStore: openObjectStore,
        clock: parts.clock,
        region: parts.config.region,
        onEvent,
        auditCheckpoints: parts.auditCheckpoints,
      },
      options,
    );
  } finally {
    await source.close();
  }
}

/** One log line per step (progress ticks are for terminals); warnings at warn level. */
export function logDumpEvent(log: Logger, event: DumpEvent): void {
  if (event.step === 'part.progress') return;
  if (event.step === 'warning') log.warn({ step: 'backup.warning' }, event.message);
  else log.info({ ...event, step: `backup.${event.step}` }, `backup ${event.step.replace('.', ' ')}`);
}
