// `orthid migrate` and `orthid upgrade`: apply pending migrations with the owner connection,
// checked against and bound to the configured keystore's deployment, then create or repair the
// application role; an upgrade first makes sure a recent backup set exists, as the page says.
import { existsSync } from 'node:fs';
import { openBackupStores } from '../backup/destination.js';
import { listBackupSets } from '../backup/sets.js';
import type { Config } from '../config/config.js';
import type { Clock } from '../core/clock.js';
import { OrthIdError } from '../core/errors.js';
import { openKeystore } from '../crypto/open-keystore.js';
import { readRecordedDeployment } from '../storage/db/deployment-binding.js';
import { type Migration, migrate, migrationStatus } from '../storage/db/migrate.js';
import { openDatabase } from '../storage/db/open-database.js';

/** How long a backup set counts as the one taken before migrating. */
export const RECENT_BACKUP_HOURS = 24;

export interface MigrateProgress {
  onApply?: (migration: Migration) => void;
  onWarning?: (message: string) => void;
}

export interface MigrateReport {
  applied: number[];
  /** What was changed on the application role and its grants. */
  repaired: string[];
  /** The deployment id this run recorded in the database, when it bound it. */
  deploymentRecorded?: string;
}

/** Hours since the newest complete set, or undefined when there is none. */
export async function newestSetAgeHours(config: Config, clock: Clock): Promise<number | undefined> {
  const { dest, keystoreDest } = await openBackupStores(config.backup.dest, config.backup.keystoreDest);
  const newest = (await listBackupSets(dest, keystoreDest)).find((s) => s.status === 'complete');
  return newest ? (clock.now().getTime() - new Date(newest.time).getTime()) / 3_600_000 : undefined;
}

/**
 * The configured keystore's deployment id and root keys, which migrate checks the database against
 * and records its id in; undefined where no keystore is (a migrate run before `orthid keystore
 * init`). Looked up first, so that an absent keystore never makes a master secret be generated.
 */
async function migratingKeystore(
  config: Config,
): Promise<{ deploymentId: string; rootKeyIds: string[] } | undefined> {
  if (!existsSync(config.keystorePath)) return undefined;
  const { keystore } = await openKeystore(config, false);
  return {
    deploymentId: keystore.deploymentId,
    rootKeyIds: [...keystore.rootKeyIds(), ...keystore.destroyedKeys().map((k) => k.id)],
  };
}

/** The login `orthid start` connects as, which must be able to act as the application role. */
function serverLogin(config: Config): string[] {
  if (config.database.kind !== 'postgres') return [];
  try {
    const user = decodeURIComponent(new URL(config.database.url).username);
    return user ? [user] : [];
  } catch {
    return [];
  }
}

/** `orthid migrate`: warns when no recent backup set exists or no keystore binds the database. */
export async function migrateDeployment(
  config: Config,
  clock: Clock,
  progress: MigrateProgress = {},
): Promise<MigrateReport> {
  const warn = progress.onWarning ?? (() => {});
  const keystore = await migratingKeystore(config);
  const db = await openDatabase(config, 'migrations');
  try {
    const status = await migrationStatus(db);
    if (status.current > 0 && status.pending.length > 0) {
      const age = await newestSetAgeHours(config, clock);
      if (age === undefined || age > RECENT_BACKUP_HOURS) {
        warn(
          `no backup set from the last ${RECENT_BACKUP_HOURS} hours${age === undefined ? '' : ` (newest: ${age.toFixed(0)} h ago)`}; \`orthid upgrade\` takes one before migrating.`,
        );
      }
    }
    let repaired: string[] = [];
    let recorded: string | undefined;
    const applied = await migrate(db, progress.onApply, {
      members: serverLogin(config),
      onRepair: (changes) => {
        repaired = changes;
      },
      onWarning: warn,
      ...keystore,
      onBind: (binding) => {
        recorded = binding.id;
      },
    });
    if (!keystore && !(await readRecordedDeployment(db))) {
      warn(
        `no keystore at ${config.keystorePath}, so the database is not bound to a deployment yet and orthid start refuses it; run orthid keystore init (or import), then orthid migrate again.`,
      );
    }
    return { applied, repaired, ...(recorded ? { deploymentRecorded: recorded } : {}) };
  } finally {
    await db.close();
  }
}

export interface UpgradeReport {
  /** The set that counts as the pre-upgrade backup; null when nothing was pending. */
  backup: string | null;
  applied: number[];
}

/**
 * `orthid upgrade`: nothing when the schema is current; else a complete set at most `maxAgeHours`
 * old counts as the backup, or `takeBackup` takes one (refused up front when it could not be
 * encrypted), then the migrations are applied.
 */
export async function upgradeDeployment(
  config: Config,
  clock: Clock,
  options: { maxAgeHours: number; takeBackup: () => Promise<string> } & MigrateProgress,
): Promise<UpgradeReport> {
  if (!Number.isFinite(options.maxAgeHours) || options.maxAgeHours < 0) {
    throw new OrthIdError('request.invalid', '--max-backup-age must be a number of hours.');
  }
  const db = await openDatabase(config, 'migrations');
  let pending: number;
  try {
    pending = (await migrationStatus(db)).pending.length;
  } finally {
    await db.close();
  }
  if (pending === 0) return { backup: null, applied: [] };
  const age = await newestSetAgeHours(config, clock);
  let backup: string;
  if (age !== undefined && age <= options.maxAgeHours) {
    backup = `existing set from ${age.toFixed(1)} h ago`;
  } else {
    if (config.backup.ageRecipients.length === 0) {
      throw new OrthIdError(
        'backup.no_recipients',
        `No complete backup set is newer than ${options.maxAgeHours} h, and none can be taken: set ORTHID_BACKUP_AGE_RECIPIENTS (or take one with orthid backup dump --encrypt -r age1…) and run orthid upgrade again. Nothing was migrated.`,
      );
    }
    backup = await options.takeBackup();
  }
  const keystore = await migratingKeystore(config);
  const owner = await openDatabase(config, 'migrations');
  try {
    return { backup, applied: await migrate(owner, options.onApply, keystore ?? {}) };
  } finally {
    await owner.close();
  }
}
