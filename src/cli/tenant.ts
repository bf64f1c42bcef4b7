// `orthid tenant ...`: create and list tenants.
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import type { MfaPolicy } from '../identity/mfa-policy.js';
import type { ShredResult } from '../ops/key-rotation.js';
import type { Tenant } from '../tenancy/tenants.js';
import { action, operation, print } from './context.js';

type Listed = Tenant & { issuer: string };

/** A comma-separated list; an empty value is an empty list (it clears the setting). */
function list(value: string): string[] {
  return value
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);
}

export function registerTenantCommands(program: Command): void {
  const tenant = program
    .command('tenant')
    .description('Manage tenants (each has its own issuer, users, keys and audit log)');

  tenant
    .command('create')
    .description('Create a tenant with its own keys and audit log')
    .argument('<slug>', 'URL-safe name: lowercase letters, digits and dashes')
    .option('--name <displayName>', 'display name (default: the slug)')
    .option(
      '--custody <uri>',
      "bring your own key: an awskms: key or a pkcs11: object whose root keys wrap this tenant's keys",
    )
    .option('--json', 'print JSON')
    .action(
      action(async (slug: string, opts: { name?: string; custody?: string; json?: boolean }) => {
        const created = (await operation('tenant.create', {
          slug,
          displayName: opts.name,
          custody: opts.custody,
        })) as Listed;
        print(
          created,
          Boolean(opts.json),
          (t: Listed) => `Created tenant ${t.slug} (${t.id})\nIssuer: ${t.issuer}`,
        );
      }),
    );

  tenant
    .command('configure')
    .description("Change a tenant's OpenID Connect and MFA policy (prints it when given no option)")
    .argument('<slug>', 'the tenant')
    .option(
      '--id-token-claims <on|off>',
      'on (default): the claims of granted scopes (name, e-mail, phone) are in ID tokens as well as userinfo; off: userinfo only',
    )
    .option(
      '--mfa <off|optional|required>',
      'second factor at sign-in: off, optional (offered, skippable) or required (users without one enrol at their next sign-in)',
    )
    .option(
      '--mfa-organisations <names>',
      'with --mfa required: only members of these organisations (comma-separated names or ids; "" for everyone)',
      list,
    )
    .option(
      '--mfa-roles <names>',
      'with --mfa required: only holders of these roles (comma-separated names or ids; "" for everyone)',
      list,
    )
    .option(
      '--mail-from <sender>',
      'sender of the tenant\'s mail, "Name <address>"; default: the deployment\'s (ORTHID_MAIL_FROM)',
    )
    .option(
      '--default-locale <en|de|fr>',
      "the hosted pages' language when neither the request's ui_locales nor the browser's Accept-Language names a supported one (default en)",
    )
    .option(
      '--self-delete <on|off>',
      'on: users may delete their own account on the account pages (/t/<slug>/account/data); off (default): only an administrator can',
    )
    .option('--json', 'print JSON')
    .action(
      action(
        async (
          slug: string,
          opts: {
            idTokenClaims?: string;
            selfDelete?: string;
            defaultLocale?: string;
            mailFrom?: string;
            mfa?: string;
            mfaOrganisations?: string[];
            mfaRoles?: string[];
            json?: boolean;
          },
        ) => {
          const result = (await operation('tenant.configure', {
            slug,
            idTokenClaims: opts.idTokenClaims,
            defaultLocale: opts.defaultLocale,
            mailFrom: opts.mailFrom,
            mfa: opts.mfa,
            mfaOrganisations: opts.mfaOrganisations,
            mfaRoles: opts.mfaRoles,
            selfDelete: opts.selfDelete,
          })) as { idTokenClaims: string; defaultLocale: string; mailFrom: string; mfa: MfaPolicy };
          const scope = [
            ...(result.mfa.organisations.length
              ? [`organisations ${result.mfa.organisations.join(', ')}`]
              : []),
            ...(result.mfa.roles.length ? [`roles ${result.mfa.roles.join(', ')}`] : []),
          ];
          print(
            result,
            Boolean(opts.json),
            () =>
              `Tenant ${slug}: claims in ID tokens ${result.idTokenClaims}; default language ${result.defaultLocale}; mail from ${result.mailFrom}; MFA ${result.mfa.mode}${
                result.mfa.mode === 'required' && scope.length ? ` for members of ${scope.join(' or ')}` : ''
              }.`,
          );
        },
      ),
    );

  tenant
    .command('list')
    .description('List tenants')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { json?: boolean }) => {
        const tenants = (await operation('tenant.list', {})) as Listed[];
        print(tenants, Boolean(opts.json), (list: Listed[]) =>
          list.length === 0
            ? 'No tenants yet. Create one with: orthid tenant create SLUG'
            : list.map((t) => `${t.slug.padEnd(24)} ${t.id}  ${t.status.padEnd(8)} ${t.issuer}`).join('\n'),
        );
      }),
    );

  tenant
    .command('shred')
    .description(
      'Crypto-shred a tenant: destroy its keys for good, so its personal data in the database and in every older backup can never be decrypted',
    )
    .argument('<slug>', 'the tenant to shred')
    .option('--confirm <slug>', 'repeat the slug to confirm without a prompt')
    .option('--json', 'print JSON')
    .action(
      action(async (slug: string, opts: { confirm?: string; json?: boolean }) => {
        const confirm = opts.confirm ?? (await askToConfirm(slug));
        const result = (await operation('tenant.shred', { tenant: slug, confirm })) as ShredResult;
        print(
          result,
          Boolean(opts.json),
          (r: ShredResult) =>
            `Shredded tenant ${r.tenant}: destroyed root key(s) ${r.destroyedRootKeyIds.join(', ') || '(none held for it alone)'} on ${r.destroyedAt}.`,
        );
      }),
    );
}

/** Asks for the slug on a terminal; without one, the operation refuses and says how to confirm. */
async function askToConfirm(slug: string): Promise<string | undefined> {
  if (!process.stdin.isTTY) return undefined;
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return (
      await rl.question(
        `This destroys tenant ${slug}'s keys for good: its users and audit details become unreadable, in every backup too.\nType the slug to confirm: `,
      )
    ).trim();
  } finally {
    rl.close();
  }
}
