// `orthid migrate`: apply pending schema migrations with the owner connection, then create or
// repair the application role and its grants (on every run, so a restored database is made whole).
import type { Command } from 'commander';
import type { Config } from '../config/config.js';
import { readRecordedDeployment } from '../storage/db/deployment-binding.js';
import { migrate, migrationStatus } from '../storage/db/migrate.js';
import { openDatabase } from '../storage/db/open-database.js';
import { action, cliConfig, print } from './context.js';
import { migratingKeystore, newestSetAgeHours } from './upgrade.js';

export function registerMigrateCommand(program: Command): void {
  program
    .command('migrate')
    .description('Apply pending database migrations (uses ORTHID_MIGRATION_DATABASE_URL when set)')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { json?: boolean }) => {
        const config = cliConfig();
        const keystore = await migratingKeystore(config);
        const db = await openDatabase(config, 'migrations');
        try {
          const status = await migrationStatus(db);
          if (status.current > 0 && status.pending.length > 0) {
            const age = await newestSetAgeHours();
            if (age === undefined || age > 24) {
              process.stderr.write(
                `warning: no backup set from the last 24 hours${age === undefined ? '' : ` (newest: ${age.toFixed(0)} h ago)`}; \`orthid upgrade\` takes one before migrating.\n`,
              );
            }
          }
          let repaired: string[] = [];
          let recorded: string | undefined;
          const applied = await migrate(
            db,
            (m) => {
              if (!opts.json) process.stderr.write(`applying ${m.version} ${m.name}\n`);
            },
            {
              members: serverLogin(config),
              onRepair: (changes) => {
                repaired = changes;
              },
              onWarning: (message) => process.stderr.write(`warning: ${message}\n`),
              ...keystore,
              onBind: (binding) => {
                recorded = binding.id;
              },
            },
          );
          if (!keystore && !(await readRecordedDeployment(db))) {
            process.stderr.write(
              `warning: no keystore at ${config.keystorePath}, so the database is not bound to a deployment yet and orthid start refuses it; run orthid keystore init (or import), then orthid migrate again.\n`,
            );
          }
          print(
            { applied, repaired, ...(recorded ? { deploymentRecorded: recorded } : {}) },
            Boolean(opts.json),
            () =>
              [
                applied.length === 0
                  ? 'The database schema is current.'
                  : `Applied migrations ${applied.join(', ')}.`,
                ...(recorded ? [`Recorded deployment ${recorded} (this keystore's) in the database.`] : []),
                ...(repaired.length > 0
                  ? [`Repaired the application role: ${repaired.join('; ')}.`]
                  : ['The application role and its grants are as OrthID needs them.']),
              ].join('\n'),
          );
        } finally {
          await db.close();
        }
      }),
    );
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
