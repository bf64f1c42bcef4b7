// `orthid db`: what the database needs from its administrator. `roles --sql` prints the roles
// OrthID runs as, for a DBA who will not give OrthID's owner login CREATEROLE.
import type { Command } from 'commander';
import { ROLES_SCRIPT } from '../storage/db/app-role.queries.js';
import { action } from './context.js';

export function registerDbCommands(program: Command): void {
  const db = program.command('db').description('What the PostgreSQL administrator sets up for OrthID');
  db.command('roles')
    .description('Print the SQL that creates the application role orthid_app, with a template for each login')
    .option('--sql', 'print it as SQL for psql (the only format)')
    .action(
      action(async () => {
        process.stdout.write(ROLES_SCRIPT);
      }),
    );
}
