// `orthid user ...`: manage a tenant's users from the command line.
import type { Command } from 'commander';
import { OrthIdError } from '../core/errors.js';
import type { User } from '../identity/users.js';
import { action, operation, print } from './context.js';

/**
 * Reads a password from standard input, removing one trailing newline (as `echo` or a file adds)
 * and nothing else: spaces are part of a passphrase.
 */
export async function readPasswordFromStdin(input: NodeJS.ReadableStream = process.stdin): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of input)
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  const password = Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
  if (password === '') {
    throw new OrthIdError(
      'request.invalid',
      'No password on standard input: pipe it in, e.g. from a password manager or a file.',
      {
        details: { field: 'password' },
      },
    );
  }
  return password;
}

export function registerUserCommands(program: Command): void {
  const user = program.command('user').description("Manage a tenant's users");

  user
    .command('create')
    .description('Create a user (personal fields are stored encrypted, a password only as an argon2id hash)')
    .requiredOption('--tenant <slug>', 'tenant slug')
    .requiredOption('--email <email>', 'email address (unique in the tenant)')
    .option('--name <name>', 'full name')
    .option('--password-stdin', 'read the password from standard input (one trailing newline is removed)')
    .option('--json', 'print JSON')
    .action(
      action(
        async (opts: {
          tenant: string;
          email: string;
          name?: string;
          passwordStdin?: boolean;
          json?: boolean;
        }) => {
          const password = opts.passwordStdin ? await readPasswordFromStdin() : undefined;
          const created = (await operation('user.create', {
            tenant: opts.tenant,
            email: opts.email,
            name: opts.name,
            password,
          })) as User;
          print(
            created,
            Boolean(opts.json),
            (u: User) => `Created user ${u.id} <${u.email}> in ${opts.tenant}`,
          );
        },
      ),
    );
}
