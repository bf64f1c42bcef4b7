// `orthid user ...`: manage a tenant's users from the command line.
import type { Command } from 'commander';
import { OrthIdError } from '../core/errors.js';
import type { InvitationView as InvitationEntry } from '../identity/invitations.js';
import type { Factor } from '../identity/mfa.js';
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
    .option(
      '--admin',
      'also make them an administrator (admin API and console; of every tenant with --tenant system)',
    )
    .option('--json', 'print JSON')
    .action(
      action(
        async (opts: {
          tenant: string;
          email: string;
          name?: string;
          passwordStdin?: boolean;
          admin?: boolean;
          json?: boolean;
        }) => {
          const password = opts.passwordStdin ? await readPasswordFromStdin() : undefined;
          const created = (await operation('user.create', {
            tenant: opts.tenant,
            email: opts.email,
            name: opts.name,
            password,
            ...(opts.admin ? { admin: true } : {}),
          })) as User;
          print(
            created,
            Boolean(opts.json),
            (u: User) =>
              `Created user ${u.id} <${u.email}> in ${opts.tenant}${opts.admin ? ' (administrator)' : ''}`,
          );
        },
      ),
    );

  user
    .command('invite')
    .description(
      'Invite an address: a single-use link, valid for 7 days, is mailed to it; accepting creates a verified user (and the membership)',
    )
    .requiredOption('--tenant <slug>', 'tenant slug')
    .requiredOption('--email <email>', 'the address to invite (must not have an account yet)')
    .option('--organisation <org>', 'an organisation (name or id) the new user joins')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { tenant: string; email: string; organisation?: string; json?: boolean }) => {
        const invited = (await operation('user.invite', {
          tenant: opts.tenant,
          email: opts.email,
          organisation: opts.organisation,
        })) as { id: string; organisationId: string | null; expiresAt: string };
        print(
          invited,
          Boolean(opts.json),
          () => `Invitation ${invited.id} mailed; its link works once, until ${invited.expiresAt}`,
        );
      }),
    );

  user
    .command('invitations')
    .description(
      'List invitations, newest first: address, organisation, who created them, and whether pending, accepted, expired or revoked',
    )
    .requiredOption('--tenant <slug>', 'tenant slug')
    .option('--limit <n>', 'how many (1-200, default 50)')
    .option('--after <id>', 'continue after this invitation (the `next` a previous page printed)')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { tenant: string; limit?: string; after?: string; json?: boolean }) => {
        const page = (await operation('user.invitations', {
          tenant: opts.tenant,
          ...(opts.limit === undefined ? {} : { limit: Number(opts.limit) }),
          ...(opts.after ? { after: opts.after } : {}),
        })) as { items: InvitationEntry[]; next: string | null };
        print(page, Boolean(opts.json), () =>
          [
            ...(page.items.length === 0
              ? ['No invitation.']
              : page.items.map(
                  (i) =>
                    `${i.id}  ${i.status.padEnd(8)} ${i.email}  ${i.organisationName ?? i.organisationId ?? '-'}  by ${i.createdBy ?? '?'}  created ${i.createdAt}  expires ${i.expiresAt}`,
                )),
            ...(page.next ? [`More: --after ${page.next}`] : []),
          ].join('\n'),
        );
      }),
    );

  user
    .command('uninvite')
    .description(
      'Revoke an invitation: its link is refused from now on (an accepted one cannot be; remove the user instead)',
    )
    .requiredOption('--tenant <slug>', 'tenant slug')
    .requiredOption('--id <invitationId>', 'the invitation, as `orthid user invitations` lists it')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { tenant: string; id: string; json?: boolean }) => {
        const revoked = (await operation('user.revoke-invitation', {
          tenant: opts.tenant,
          id: opts.id,
        })) as InvitationEntry;
        print(
          revoked,
          Boolean(opts.json),
          () => `Invitation ${revoked.id} revoked; its link no longer works`,
        );
      }),
    );

  user
    .command('factors')
    .description("List a user's second factors (never their secrets)")
    .requiredOption('--tenant <slug>', 'tenant slug')
    .requiredOption('--id <userId>', 'the user')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { tenant: string; id: string; json?: boolean }) => {
        const listed = (await operation('user.factors', { tenant: opts.tenant, id: opts.id })) as {
          factors: Factor[];
          recoveryCodesLeft: number;
          mustReenrol: boolean;
        };
        print(listed, Boolean(opts.json), () =>
          [
            ...(listed.factors.length === 0
              ? ['No second factor.']
              : listed.factors.map(
                  (f) =>
                    `${f.id}  ${f.kind.padEnd(8)} created ${f.createdAt}  last used ${f.lastUsedAt ?? 'never'}`,
                )),
            `Recovery codes left: ${listed.recoveryCodesLeft}${listed.mustReenrol ? '; must enrol again at the next sign-in' : ''}`,
          ].join('\n'),
        );
      }),
    );

  user
    .command('remove-factor')
    .description("Remove a user's lost second factor (the last one takes the recovery codes along)")
    .requiredOption('--tenant <slug>', 'tenant slug')
    .requiredOption('--id <userId>', 'the user')
    .requiredOption('--factor <factorId>', 'the factor, as `orthid user factors` lists it')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { tenant: string; id: string; factor: string; json?: boolean }) => {
        const removed = (await operation('user.remove-factor', {
          tenant: opts.tenant,
          id: opts.id,
          factor: opts.factor,
        })) as Factor;
        print(removed, Boolean(opts.json), () => `Removed ${removed.kind} factor ${removed.id}`);
      }),
    );

  user
    .command('reenrol')
    .description(
      'Require re-enrolment: remove every factor and recovery code; the user sets up a new factor at the next sign-in',
    )
    .requiredOption('--tenant <slug>', 'tenant slug')
    .requiredOption('--id <userId>', 'the user')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { tenant: string; id: string; json?: boolean }) => {
        const result = (await operation('user.reenrol', { tenant: opts.tenant, id: opts.id })) as {
          factorsRemoved: number;
        };
        print(
          result,
          Boolean(opts.json),
          () => `Removed ${result.factorsRemoved} factor(s); the user enrols again at the next sign-in`,
        );
      }),
    );
}
