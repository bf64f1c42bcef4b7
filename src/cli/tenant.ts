// `orthid tenant ...`: create and list tenants.
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import type { MfaPolicy } from '../identity/mfa-policy.js';
import type { ShredResult } from '../ops/key-rotation.js';
import type { Tenant } from '../tenancy/tenants.js';
import { action, operation, print } from './context.js';

type Listed = Tenant & { issuer: string };
type Brand = { displayName: string; brandColour: string; supportContact: string };

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
    .option('--sign-up <on|off>', 'self sign-up on the hosted pages (default off)')
    .option(
      '--sign-up-domains <domains>',
      'e-mail domains sign-up is open to (comma-separated; "" for any)',
      list,
    )
    .option('--display-name <name>', "the name pages, mails and the logo's alt text show")
    .option(
      '--brand-colour <#rrggbb|default>',
      'primary colour of buttons and links; needs 4.5:1 contrast with white',
    )
    .option(
      '--support-contact <email|https-url|none>',
      "where users get help, shown in the pages' footer and mails",
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
            signUp?: string;
            signUpDomains?: string[];
            displayName?: string;
            brandColour?: string;
            supportContact?: string;
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
            signUp: opts.signUp,
            signUpDomains: opts.signUpDomains,
            selfDelete: opts.selfDelete,
            displayName: opts.displayName,
            brandColour: opts.brandColour,
            supportContact: opts.supportContact,
          })) as {
            idTokenClaims: string;
            defaultLocale: string;
            mailFrom: string;
            mfa: MfaPolicy;
            signUp: string;
            signUpDomains: string[];
          } & Brand;
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
              }; sign-up ${result.signUp}${
                result.signUp === 'on' && result.signUpDomains.length
                  ? ` for ${result.signUpDomains.join(', ')}`
                  : ''
              }.\nBranding: name ${result.displayName}; colour ${result.brandColour}; support ${result.supportContact}.`,
          );
        },
      ),
    );

  const logo = tenant.command('logo').description("Set or remove a tenant's logo (shown on its pages)");
  logo
    .command('set')
    .description('Upload a PNG, JPEG or WebP logo (at most 512 KiB); it is re-encoded as WebP within 512×512')
    .requiredOption('--tenant <slug>', 'the tenant')
    .requiredOption('--file <path>', 'the image file')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { tenant: string; file: string; json?: boolean }) => {
        const bytes = await readFile(opts.file);
        const result = await operation('tenant.logo-set', {
          tenant: opts.tenant,
          imageBase64: bytes.toString('base64'),
        });
        print(
          result,
          Boolean(opts.json),
          () => `Logo of ${opts.tenant} set: ${result.width}×${result.height} WebP, ${result.size} bytes.`,
        );
      }),
    );
  logo
    .command('remove')
    .description("Remove the tenant's logo")
    .requiredOption('--tenant <slug>', 'the tenant')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { tenant: string; json?: boolean }) => {
        const result = await operation('tenant.logo-remove', { tenant: opts.tenant });
        print(result, Boolean(opts.json), () => `Logo of ${opts.tenant} removed.`);
      }),
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
            `Shredded tenant ${r.tenant}: destroyed root key(s) ${r.destroyedRootKeyIds.join(', ') || '(none held for it alone)'} on ${r.destroyedAt}; deleted ${r.objectsDeleted} stored object(s) (avatars, logo, data exports, audit archives).`,
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
