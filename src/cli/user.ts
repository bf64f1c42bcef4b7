// `orthid user ...`: manage a tenant's users from the command line.
import type { Command } from 'commander';
import type { User } from '../identity/users.js';
import { action, operation, print } from './context.js';

export function registerUserCommands(program: Command): void {
  const user = program.command('user').description("Manage a tenant's users");

  user
    .command('create')
    .description('Create a user (personal fields are stored encrypted)')
    .requiredOption('--tenant <slug>', 'tenant slug')
    .requiredOption('--email <email>', 'email address (unique in the tenant)')
    .option('--name <name>', 'full name')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { tenant: string; email: string; name?: string; json?: boolean }) => {
        const created = (await operation('user.create', opts)) as User;
        print(created, Boolean(opts.json), (u: User) => `Created user ${u.id} <${u.email}> in ${opts.tenant}`);
      }),
    );
}
