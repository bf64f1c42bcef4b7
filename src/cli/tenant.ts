// `orthid tenant ...`: create and list tenants.
import type { Command } from 'commander';
import type { Tenant } from '../tenancy/tenants.js';
import { action, operation, print } from './context.js';

type Listed = Tenant & { issuer: string };

export function registerTenantCommands(program: Command): void {
  const tenant = program
    .command('tenant')
    .description('Manage tenants (each has its own issuer, users, keys and audit log)');

  tenant
    .command('create')
    .description('Create a tenant with its own keys and audit log')
    .argument('<slug>', 'URL-safe name: lowercase letters, digits and dashes')
    .option('--name <displayName>', 'display name (default: the slug)')
    .option('--json', 'print JSON')
    .action(
      action(async (slug: string, opts: { name?: string; json?: boolean }) => {
        const created = (await operation('tenant.create', { slug, displayName: opts.name })) as Listed;
        print(
          created,
          Boolean(opts.json),
          (t: Listed) => `Created tenant ${t.slug} (${t.id})\nIssuer: ${t.issuer}`,
        );
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
}
