// `orthid migrate`: apply pending schema migrations with the owner connection.
import type { Command } from 'commander';
import { openDatabase } from '../main.js';
import { migrate } from '../storage/db/migrate.js';
import { action, cliConfig, print } from './context.js';

export function registerMigrateCommand(program: Command): void {
  program
    .command('migrate')
    .description('Apply pending database migrations (uses ORTHID_MIGRATION_DATABASE_URL when set)')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { json?: boolean }) => {
        const db = await openDatabase(cliConfig(), 'migrations');
        try {
          const applied = await migrate(db, (m) => {
            if (!opts.json) process.stderr.write(`applying ${m.version} ${m.name}\n`);
          });
          print({ applied }, Boolean(opts.json), () =>
            applied.length === 0 ? 'The database schema is current.' : `Applied migrations ${applied.join(', ')}.`,
          );
        } finally {
          await db.close();
        }
      }),
    );
}
