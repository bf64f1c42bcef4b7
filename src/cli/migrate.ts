// `orthid migrate`: apply pending schema migrations with the owner connection, then create or
// repair the application role and its grants (on every run, so a restored database is made whole).
import type { Command } from 'commander';
import { systemClock } from '../core/clock.js';
import { type MigrateReport, migrateDeployment } from '../ops/schema-upgrade.js';
import { action, cliConfig, print } from './context.js';

export function registerMigrateCommand(program: Command): void {
  program
    .command('migrate')
    .description('Apply pending database migrations (uses ORTHID_MIGRATION_DATABASE_URL when set)')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { json?: boolean }) => {
        const report = await migrateDeployment(cliConfig(), systemClock, {
          onApply: (m) => {
            if (!opts.json) process.stderr.write(`applying ${m.version} ${m.name}\n`);
          },
          onWarning: (message) => process.stderr.write(`warning: ${message}\n`),
        });
        print(report, Boolean(opts.json), (r: MigrateReport) =>
          [
            r.applied.length === 0
              ? 'The database schema is current.'
              : `Applied migrations ${r.applied.join(', ')}.`,
            ...(r.deploymentRecorded
              ? [`Recorded deployment ${r.deploymentRecorded} (this keystore's) in the database.`]
              : []),
            ...(r.repaired.length > 0
              ? [`Repaired the application role: ${r.repaired.join('; ')}.`]
              : ['The application role and its grants are as OrthID needs them.']),
          ].join('\n'),
        );
      }),
    );
}
