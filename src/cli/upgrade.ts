// `orthid upgrade`: take a backup before every upgrade, as the page says, then migrate. A complete
// set newer than --max-backup-age counts as that backup; otherwise one is taken now, encrypted.
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { openBackupStores } from '../backup/destination.js';
import { listBackupSets } from '../backup/sets.js';
import type { Config } from '../config/config.js';
import { systemClock } from '../core/clock.js';
import { OrthIdError } from '../core/errors.js';
import { openKeystore } from '../crypto/open-keystore.js';
import { migrate, migrationStatus } from '../storage/db/migrate.js';
import { openDatabase } from '../storage/db/open-database.js';
import { dump } from './backup.js';
import { action, cliConfig, print } from './context.js';

/** Hours since the newest complete set, or undefined when there is none. */
export async function newestSetAgeHours(now: Date = systemClock.now()): Promise<number | undefined> {
  const { backup } = cliConfig();
  const { dest, keystoreDest } = await openBackupStores(backup.dest, backup.keystoreDest);
  const newest = (await listBackupSets(dest, keystoreDest)).find((s) => s.status === 'complete');
  return newest ? (now.getTime() - new Date(newest.time).getTime()) / 3_600_000 : undefined;
}

/**
 * The configured keystore's deployment id and root keys, which migrate checks the database against
 * and records its id in; undefined where no keystore is (a migrate run before `orthid keystore
 * init`). Looked up first, so that an absent keystore never makes a master secret be generated.
 */
export async function migratingKeystore(
  config: Config,
): Promise<{ deploymentId: string; rootKeyIds: string[] } | undefined> {
  if (!existsSync(config.keystorePath)) return undefined;
  const { keystore } = await openKeystore(config, false);
  return {
    deploymentId: keystore.deploymentId,
    rootKeyIds: [...keystore.rootKeyIds(), ...keystore.destroyedKeys().map((k) => k.id)],
  };
}

export function registerUpgradeCommand(program: Command): void {
  program
    .command('upgrade')
    .description('Back up (unless a recent complete set exists), then apply pending migrations')
    .option(
      '--max-backup-age <hours>',
      'a complete set at most this old counts as the pre-upgrade backup',
      '24',
    )
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { maxBackupAge: string; json?: boolean }) => {
        const maxAge = Number(opts.maxBackupAge);
        if (!Number.isFinite(maxAge) || maxAge < 0) {
          throw new OrthIdError('request.invalid', '--max-backup-age must be a number of hours.');
        }
        const config = cliConfig();
        const db = await openDatabase(config, 'migrations');
        let pending: number;
        try {
          pending = (await migrationStatus(db)).pending.length;
        } finally {
          await db.close();
        }
        if (pending === 0) {
          print(
            { backup: null, applied: [] },
            Boolean(opts.json),
            () => 'The database schema is current; nothing to upgrade.',
          );
          return;
        }
        const age = await newestSetAgeHours();
        let backup: string;
        if (age !== undefined && age <= maxAge) {
          backup = `existing set from ${age.toFixed(1)} h ago`;
        } else {
          if (config.backup.ageRecipients.length === 0) {
            throw new OrthIdError(
              'backup.no_recipients',
              `No complete backup set is newer than ${maxAge} h, and none can be taken: set ORTHID_BACKUP_AGE_RECIPIENTS (or take one with orthid backup dump --encrypt -r age1…) and run orthid upgrade again. Nothing was migrated.`,
            );
          }
          process.stderr.write('Taking a backup before the upgrade.\n');
          backup = (await dump({ encrypt: true, upload: config.backup.destConfigured })).setId;
        }
        const keystore = await migratingKeystore(config);
        const owner = await openDatabase(config, 'migrations');
        try {
          const applied = await migrate(
            owner,
            (m) => process.stderr.write(`applying ${m.version} ${m.name}\n`),
            keystore ?? {},
          );
          print(
            { backup, applied },
            Boolean(opts.json),
            () => `Backed up (${backup}); applied migrations ${applied.join(', ')}.`,
          );
        } finally {
          await owner.close();
        }
      }),
    );
}
